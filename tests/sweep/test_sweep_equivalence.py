"""A vmapped group of members gives each member's result of training it alone (``lightjax train``
with that member's config): parameters, their moving average, BN statistics, learning rate, test
metrics.

In float64: training this small net is chaotic, so float32 round-off (which already differs
between ``jit`` and eager ``grad`` by up to 8.5% in nearly BN-invariant leaves of a random-init
MobileNetV1) would grow into visible differences within a few steps. In float64 every path agrees
to ~1e-12, so the comparison checks the sweep machinery (per-member seeds, data order, learning
rates, weight decay, BN statistics), not round-off.
"""
import jax
import numpy as np
import pytest

from lightjax.sweep import Sweep
from lightjax.sweep.group import GroupTrainer
from lightjax.train import optimizer
from lightjax.train import run as run_lib

FIXED = {"train.epochs": 1, "train.batch_size": 256, "train.warmup_epochs": 0.5,
         "data.resolution": 16, "train.dtype": "float64", "model.activation": "rrelu",
         "train.ema_decay": 0.9}
MEMBERS = [{"train.seed": 0, "train.lr": 0.05, "train.weight_decay": 5e-4,
            "train.activation_init": 0.25},
           {"train.seed": 1, "train.lr": 0.02, "train.weight_decay": 1e-3,
            "train.activation_init": 0.1}]


def _max_rel(a, b):
    diffs = jax.tree.map(lambda x, y: float(np.max(np.abs(np.asarray(x, np.float64) - y))
                                           / (np.max(np.abs(y)) + 1e-30)), a, b)
    return max(jax.tree.leaves(diffs))


def test_vmapped_group_equals_each_member_alone(tmp_path):
    with jax.enable_x64(True):
        cfgs = Sweep("digits:tiny", [{**m, **FIXED} for m in MEMBERS]).configs()
        trainer = GroupTrainer(cfgs)
        result = trainer.train(str(tmp_path / "group"))
        assert result["finished"]
        for m, cfg in enumerate(cfgs):
            alone = run_lib.train(cfg, str(tmp_path / f"alone{m}"), progress=False)
            _, _, state = run_lib.load_run(str(tmp_path / f"alone{m}"))
            member = trainer.member(result["state"], m)
            assert int(member.step) == int(state.step) == trainer.experiment.total_steps
            assert _max_rel(member.params, jax.device_get(state.params)) < 1e-8
            # the moving average too (evaluation reads it: the metrics below come from it)
            assert _max_rel(member.ema, jax.device_get(state.ema)) < 1e-8
            assert _max_rel(member.ema, member.params) > 1e-3
            # BN running statistics are stored in float32 (flax's convention, also in float64
            # mode), so the checkpointed run agrees to float32 precision
            assert _max_rel(member.batch_stats, jax.device_get(state.batch_stats)) < 1e-6
            assert float(optimizer.current_lr(member.opt_state)) == pytest.approx(
                float(optimizer.current_lr(state.opt_state)), rel=1e-6)
            slopes = member.params["stem"]["act"]["slope"]
            assert not np.allclose(slopes, MEMBERS[1 - m]["train.activation_init"])
            row = result["members"][m]
            assert row["top1"] == alone["top1"]
            assert row["loss"] == pytest.approx(alone["loss"], rel=1e-9)
        # the members really differ (so the comparisons above could fail)
        first, second = (trainer.member(result["state"], m) for m in (0, 1))
        assert _max_rel(first.params, second.params) > 1e-2


def test_a_diverging_member_is_marked_and_does_not_disturb_its_group(tmp_path):
    short = {**FIXED, "train.batch_size": 512, "model.activation": "relu"}
    with jax.enable_x64(True):
        cfgs = Sweep("digits:tiny", [{"train.lr": lr, **short}
                                     for lr in (0.05, 1e12, 0.02)]).configs()
        pair = GroupTrainer(cfgs[:2]).train(str(tmp_path / "pair"))
        # the first member again, beside a healthy partner: the same compiled program
        healthy = GroupTrainer([cfgs[0], cfgs[2]]).train(str(tmp_path / "healthy"))
    assert [m["status"] for m in pair["members"]] == ["finished", "diverged"]
    assert [m["status"] for m in healthy["members"]] == ["finished", "finished"]
    first, other = healthy["members"]
    assert pair["members"][0]["loss"] == pytest.approx(first["loss"], rel=1e-9)
    assert pair["members"][0]["top1"] == first["top1"]
    assert other["loss"] != pytest.approx(first["loss"], rel=1e-6)  # members do differ
