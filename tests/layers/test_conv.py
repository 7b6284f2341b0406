"""Conv layers: shapes, stride/padding, agreement with lax, hooks, kinds, vmap behaviour."""
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from lightjax.layers import (Conv, ConvTranspose, Dense, DepthwiseConv, GroupConv, LayerFactory,
                             PointwiseConv)


def lax_conv(x, kernel, stride, groups=1, pad=None):
    k = kernel.shape[0]
    pad = k // 2 if pad is None else pad
    return lax.conv_general_dilated(x, kernel, (stride, stride), ((pad, pad), (pad, pad)),
                                    dimension_numbers=("NHWC", "HWIO", "NHWC"),
                                    feature_group_count=groups, precision="highest")


def init_apply(layer, x):
    variables = layer.init(jax.random.PRNGKey(0), x)
    return variables, layer.apply(variables, x)


X = jax.random.normal(jax.random.PRNGKey(1), (2, 9, 7, 12))


@pytest.mark.parametrize("stride", [1, 2])
def test_standard_conv_matches_lax_and_pads_symmetrically(stride):
    variables, y = init_apply(Conv(8, kernel_size=3, strides=stride), X)
    kernel = variables["params"]["kernel"]
    assert kernel.shape == (3, 3, 12, 8)
    assert y.shape == (2, -(-9 // stride), -(-7 // stride), 8)
    np.testing.assert_allclose(y, lax_conv(X, kernel, stride), rtol=1e-5, atol=1e-5)


def test_same_padding_is_asymmetric_at_stride_two():
    x = jnp.arange(16.0).reshape(1, 4, 4, 1)
    same = Conv(1, 3, 2, padding="same", kernel_init=nn.initializers.ones)
    sym = Conv(1, 3, 2, padding="symmetric", kernel_init=nn.initializers.ones)
    y_same = same.apply(same.init(jax.random.PRNGKey(0), x), x)[0, :, :, 0]
    y_sym = sym.apply(sym.init(jax.random.PRNGKey(0), x), x)[0, :, :, 0]
    # SAME pads 0 before and 1 after: the first window covers rows/cols 0..2.
    assert float(y_same[0, 0]) == float(x[0, :3, :3].sum())
    # symmetric pads 1 before: the first window covers rows/cols -1..1.
    assert float(y_sym[0, 0]) == float(x[0, :2, :2].sum())


@pytest.mark.parametrize("stride", [1, 2])
def test_pointwise_is_a_1x1_conv(stride):
    variables, y = init_apply(PointwiseConv(5, strides=stride, use_bias=True), X)
    kernel, bias = variables["params"]["kernel"], variables["params"]["bias"]
    assert kernel.shape == (1, 1, 12, 5)
    np.testing.assert_allclose(y, lax_conv(X, kernel, stride, pad=0) + bias, rtol=1e-5,
                               atol=1e-5)


@pytest.mark.parametrize("kernel_size,stride", [(1, 1), (1, 2), (3, 1), (3, 2)])
def test_group_conv_matches_lax_grouped_conv(kernel_size, stride):
    variables, y = init_apply(GroupConv(9, groups=3, kernel_size=kernel_size, strides=stride), X)
    kernel = variables["params"]["kernel"]
    assert kernel.shape == (kernel_size, kernel_size, 4, 9)
    want = lax_conv(X, kernel, stride, groups=3, pad=kernel_size // 2)
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-5)


def test_group_conv_rejects_indivisible_channels():
    with pytest.raises(ValueError, match="groups=5 must divide"):
        GroupConv(10, groups=5).init(jax.random.PRNGKey(0), X)


@pytest.mark.parametrize("impl", ["shifted", "xla"])
def test_depthwise_layer_matches_lax(impl):
    variables, y = init_apply(DepthwiseConv(12, strides=2, impl=impl), X)
    np.testing.assert_allclose(y, lax_conv(X, variables["params"]["kernel"], 2, groups=12),
                               rtol=1e-5, atol=1e-5)


def test_depthwise_features_must_equal_input_channels():
    with pytest.raises(ValueError, match="must equal the input channels"):
        DepthwiseConv(8).init(jax.random.PRNGKey(0), X)


def test_wrong_rank_is_a_value_error():
    with pytest.raises(ValueError, match="rank-4 input"):
        Conv(4).init(jax.random.PRNGKey(0), jnp.ones((9, 7, 12)))


def test_kinds_follow_geometry_not_channel_count():
    assert Conv(1, kernel_size=3).kind == "standard"  # one output channel is not depthwise
    assert Conv(4, kernel_size=1).kind == "pointwise"
    assert GroupConv(4, groups=2).kind == "group"
    assert GroupConv(4, groups=1).kind == "pointwise"
    assert DepthwiseConv(4).kind == "depthwise"
    assert ConvTranspose(4).kind == "transposed"
    assert Dense(4).kind == "fc"


def test_kernel_and_input_hooks_apply_and_can_create_variables():
    def mask_hook(layer, kernel, train):
        mask = layer.variable("masks", "out", lambda: jnp.array([1.0, 0.0, 1.0]))
        return kernel * mask.value

    def double_input(layer, x, train):
        return 2 * x

    factory = LayerFactory(kernel_hook=mask_hook, input_hook=double_input)
    for layer in (factory.conv(3, 3), factory.pointwise(3), factory.group_conv(3, 3)):
        x = jnp.ones((1, 4, 4, 3))
        variables = layer.init(jax.random.PRNGKey(0), x)
        assert "masks" in variables
        y = layer.apply(variables, x)
        assert float(jnp.abs(y[..., 1]).max()) == 0.0  # masked filter
        plain = type(layer)(**{f: getattr(layer, f) for f in ("features",)},
                            **({"groups": 3} if isinstance(layer, GroupConv) else {}),
                            **({"kernel_size": 3} if isinstance(layer, Conv) else {}))
        y_plain = plain.apply({"params": variables["params"]}, 2 * x)
        np.testing.assert_allclose(y[..., 0], y_plain[..., 0], rtol=1e-6)


def test_hook_that_changes_shape_is_rejected():
    layer = Dense(3, kernel_hook=lambda layer, k, train: k[:1])
    with pytest.raises(ValueError, match="hooks must preserve shapes"):
        layer.init(jax.random.PRNGKey(0), jnp.ones((2, 4)))


def test_old_two_argument_hooks_are_rejected_at_construction():
    with pytest.raises(TypeError, match=r"must accept \(layer, value, train\)"):
        LayerFactory(kernel_hook=lambda layer, kernel: kernel)
    with pytest.raises(TypeError, match="input_hook"):
        Conv(3, input_hook=lambda layer, x: x)
    with pytest.raises(TypeError, match="must be a callable"):
        LayerFactory(input_hook=3)


def test_vmapped_pointwise_and_group_conv_are_batched_matmuls():
    """vmap over member parameters must not produce (slow) grouped convolutions."""
    x = jnp.ones((4, 2, 6, 6, 8))
    for layer in (PointwiseConv(8), GroupConv(8, groups=2)):
        params = jax.vmap(lambda k: layer.init(k, x[0]))(jax.random.split(jax.random.PRNGKey(0), 4))
        jaxpr = str(jax.make_jaxpr(jax.vmap(layer.apply))(params, x))
        assert "conv_general_dilated" not in jaxpr
        assert "dot_general" in jaxpr


def test_bfloat16_compute_keeps_float32_params():
    layer = Conv(4, 3, dtype=jnp.bfloat16)
    variables = layer.init(jax.random.PRNGKey(0), X)
    assert variables["params"]["kernel"].dtype == jnp.float32
    assert layer.apply(variables, X).dtype == jnp.bfloat16
