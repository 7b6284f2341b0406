"""Pruning as traced sweep axes: members with different ratios, criteria and schedules (one-shot,
gradual) train in one vmapped group, from a trained run; bad settings are refused up front."""
import jax
import numpy as np
import pytest

from lightjax.prune import masking
from lightjax.sweep import Sweep, plan, runner
from lightjax.sweep.group import GroupTrainer
from lightjax.train import config as config_lib
from lightjax.train import run as run_lib

@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    workdir = str(tmp_path_factory.mktemp("trained") / "run")
    cfg = config_lib.load("digits:tiny")
    cfg.train.epochs, cfg.data.resolution = 1, 8
    run_lib.train(cfg, workdir, progress=False)
    return workdir


def _members(trained, *members):
    return Sweep(trained, [{"prune.init_from": trained, **m} for m in members])


def test_pruning_members_share_one_group(trained, tmp_path):
    sweep = _members(trained, {"prune.ratio": 0.5, "prune.criterion": "l1"},
                     {"prune.ratio": 0.5, "prune.criterion": "fpgm", "prune.ramp_epochs": 0.5,
                      "prune.frequency": 2},
                     {"prune.ratio": 0.25, "prune.criterion": "bn_gamma"})
    assert len(plan.plan(sweep)) == 1
    cfgs = sweep.configs()
    trainer = GroupTrainer(cfgs)
    # every member starts from the trained run's weights
    _, _, start = run_lib.load_run(trained)
    initial = trainer.member(trainer.init_state(), 2)
    jax.tree.map(np.testing.assert_array_equal, initial.params, jax.device_get(start.params))
    rows = runner.run(sweep, str(tmp_path / "sweep"), progress=False)
    assert [r["sparsity"] for r in rows] == [0.5, 0.5, 0.25]
    assert all(r["status"] == "finished" for r in rows)
    # params/MACs are the compact model's, and they shrink with the ratio
    assert rows[0]["params"] == rows[1]["params"] < rows[2]["params"] < \
        trainer.experiment.cost.params
    # the group's final checkpoint (resuming it trains nothing)
    result = trainer.train(str(tmp_path / "sweep" / "groups" / "group000"))
    assert result["members"] == [{k: r[k] for k in result["members"][0]} for r in rows]
    for m in range(3):
        member = trainer.member(result["state"], m)
        masks = {k: np.asarray(v) for k, v in member.compression["prune"].items()}
        pm = masking.param_masks(trainer.plugins[0].groups, masks, member.params)
        zeros = jax.tree.map(
            lambda p, k: np.all(np.asarray(p)[np.broadcast_to(np.asarray(k), p.shape) == 0] == 0),
            member.params, pm)
        assert all(jax.tree.leaves(zeros))  # pruned weights stayed exactly 0
    # different criteria pick different filters
    l1, fpgm = (trainer.member(result["state"], m).compression["prune"] for m in (0, 1))
    assert any(not np.array_equal(l1[k], fpgm[k]) for k in l1)


@pytest.mark.parametrize("member, message", [
    ({"prune.ratio": 1.5}, "prune.ratio"),
    ({"prune.ratio": 0.5, "prune.criterion": "l7"}, "l7"),
    ({"prune.ratio": 0.5, "prune.frequency": 0}, "prune.frequency"),
    ({"prune.ratio": 0.5, "model.alpha": 0.5}, "differs from this config"),
])
def test_bad_pruning_settings_are_refused(trained, tmp_path, member, message):
    sweep = _members(trained, member)
    with pytest.raises(ValueError, match=message):
        runner.run(sweep, str(tmp_path / "s"), progress=False)
    assert not (tmp_path / "s").exists()
