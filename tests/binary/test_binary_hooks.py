"""Binarizing hooks: weights alpha * sign(W) per selected output channel, inputs +-1 or the HORQ
residual approximation per selected position, STE gradients through both, and the training-time
layer equal to the packed XNOR-popcount kernel."""
import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lightjax.binary import hooks, packed, quantizers
from lightjax.layers import rules as rules_lib
from lightjax.layers.factory import LayerFactory


def _apply_kernel_hook(hook, kernel, weights_sel=None):
    class Probe(nn.Module):
        @nn.compact
        def __call__(self):
            return hook(self, kernel, True)

    variables = {} if weights_sel is None else {"binary": {"weights": weights_sel}}
    return Probe().apply(variables)


def test_kernel_hook_scales_sign_per_output_channel_and_keeps_unselected_channels():
    w = jax.random.normal(jax.random.PRNGKey(0), (3, 3, 4, 5)).at[0, 0, 0, 0].set(0.0)
    out = np.asarray(_apply_kernel_hook(hooks.BinaryKernel(), w))
    alpha = np.abs(np.asarray(w)).mean(axis=(0, 1, 2))
    np.testing.assert_allclose(out, alpha * np.where(np.asarray(w) >= 0, 1, -1), rtol=1e-6)
    assert out[0, 0, 0, 0] == alpha[0]  # sign(0) = +1
    sel = jnp.array([1.0, 0.0, 1.0, 0.0, 0.0])
    mixed = np.asarray(_apply_kernel_hook(hooks.BinaryKernel(), w, sel))
    np.testing.assert_array_equal(mixed[..., 1], np.asarray(w)[..., 1])
    np.testing.assert_allclose(mixed[..., 2], out[..., 2], rtol=1e-6)
    plain = np.asarray(_apply_kernel_hook(hooks.BinaryKernel(scale=False), w))
    assert set(np.unique(plain)) == {-1.0, 1.0}


def test_kernel_hook_gradient_is_the_clipped_ste_times_alpha_on_selected_channels():
    w = 1.5 * jax.random.normal(jax.random.PRNGKey(1), (6, 4))
    sel = jnp.array([1.0, 1.0, 0.0, 1.0])
    g = jax.random.normal(jax.random.PRNGKey(2), (6, 4))
    grad = jax.grad(lambda k: jnp.sum(_apply_kernel_hook(hooks.BinaryKernel(), k, sel) * g))(w)
    alpha = np.abs(np.asarray(w)).mean(axis=0)
    ste = (np.abs(np.asarray(w)) <= 1.0).astype(np.float32)
    expected = np.where(np.asarray(sel) > 0, alpha * ste, 1.0) * np.asarray(g)
    np.testing.assert_allclose(np.asarray(grad), expected, rtol=1e-5, atol=1e-7)


def test_horq_residual_approximation_matches_the_recursion_per_position():
    x = np.asarray(jax.random.normal(jax.random.PRNGKey(3), (2, 3, 3, 6)))
    got = np.asarray(hooks.residual_approximation(jnp.asarray(x), 3, quantizers.ste_sign))
    approx, residual = np.zeros_like(x), x
    for _ in range(3):
        beta = np.abs(residual).mean(axis=-1, keepdims=True)
        approx = approx + beta * np.where(residual >= 0, 1.0, -1.0)
        residual = x - approx
    np.testing.assert_allclose(got, approx, rtol=1e-5, atol=1e-6)
    # more orders approximate better
    errors = [np.abs(np.asarray(hooks.residual_approximation(jnp.asarray(x), n,
                                                             quantizers.ste_sign)) - x).mean()
              for n in (1, 2, 3)]
    assert errors[0] > errors[1] > errors[2]
    pure = np.asarray(hooks.residual_approximation(jnp.asarray(x), 1, quantizers.ste_sign, False))
    assert set(np.unique(pure)) == {-1.0, 1.0}


def test_input_hook_binarizes_selected_positions_only():
    x = jax.random.normal(jax.random.PRNGKey(4), (2, 3, 4, 5))

    class Probe(nn.Module):
        @nn.compact
        def __call__(self, v):
            return hooks.BinaryInput()(self, v, True)

    sel = jnp.zeros((3, 4)).at[0, :].set(1.0).at[1, 0].set(1.0)
    out = np.asarray(Probe().apply({"binary": {"inputs": sel}}, x))
    np.testing.assert_array_equal(out[:, 0], np.where(np.asarray(x)[:, 0] >= 0, 1.0, -1.0))
    np.testing.assert_array_equal(out[:, 1, 1:], np.asarray(x)[:, 1, 1:])
    np.testing.assert_array_equal(out[:, 2], np.asarray(x)[:, 2])
    full = np.asarray(Probe().apply({}, x))  # no selection given: fully binarized
    assert set(np.unique(full)) == {-1.0, 1.0}


