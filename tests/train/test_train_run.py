"""End-to-end runs on the embedded digits: resume exactness, activations, dtype, divergence."""
import json
import os

import jax
import numpy as np
import pytest

from lightjax import errors
from lightjax.train import config as config_lib
from lightjax.train import run as run_lib


def tiny(**overrides):
    cfg = config_lib.load("digits:tiny")
    args = [f"--config.{k}={v}" for k, v in overrides.items()]
    return config_lib.override(cfg, args)


def leaves(workdir):
    _, _, state = run_lib.load_run(str(workdir))
    return jax.tree.leaves((state.params, state.batch_stats, state.opt_state))


def test_resume_equals_uninterrupted_run(tmp_path):
    cfg = tiny()
    full = run_lib.train(cfg, str(tmp_path / "full"), progress=False)
    assert full["finished"] and full["steps"] == 22  # 2 epochs x 11 batches of 128
    first = run_lib.train(cfg, str(tmp_path / "resumed"), progress=False, max_steps=7)
    assert not first["finished"] and first["steps"] == 7
    assert not (tmp_path / "resumed" / "summary.json").exists()
    second = run_lib.train(cfg, str(tmp_path / "resumed"), progress=False)
    assert second["finished"] and second["steps"] == 22
    for a, b in zip(leaves(tmp_path / "full"), leaves(tmp_path / "resumed")):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert second["top1"] == pytest.approx(full["top1"])
    summary = json.loads((tmp_path / "full" / "summary.json").read_text())
    assert set(summary) >= {"top1", "top5", "loss", "params", "macs", "steps", "seconds"}
    rows = [json.loads(line) for line in (tmp_path / "full" / "metrics.jsonl").open()]
    assert [r["epoch"] for r in rows] == [1, 2]
    # evaluation of the saved run reproduces the summary
    again = run_lib.evaluate(str(tmp_path / "full"))
    assert again["top1"] == pytest.approx(summary["top1"]) and again["count"] == 360


def test_a_different_config_in_the_same_workdir_is_refused(tmp_path):
    run_lib.train(tiny(), str(tmp_path / "w"), progress=False, max_steps=1)
    before = sorted(os.listdir(tmp_path / "w"))
    with pytest.raises(ValueError, match="holds a run with a different config"):
        run_lib.train(tiny(**{"model.alpha": 0.5}), str(tmp_path / "w"), progress=False)
    assert sorted(os.listdir(tmp_path / "w")) == before


def test_foreign_non_empty_directory_is_not_written(tmp_path):
    (tmp_path / "mine.txt").write_text("precious")
    with pytest.raises(ValueError, match="not empty and holds no lightjax run"):
        run_lib.train(tiny(), str(tmp_path), progress=False)
    assert os.listdir(tmp_path) == ["mine.txt"]


# one per kind of activation layer (each compiles its own model): a parameter-free module
# (swish; relu, hard_swish and the like are plain functions, trained by every other test), a
# trainable one (rrelu's slopes) and the MobileNet-rhs variant
@pytest.mark.parametrize("activation,variant", [
    ("swish", "standard"), ("rrelu", "standard"), ("relu_hswish", "rhs"),
])
def test_activation_study_configs_train(tmp_path, activation, variant):
    cfg = tiny(**{"model.activation": activation, "model.variant": variant,
                  "train.epochs": 1, "data.resolution": 8})
    summary = run_lib.train(cfg, str(tmp_path), progress=False, max_steps=3)
    assert summary["steps"] == 3
    _, setup, state = run_lib.load_run(str(tmp_path))
    assert setup.model.activation == activation and setup.model.variant == variant
    if activation == "rrelu":  # the trainable slopes exist and were trained
        slope = state.params["unit1"]["dw"]["act"]["slope"]
        assert not np.allclose(slope, 0.25)


def test_bfloat16_compute_keeps_float32_params_and_statistics(tmp_path):
    cfg = tiny(**{"train.dtype": "bfloat16", "train.epochs": 1, "data.resolution": 8})
    run_lib.train(cfg, str(tmp_path), progress=False, max_steps=2)
    _, setup, state = run_lib.load_run(str(tmp_path))
    assert setup.model.layers.dtype == jax.numpy.bfloat16
    assert {x.dtype for x in jax.tree.leaves(state.params)} == {np.dtype("float32")}
    assert {x.dtype for x in jax.tree.leaves(state.batch_stats)} == {np.dtype("float32")}


