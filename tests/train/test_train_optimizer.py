"""Optimizer pieces: weight-decay mask by layer kind, LR schedules, bad names."""
import flax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lightjax import cost, models
from lightjax.train import optimizer
from lightjax.train.defaults import train_section


def test_decay_mask_skips_depthwise_bn_and_biases():
    model = models.create("mobilenet_v1", num_classes=10, alpha=0.25, pointwise_bias=True)
    shape = (1, 16, 16, 3)
    params = jax.eval_shape(lambda: model.init(jax.random.PRNGKey(0), jnp.zeros(shape)))["params"]
    report = cost.count(model, shape)
    flat = flax.traverse_util.flatten_dict(optimizer.decay_mask(report)(params), sep="/")
    assert flat["stem/conv/kernel"] and flat["unit3/pw/conv/kernel"] and flat["head/fc/kernel"]
    assert not flat["unit3/dw/conv/kernel"]
    assert not flat["unit3/pw/conv/bias"] and not flat["head/fc/bias"]
    assert not flat["unit3/pw/bn/scale"] and not flat["unit3/pw/bn/bias"]
    with_dw = flax.traverse_util.flatten_dict(
        optimizer.decay_mask(report, decay_depthwise=True)(params), sep="/")
    assert with_dw["unit3/dw/conv/kernel"]


def test_step_schedule_is_the_sources_recipe():
    cfg = train_section()  # 0.1, x0.2 at epochs 60/120/160 of 200
    lr = optimizer.schedule(cfg, steps_per_epoch=10)
    np.testing.assert_allclose([lr(0), lr(599), lr(600), lr(1200), lr(1600), lr(1999)],
                               [0.1, 0.1, 0.02, 0.004, 0.0008, 0.0008], rtol=1e-5)


def test_cosine_with_linear_warmup():
    cfg = train_section(schedule="cosine", epochs=10, warmup_epochs=2, lr=1.0)
    lr = optimizer.schedule(cfg, steps_per_epoch=5)
    np.testing.assert_allclose([lr(0), lr(5), lr(10)], [0.0, 0.5, 1.0], atol=1e-6)
    assert float(lr(30)) == pytest.approx(0.5, abs=1e-6)  # half-way through the cosine part
    assert float(lr(50)) == pytest.approx(0.0, abs=1e-6)


def test_learning_rate_is_a_traced_hyperparameter():
    tx = optimizer.build(train_section(schedule="constant", lr=0.3), 10, mask=None)
    state = tx.init({"w": jnp.ones(2)})
    assert float(optimizer.current_lr(state)) == pytest.approx(0.3)


def test_weight_decay_only_touches_masked_leaves():
    params = {"kernel": jnp.ones(2), "bias": jnp.ones(2)}
    mask = {"kernel": True, "bias": False}
    tx = optimizer.build(train_section(schedule="constant", lr=1.0, momentum=0.0,
                                       weight_decay=0.5), 1, mask)
    zero = jax.tree.map(jnp.zeros_like, params)
    updates, _ = tx.update(zero, tx.init(params), params)
    np.testing.assert_allclose(updates["kernel"], [-0.5, -0.5])
    np.testing.assert_allclose(updates["bias"], [0.0, 0.0])


@pytest.mark.parametrize("field,value,match", [
    ("optimizer", "lamb", "unknown optimizer 'lamb'"),
    ("schedule", "poly", "unknown schedule 'poly'"),
])
def test_unknown_names(field, value, match):
    with pytest.raises(ValueError, match=match):
        optimizer.build(train_section(**{field: value}), 10, None)
    with pytest.raises(ValueError, match="unknown train option"):
        train_section(learning_rate=0.1)


def test_lr_range_test_sweeps_the_rate_and_stops_when_the_loss_blows_up(tmp_path, capsys):
    from lightjax import cli
    from lightjax.train import config as config_lib, lr_range

    cfg = config_lib.override(config_lib.load("digits:tiny"), ["--config.data.resolution=8",
                                                              "--config.train.optimizer=adam"])
    out = lr_range.run(cfg, steps=40, lr_min=1e-5, lr_max=100.0)
    n = out["steps"]
    assert out["stopped_early"] and n < 40  # Adam at lr ~10 blows up
    np.testing.assert_allclose(out["lr"], 1e-5 * 1e7 ** (np.arange(n) / 39))
    assert out["suggested_lr"] == out["min_loss_lr"] / 10
    assert 1e-5 <= out["steepest_lr"] <= out["min_loss_lr"] < 1.0
    assert min(out["smoothed"]) < out["smoothed"][0]  # some rate in the range does learn
    path = tmp_path / "lr.json"
    assert cli.main(["lr-range", "--config", "digits:tiny", "--steps", "6", "--no-progress",
                     "--out", str(path), "--config.data.resolution=8"]) == 0
    assert "suggested lr" in capsys.readouterr().out and path.exists()
    assert cli.main(["lr-range", "--config", "digits:tiny", "--min", "1", "--max", "0.1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--min (1.0) must be below --max (0.1)" in err