@pytest.mark.parametrize("pad_value", [-1.0, 0.0, 1.0])
@pytest.mark.parametrize("cin,stride", [(3, 1), (33, 2)])
def test_binarized_conv_layer_equals_the_packed_xnor_popcount_kernel(pad_value, cin, stride):
    """BNN layer (+-1 weights and inputs, alpha on) == alpha * packed integer conv, exactly up to
    the float rounding of alpha * integer."""
    rule = rules_lib.Rule(kernel_hook=hooks.BinaryKernel(), input_hook=hooks.BinaryInput(),
                          pad_value=pad_value)
    conv = LayerFactory(rules=(rule,)).conv(7, 3, stride)
    x = jax.random.normal(jax.random.PRNGKey(5), (2, 9, 9, cin))
    variables = conv.init(jax.random.PRNGKey(6), x)
    y = np.asarray(conv.apply(variables, x))
    w = variables["params"]["kernel"]
    integer = packed.conv2d(packed.pack(x), packed.pack(w, axis=2), cin, 3, stride,
                            pad_value=pad_value)
    alpha = np.abs(np.asarray(w)).mean(axis=(0, 1, 2))
    np.testing.assert_allclose(y, np.asarray(integer) * alpha, rtol=1e-5, atol=1e-5)


def test_binarized_transposed_and_dense_layers_equal_the_packed_kernels():
    rule = rules_lib.Rule(kernel_hook=hooks.BinaryKernel(scale=False),
                          input_hook=hooks.BinaryInput())
    factory = LayerFactory(rules=(rule,))
    x = jax.random.normal(jax.random.PRNGKey(7), (2, 5, 5, 35))
    up = factory.conv_transpose(6, 4, 2)
    v = up.init(jax.random.PRNGKey(8), x)
    w = v["params"]["kernel"]
    np.testing.assert_array_equal(
        np.asarray(up.apply(v, x)),
        np.asarray(packed.conv_transpose(packed.pack(x), packed.pack(w, axis=2), 35, 4, 2)))
    fc = factory.dense(10, use_bias=False)
    flat = x.reshape(2, -1)
    v = fc.init(jax.random.PRNGKey(9), flat)
    w = v["params"]["kernel"]
    np.testing.assert_array_equal(
        np.asarray(fc.apply(v, flat)),
        np.asarray(packed.dense(packed.pack(flat), packed.pack(w.T), flat.shape[-1])))


def test_binary_hooks_are_hashable_rule_members():
    rule = rules_lib.Rule(kernel_hook=hooks.BinaryKernel(), input_hook=hooks.BinaryInput(order=2))
    assert hash(rule) == hash(dataclasses.replace(rule))


def _window_means(a, k, s, pads):
    """Reference K: the mean of ``a`` ((N, H, W)) over each k x k window, zeros outside."""
    (top, bottom), (left, right) = pads
    padded = np.pad(a, ((0, 0), (top, bottom), (left, right)))
    ho = (padded.shape[1] - k) // s + 1
    wo = (padded.shape[2] - k) // s + 1
    out = np.zeros((a.shape[0], ho, wo))
    for i in range(ho):
        for j in range(wo):
            out[:, i, j] = padded[:, i * s:i * s + k, j * s:j * s + k].sum(axis=(1, 2)) / (k * k)
    return out


XNOR_K = rules_lib.Rule(kernel_hook=hooks.BinaryKernel(), input_hook=hooks.BinaryInput(),
                        output_hook=hooks.InputScale())
XNOR = rules_lib.Rule(kernel_hook=hooks.BinaryKernel(), input_hook=hooks.BinaryInput())


@pytest.mark.parametrize("kind,k,s,padding", [("conv", 3, 1, "symmetric"), ("conv", 3, 2, "same"),
                                              ("depthwise", 3, 2, "symmetric"),
                                              ("pointwise", 1, 2, "symmetric")])