def test_divergence_stops_and_keeps_the_last_good_checkpoint(tmp_path):
    # the good part trains the program test_resume_equals_uninterrupted_run compiled (same
    # epochs and learning rate), so the compilation cache (conftest.py) serves it
    cfg = tiny(**{"train.checkpoint_every_epochs": 1})
    run_lib.train(cfg, str(tmp_path), progress=False, max_steps=11)  # one good epoch of two
    bad = tiny(**{"train.checkpoint_every_epochs": 1})
    bad_json = json.loads((tmp_path / "config.json").read_text())
    # same run, now with an exploding learning rate from here on
    bad.train.lr = 1e30
    bad_json["train"]["lr"] = 1e30
    (tmp_path / "config.json").write_text(json.dumps(bad_json))
    with pytest.raises(errors.Diverged, match="last good checkpoint \\(step 11\\)"):
        run_lib.train(bad, str(tmp_path), progress=False)
    assert sorted(os.listdir(tmp_path / "checkpoints")) == ["11"]


def test_moving_average_and_streamed_data_resume_exactly(tmp_path):
    """EMA of the parameters (train.ema_decay) on streamed shapes: an interrupted and resumed
    run equals the uninterrupted one, parameters and average alike; evaluation uses the average."""
    cfg = config_lib.override(config_lib.load("shapes_classification:tiny"), [
        "--config.data.mode=stream", "--config.data.train_size=None",
        "--config.data.epoch_size=64", "--config.train.epochs=2", "--config.train.ema_decay=0.9"])
    full = run_lib.train(cfg, str(tmp_path / "full"), progress=False)
    assert full["steps"] == 4  # 2 epochs x 2 batches of 32 fresh scenes
    run_lib.train(cfg, str(tmp_path / "resumed"), progress=False, max_steps=3)
    run_lib.train(cfg, str(tmp_path / "resumed"), progress=False)
    states = [run_lib.load_run(str(tmp_path / w))[2] for w in ("full", "resumed")]
    for a, b in zip(*(jax.tree.leaves((s.params, s.ema, s.batch_stats)) for s in states)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    state = states[0]
    # the average is not the parameters, and it is what evaluation reads
    assert any(not np.allclose(p, e) for p, e in zip(jax.tree.leaves(state.params),
                                                     jax.tree.leaves(state.ema)))
    from lightjax.train import step as step_lib
    assert step_lib.eval_params(state) is state.ema


def test_ema_update_is_the_warmed_up_moving_average():
    from lightjax.train import step as step_lib
    ema, params = {"w": np.float32(1.0), "n": np.int32(3)}, {"w": np.float32(3.0),
                                                             "n": np.int32(5)}
    # step 0: d = min(0.999, 1/10) = 0.1 -> 0.1 * 1 + 0.9 * 3; integer leaves are copied
    out = step_lib.ema_update(ema, params, 0, 0.999)
    assert float(out["w"]) == pytest.approx(2.8) and int(out["n"]) == 5
    out = step_lib.ema_update(ema, params, 10 ** 6, 0.5)  # d = decay once warmed up
    assert float(out["w"]) == pytest.approx(2.0)


def test_a_compression_run_starts_its_moving_average_at_the_start_weights():
    import jax.numpy as jnp
    import optax
    from lightjax.train import compression, step as step_lib

    params = {"w": jnp.zeros(3)}
    state = step_lib.TrainState(step=jnp.zeros((), jnp.int32), params=params, batch_stats={},
                                opt_state=(), rng=jax.random.PRNGKey(0), ema=params)
    start = {"params": {"w": np.ones(3, np.float32)}, "batch_stats": {}}
    out = compression.start_state(state, optax.sgd(0.1), start)
    np.testing.assert_array_equal(out.params["w"], 1.0)
    np.testing.assert_array_equal(out.ema["w"], 1.0)
    assert compression.start_state(state.replace(ema=None), optax.sgd(0.1), start).ema is None
