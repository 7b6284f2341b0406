"""ShuffleNet blocks: channel shuffle, padded pooling, the V1/V2 units against a lax reference."""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from model_fixtures import random_variables
from jax import lax

from lightjax.layers import LayerFactory
from lightjax.layers.shuffle import (ShuffleV1Unit, ShuffleV2Unit, avg_pool, channel_shuffle,
                                     max_pool, shuffle_permutation)

EPS = 1e-5  # LayerFactory's default bn_epsilon


def _normal(seed, shape):
    return jnp.asarray(np.random.default_rng(seed).standard_normal(shape), jnp.float32)


# ------------------------------------------------------------------ channel shuffle
@pytest.mark.parametrize("groups,order", [(2, [0, 3, 1, 4, 2, 5]), (3, [0, 2, 4, 1, 3, 5]),
                                          (1, [0, 1, 2, 3, 4, 5]), (6, [0, 1, 2, 3, 4, 5])])
def test_channel_shuffle_is_the_papers_permutation(groups, order):
    x = jnp.broadcast_to(jnp.arange(6.0), (2, 3, 4, 6))  # channel c holds the value c
    y = channel_shuffle(x, groups)
    assert y.shape == x.shape
    np.testing.assert_array_equal(y[0, 0, 0], order)
    np.testing.assert_array_equal(y, x[..., shuffle_permutation(6, groups)])
    np.testing.assert_array_equal(shuffle_permutation(6, groups), order)