def test_xnor_input_scale_is_the_window_mean_of_the_channel_mean_abs(kind, k, s, padding):
    """XNOR-Net's K = (mean_c |x|) * box(k) / k^2 with the layer's stride and padding, multiplying
    the +-1 result per output position (and nothing else)."""
    x = jax.random.normal(jax.random.PRNGKey(11), (2, 7, 7, 6)) * jnp.arange(1, 8)[:, None]
    scaled, plain = (LayerFactory(rules=(rule,), padding=padding) for rule in (XNOR_K, XNOR))
    make = {"conv": lambda f: f.conv(5, k, s), "depthwise": lambda f: f.depthwise(6, k, s),
            "pointwise": lambda f: f.conv(5, 1, s)}[kind]
    layer = make(scaled)
    variables = layer.init(jax.random.PRNGKey(12), x)
    y = np.asarray(layer.apply(variables, x))
    base = np.asarray(make(plain).apply(variables, x))
    from lightjax.layers.padding import pad_amounts
    pads = (pad_amounts(7, k, s, padding), pad_amounts(7, k, s, padding))
    ref_k = _window_means(np.abs(np.asarray(x)).mean(axis=-1), k, s, pads)
    np.testing.assert_allclose(y, base * ref_k[..., None], rtol=1e-5, atol=1e-6)


def test_xnor_input_scale_on_dense_transposed_and_partial_selections():
    x = jax.random.normal(jax.random.PRNGKey(13), (2, 4, 4, 8))
    scaled, plain = LayerFactory(rules=(XNOR_K,)), LayerFactory(rules=(XNOR,))
    # dense: the mean |x| over the features of each sample
    flat = x.reshape(2, -1)
    fc = scaled.dense(3, use_bias=False)
    v = fc.init(jax.random.PRNGKey(14), flat)
    np.testing.assert_allclose(
        np.asarray(fc.apply(v, flat)),
        np.asarray(plain.dense(3, use_bias=False).apply(v, flat))
        * np.abs(np.asarray(flat)).mean(axis=-1, keepdims=True), rtol=1e-5)
    # transposed k=4, s=2: each output averages the A of the 2x2 input pixels reaching it
    up = scaled.conv_transpose(3, 4, 2)
    v = up.init(jax.random.PRNGKey(15), x)
    a = np.abs(np.asarray(x)).mean(axis=-1)
    spread = np.asarray(hooks.window_sum(up, jnp.asarray(a)[..., None]))[..., 0] / 4
    np.testing.assert_allclose(np.asarray(up.apply(v, x)),
                               np.asarray(plain.conv_transpose(3, 4, 2).apply(v, x))
                               * spread[..., None], rtol=1e-5, atol=1e-6)
    assert spread[0, 3, 3] == pytest.approx(a[0, 1:3, 1:3].mean(), rel=1e-5)  # interior
    # no input selected: K has no effect; all selected: full K
    conv = scaled.conv(4, 3, 1)
    v = conv.init(jax.random.PRNGKey(16), x)
    params = v["params"]
    none = {"params": params, "binary": {"inputs": jnp.zeros((4, 4))}}
    np.testing.assert_allclose(np.asarray(conv.apply(none, x)),
                               np.asarray(plain.conv(4, 3, 1).apply(none, x)), rtol=1e-6)
    every = {"params": params, "binary": {"inputs": jnp.ones((4, 4))}}
    np.testing.assert_allclose(np.asarray(conv.apply(every, x)),
                               np.asarray(conv.apply({"params": params}, x)), rtol=1e-6)


def test_input_scale_gradient_is_stopped():
    x = jax.random.normal(jax.random.PRNGKey(17), (1, 5, 5, 4))
    conv = LayerFactory(rules=(XNOR_K,)).conv(3, 3, 1)
    v = conv.init(jax.random.PRNGKey(18), x)
    k = hooks.input_scale(conv.bind(v), x)
    g = jax.grad(lambda z: jnp.sum(conv.apply(v, z)))(x)
    # the gradient is the +-1 layer's STE gradient times K, nothing through K itself
    g_plain = jax.vjp(lambda z: LayerFactory(rules=(XNOR,)).conv(3, 3, 1).apply(v, z), x)[1](
        jnp.broadcast_to(k, (1, 5, 5, 3)))[0]
    np.testing.assert_allclose(np.asarray(g), np.asarray(g_plain), rtol=1e-5, atol=1e-6)
