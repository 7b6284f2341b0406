"""MobileNetV1 / MobileNet-rhs: structure, modes, widths, SE, bad input."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lightjax import cost, models
from lightjax.layers import LayerFactory

KEY = jax.random.PRNGKey(0)


def init(model, res=32, batch=2):
    x = jax.random.normal(KEY, (batch, res, res, model.input_channels))
    return x, model.init(KEY, x, train=False)


def test_logits_and_feature_strides():
    model = models.create("mobilenet_v1", num_classes=7, alpha=0.25)
    x, variables = init(model, res=64)
    assert model.apply(variables, x).shape == (2, 7)
    feats = model.apply(variables, x, train=False, method=model.features)
    assert list(feats) == ["stem"] + [f"unit{i}" for i in range(1, 14)]
    # YOLOv3-Mobile taps units 4, 6 and 13: strides 8, 16, 32 with 64, 128, 256 channels at 0.25.
    assert feats["unit4"].shape == (2, 8, 8, 64)
    assert feats["unit6"].shape == (2, 4, 4, 128)
    assert feats["unit13"].shape == (2, 2, 2, 256)


def test_cifar_stem_keeps_resolution():
    model = models.create("mobilenet_v1", num_classes=10, alpha=0.25, stem_stride=1)
    x, variables = init(model)
    feats = model.apply(variables, x, train=False, method=model.features)
    assert feats["stem"].shape[1:3] == (32, 32)
    assert feats["unit13"].shape[1:3] == (2, 2)


def test_train_mode_updates_batch_stats_and_eval_does_not():
    model = models.create("mobilenet_v1", num_classes=3, alpha=0.25)
    x, variables = init(model)
    logits, updates = model.apply(variables, x, train=True, mutable=["batch_stats"])
    before = jax.tree.leaves(variables["batch_stats"])
    after = jax.tree.leaves(updates["batch_stats"])
    assert any(not np.allclose(a, b) for a, b in zip(before, after))
    # eval: running averages, deterministic, nothing to update
    y1 = model.apply(variables, x)
    y2 = model.apply(variables, x)
    np.testing.assert_array_equal(y1, y2)
    assert not np.allclose(logits, y1)


def test_rhs_variant_drops_pointwise_activation():
    def act_params(variant):
        model = models.create("mobilenet_v1", num_classes=3, alpha=0.25, variant=variant,
                              activation="rrelu")
        params = init(model)[1]["params"]
        return "act" in params["unit1"]["dw"], "act" in params["unit1"]["pw"]

    assert act_params("standard") == (True, True)
    assert act_params("rhs") == (True, False)


def test_rhs_default_activation_is_relu_hswish():
    model = models.create("mobilenet_v1", variant="rhs")
    assert model._activations() == ("relu_hswish", None)
    assert models.create("mobilenet_v1")._activations() == ("relu", "relu")


def test_pointwise_bias_and_se_add_the_expected_parameters():
    plain = models.create("mobilenet_v1", num_classes=10, alpha=0.25)
    biased = models.create("mobilenet_v1", num_classes=10, alpha=0.25, pointwise_bias=True)
    se = models.create("mobilenet_v1", num_classes=10, alpha=0.25, se_reduction=4)
    p0 = cost.count(plain, (1, 32, 32, 3)).params
    widths = plain.resolved_widths()
    assert cost.count(biased, (1, 32, 32, 3)).params - p0 == sum(widths[1:])
    # SE after each depthwise conv: C -> C/4 -> C with biases; C = that unit's input width.
    se_params = sum(c * (c // 4) + c // 4 + (c // 4) * c + c for c in widths[:-1])
    assert cost.count(se, (1, 32, 32, 3)).params - p0 == se_params


def test_widths_override_builds_the_narrower_model():
    widths = (8, 16, 16, 16, 32, 32, 32, 32, 32, 32, 32, 32, 64, 48)
    model = models.create("mobilenet_v1", num_classes=5, widths=list(widths))
    x, variables = init(model)
    params = variables["params"]
    assert params["stem"]["conv"]["kernel"].shape == (3, 3, 3, 8)
    assert params["unit13"]["dw"]["conv"]["kernel"].shape == (3, 3, 1, 64)
    assert params["unit13"]["pw"]["conv"]["kernel"].shape == (1, 1, 64, 48)
    assert params["head"]["fc"]["kernel"].shape == (48, 5)
    # independent count: stem, units (dw 9*c_in + pw c_in*c_out, BN 2*(c_in + c_out)), FC
    expected = 27 * 8 + 2 * 8
    for c_in, c_out in zip(widths[:-1], widths[1:]):
        expected += 9 * c_in + c_in * c_out + 2 * (c_in + c_out)
    expected += 48 * 5 + 5
    assert cost.count(model, (1, 32, 32, 3)).params == expected
    assert model.apply(variables, x).shape == (2, 5)


@pytest.mark.parametrize("kwargs,match", [
    (dict(alpha=0), "alpha must be a finite number > 0"),
    (dict(alpha=-0.5), "alpha must be a finite number > 0"),
    (dict(alpha=0.01), "leave layers with no channels"),
    (dict(activation="gelu_fancy"), "unknown activation 'gelu_fancy'"),
    (dict(variant="fast"), "unknown variant 'fast'"),
    (dict(num_classes=0), "num_classes must be a positive integer"),
    (dict(stem_stride=3), "stem_stride must be 1 or 2"),
    (dict(widths=(32,) * 13), "widths has 13 entries but this model has 14"),
    (dict(widths=(32,) * 13 + (0,)), "layer unit13/pw got 0"),
    (dict(widths=(32,) * 13 + (2.5,)), "layer unit13/pw got 2.5"),
])
def test_bad_hyperparameters_are_value_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        models.create("mobilenet_v1", **kwargs)


def test_unknown_model_and_argument():
    with pytest.raises(ValueError, match="unknown model 'mobilenet_v9'; available: "):
        models.create("mobilenet_v9")
    with pytest.raises(TypeError, match="unknown argument"):
        models.create("mobilenet_v1", groups=3)


@pytest.mark.parametrize("shape,match", [
    ((32, 32, 3), "NHWC"), ((2, 32, 32, 1), "expected 3 input channels"),
    ((2, 0, 32, 3), "height and width must be >= 1"),
])
def test_bad_images_fail_before_xla(shape, match):
    model = models.create("mobilenet_v1", num_classes=3, alpha=0.25)
    _, variables = init(model)
    with pytest.raises(ValueError, match=match):
        jax.jit(model.apply)(variables, jnp.zeros(shape))


def test_single_channel_models():
    model = models.create("mobilenet_v1", num_classes=10, alpha=0.25, input_channels=1)
    x, variables = init(model)
    assert model.apply(variables, x).shape == (2, 10)


def test_depthwise_implementations_agree_on_the_whole_model():
    base = dict(num_classes=4, alpha=0.25)
    shifted = models.create("mobilenet_v1", layers=LayerFactory(depthwise_impl="shifted"), **base)
    xla = models.create("mobilenet_v1", layers=LayerFactory(depthwise_impl="xla"), **base)
    x, variables = init(shifted, res=33)

    def loss(model, params):
        logits, _ = model.apply({**variables, "params": params}, x, train=True,
                                mutable=["batch_stats"])
        return (logits ** 2).mean()

    l1, g1 = jax.value_and_grad(lambda p: loss(shifted, p))(variables["params"])
    l2, g2 = jax.value_and_grad(lambda p: loss(xla, p))(variables["params"])
    np.testing.assert_allclose(l1, l2, rtol=1e-5)
    # Per layer the implementations agree to 1e-5 (tests/layers/test_depthwise.py); through 27
    # train-mode BNs on a 2-image batch (1x1 maps at the end) float32 rounding grows to ~1e-4.
    for a, b in zip(jax.tree.leaves(g1), jax.tree.leaves(g2)):
        np.testing.assert_allclose(a, b, rtol=2e-3, atol=2e-3 * float(jnp.abs(b).max()))