def _torch_style_shuffle(x, groups):
    """torchvision's channel_shuffle on an NCHW view: view(g, C/g) -> transpose -> flatten."""
    n, h, w, c = x.shape
    nchw = jnp.transpose(x, (0, 3, 1, 2)).reshape(n, groups, c // groups, h, w)
    out = nchw.transpose(0, 2, 1, 3, 4).reshape(n, c, h, w)
    return jnp.transpose(out, (0, 2, 3, 1))


def _megvii_v1_shuffle(x, groups):
    """megvii's ShuffleV1Block.channel_shuffle (reshape (C/g, g)): the inverse permutation."""
    n, h, w, c = x.shape
    nchw = np.transpose(np.asarray(x), (0, 3, 1, 2)).reshape(n, c // groups, groups, h, w)
    out = nchw.transpose(0, 2, 1, 3, 4).reshape(n, c, h, w)
    return np.transpose(out, (0, 2, 3, 1))


@pytest.mark.parametrize("groups", [2, 3, 4, 8])
def test_channel_shuffle_matches_torchvision_and_inverts_megvii(groups):
    x = _normal(0, (2, 3, 3, 24))
    np.testing.assert_array_equal(channel_shuffle(x, groups), _torch_style_shuffle(x, groups))
    # megvii's V1 shuffle undoes ours (and, for g != C/g, differs from it).
    np.testing.assert_array_equal(_megvii_v1_shuffle(channel_shuffle(x, groups), groups), x)
    assert not np.array_equal(_megvii_v1_shuffle(x, groups), channel_shuffle(x, groups))


@pytest.mark.parametrize("groups", [4, 5, 0, -2, 2.0, True])
def test_channel_shuffle_rejects_bad_groups(groups):
    with pytest.raises(ValueError):
        channel_shuffle(jnp.zeros((1, 2, 2, 6)), groups)
    with pytest.raises(ValueError):
        shuffle_permutation(6, groups)


# ------------------------------------------------------------------ pooling
def _pool_reference(x, k, s, pad, op, fill):
    """Explicit windows over a padded numpy copy."""
    n, h, w, c = x.shape
    xp = np.pad(np.asarray(x), ((0, 0), (pad, pad), (pad, pad), (0, 0)), constant_values=fill)
    ho, wo = (h + 2 * pad - k) // s + 1, (w + 2 * pad - k) // s + 1
    out = np.empty((n, ho, wo, c), np.float32)
    for i in range(ho):
        for j in range(wo):
            out[:, i, j] = op(xp[:, i * s:i * s + k, j * s:j * s + k], axis=(1, 2))
    return out


@pytest.mark.parametrize("size", [7, 8])
def test_max_pool_pads_with_minus_infinity_like_pytorch(size):
    x = -1.0 - jnp.abs(_normal(1, (2, size, size, 3)))  # all < 0
    y = max_pool(x, 3, 2)
    assert y.shape == (2, -(-size // 2), -(-size // 2), 3)
    np.testing.assert_array_equal(y, _pool_reference(x, 3, 2, 1, np.max, -np.inf))
    assert float(y.max()) < 0  # zero padding would have leaked zeros into border windows


@pytest.mark.parametrize("size", [7, 8])
def test_avg_pool_counts_padding_like_pytorch(size):
    x = _normal(2, (2, size, size, 3))
    y = avg_pool(x, 3, 2)
    np.testing.assert_allclose(y, _pool_reference(x, 3, 2, 1, np.sum, 0.0) / 9, atol=1e-6)
    # corner window: 4 real values, divided by 9 (count_include_pad=True).
    np.testing.assert_allclose(y[:, 0, 0], x[:, :2, :2].sum(axis=(1, 2)) / 9, atol=1e-6)


def test_same_padding_pooling_is_tensorflows():
    x = jnp.arange(16.0).reshape(1, 4, 4, 1)
    # SAME at stride 2 pads 0 before, 1 after; average divides by the valid count only.
    np.testing.assert_allclose(avg_pool(x, 3, 2, "same")[0, 0, 0, 0], x[0, :3, :3].mean())
    np.testing.assert_allclose(avg_pool(x, 3, 2, "same")[0, 1, 1, 0], x[0, 2:, 2:].mean())
    np.testing.assert_array_equal(max_pool(x, 3, 2, "same")[0, :, :, 0], [[10, 11], [14, 15]])
    with pytest.raises(ValueError, match="padding"):
        max_pool(x, 3, 2, "valid")


# ------------------------------------------------------------------ unit references (lax)


def _conv(x, kernel, stride=1, groups=1):
    pad = kernel.shape[0] // 2
    return lax.conv_general_dilated(x, kernel, (stride, stride), ((pad, pad), (pad, pad)),
                                    dimension_numbers=("NHWC", "HWIO", "NHWC"),
                                    feature_group_count=groups, precision="highest")


def _conv_bn(v, name, x, stride=1, groups=1, relu=False, depthwise=False):
    p, s = v["params"][name], v["batch_stats"][name]
    kernel = p["conv"]["kernel"]
    y = _conv(x, kernel, stride, x.shape[-1] if depthwise else groups)
    y = (y - s["bn"]["mean"]) / jnp.sqrt(s["bn"]["var"] + EPS) * p["bn"]["scale"] + p["bn"]["bias"]
    return jnp.maximum(y, 0) if relu else y


@functools.partial(jax.jit, static_argnums=(2, 3, 4))
def _v1_branch(v, x, groups, stride, first_grouped):
    y = _conv_bn(v, "gconv1", x, groups=groups if first_grouped else 1, relu=True)
    if groups > 1:
        y = _torch_style_shuffle(y, groups)
    y = _conv_bn(v, "dw", y, stride, depthwise=True)
    return _conv_bn(v, "gconv2", y, groups=groups)


def _v1_reference(v, x, groups, stride, first_grouped):
    y = _v1_branch(v, x, groups, stride, first_grouped)
    if stride == 1:
        return jnp.maximum(x + y, 0)
    pooled = _pool_reference(x, 3, 2, 1, np.sum, 0.0) / 9
    return jnp.concatenate([pooled, jnp.maximum(y, 0)], axis=-1)


X = _normal(3, (2, 8, 7, 12))


def _init_apply(unit, x=X):
    """Random variables and the jitted eval-mode output (eager flax is slow)."""
    variables = random_variables(unit, x, False)
    return variables, jax.jit(lambda v, x: unit.apply(v, x, False))(variables, x)


@pytest.mark.parametrize("stride,features,first_grouped",
                         [(1, 12, True), (2, 36, True), (2, 36, False)])
def test_shuffle_v1_unit_matches_lax_reference(stride, features, first_grouped):
    unit = ShuffleV1Unit(features, bottleneck=9, groups=3, strides=stride,
                         first_group_conv_grouped=first_grouped)
    variables, y = _init_apply(unit)
    assert y.shape == (2, -(-8 // stride), -(-7 // stride), features)
    ref = _v1_reference(variables, X, 3, stride, first_grouped)
    np.testing.assert_allclose(y, ref, rtol=1e-4, atol=1e-4)
    params = variables["params"]
    assert params["gconv1"]["conv"]["kernel"].shape == (1, 1, 4 if first_grouped else 12, 9)
    assert params["dw"]["conv"]["kernel"].shape == (3, 3, 1, 9)
    branch = features - 12 if stride == 2 else features
    assert params["gconv2"]["conv"]["kernel"].shape == (1, 1, 3, branch)


def test_shuffle_v1_unit_channel_errors():
    with pytest.raises(ValueError, match="must equal the input channels"):
        ShuffleV1Unit(24, 9, 3, strides=1).init(jax.random.PRNGKey(0), X, False)
    with pytest.raises(ValueError, match="must exceed"):
        ShuffleV1Unit(12, 9, 3, strides=2).init(jax.random.PRNGKey(0), X, False)
    with pytest.raises(ValueError, match="groups"):
        ShuffleV1Unit(12, 10, 3)  # bottleneck not divisible by groups
    with pytest.raises(ValueError, match="strides"):
        ShuffleV1Unit(12, 9, 3, strides=3)


def test_shuffle_v1_unit_train_mode_updates_batch_stats():
    unit = ShuffleV1Unit(36, 9, 3, strides=2)
    variables = random_variables(unit, X, False)
    _, updates = jax.jit(lambda v, x: unit.apply(v, x, True, mutable=["batch_stats"]))(
        variables, X)
    for layer in ("gconv1", "dw", "gconv2"):
        assert not np.allclose(updates["batch_stats"][layer]["bn"]["mean"],
                               variables["batch_stats"][layer]["bn"]["mean"])


def _v2_reference(v, x, stride):
    if stride == 1:
        c = x.shape[-1]
        x1, x2 = x[..., :c // 2], x[..., c // 2:]
    else:
        x1 = _conv_bn(v, "branch1_dw", x, stride, depthwise=True)
        x1 = _conv_bn(v, "branch1_pw", x1, relu=True)
        x2 = x
    y = _conv_bn(v, "branch2_pw1", x2, relu=True)
    y = _conv_bn(v, "branch2_dw", y, stride, depthwise=True)
    y = _conv_bn(v, "branch2_pw2", y, relu=True)
    return _torch_style_shuffle(jnp.concatenate([x1, y], axis=-1), 2)


@pytest.mark.parametrize("stride,kwargs,out",
                         [(1, dict(branch_features=6), 12), (2, dict(branch_features=12), 24),
                          (1, dict(branch_features=8, mid=5), 14),
                          (2, dict(branch_features=7, mid=3, branch1_features=5), 12)])
def test_shuffle_v2_unit_matches_lax_reference(stride, kwargs, out):
    unit = ShuffleV2Unit(strides=stride, **kwargs)
    variables, y = _init_apply(unit)
    assert y.shape == (2, -(-8 // stride), -(-7 // stride), out)
    assert unit.out_channels(12) == out
    ref = jax.jit(lambda v, x: _v2_reference(v, x, stride))(variables, X)
    np.testing.assert_allclose(y, ref, rtol=1e-4, atol=1e-4)
    if stride == 1:  # the first half passes through untouched, to the even output positions
        np.testing.assert_array_equal(y[..., 0:12:2], X[..., :6])
        assert "branch1_pw" not in variables["params"]
    else:
        assert variables["params"]["branch1_dw"]["conv"]["kernel"].shape == (3, 3, 1, 12)


def test_shuffle_v2_unit_channel_errors():
    with pytest.raises(ValueError, match="even"):
        ShuffleV2Unit(6).init(jax.random.PRNGKey(0), X[..., :11], False)  # odd input split
    with pytest.raises(ValueError, match="even"):
        ShuffleV2Unit(7).init(jax.random.PRNGKey(0), X, False)  # 6 + 7 channels to shuffle
    with pytest.raises(ValueError, match="stride-2"):
        ShuffleV2Unit(6, strides=1, branch1_features=6)
    with pytest.raises(ValueError, match="positive"):
        ShuffleV2Unit(0)


@pytest.mark.parametrize("unit", [ShuffleV1Unit(36, 9, 3, strides=2),
                                  ShuffleV2Unit(12, strides=2)])
def test_units_same_output_for_both_depthwise_impls(unit):
    outs = []
    for impl in ("xla", "shifted"):
        outs.append(_init_apply(unit.clone(layers=LayerFactory(depthwise_impl=impl)))[1])
    np.testing.assert_allclose(outs[0], outs[1], rtol=1e-4, atol=1e-4)
