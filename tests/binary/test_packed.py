"""Packed-bit (XOR + popcount) and int8 kernels of binarized layers: exactly (integers) the float32
+-1 computation (lax conv on an input padded with the constant, matmul, lightjax's transposed
conv), packing conventions, BatchNorm folding, validation."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from lightjax.binary import packed
from lightjax.errors import ValidationError
from lightjax.layers import Conv
from lightjax.layers import transposed
from lightjax.layers.padding import pad_amounts

RNG = np.random.default_rng(0)


def pm1(*shape: int) -> np.ndarray:
    return np.where(RNG.random(shape) < 0.5, -1.0, 1.0).astype(np.float32)


def as_int(y) -> np.ndarray:
    y = np.asarray(y)
    assert np.array_equal(y, np.round(y)), "the float reference is not integral"
    return y.astype(np.int32)


def conv_reference(x, w, k, s, padding, pad_value):
    """float32 conv of +-1 values, the input padded with ``pad_value`` then a VALID conv."""
    pads = (pad_amounts(x.shape[1], k, s, padding), pad_amounts(x.shape[2], k, s, padding))
    xp = np.pad(x, ((0, 0), *pads, (0, 0)), constant_values=pad_value)
    return as_int(lax.conv_general_dilated(xp, w, (s, s), "VALID",
                                           dimension_numbers=("NHWC", "HWIO", "NHWC")))


def int8(a) -> jax.Array:
    return jnp.asarray(a, jnp.int8)


# ----------------------------------------------------------------------------------------------
# Packing
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("channels", [1, 3, 32, 33, 70])
def test_pack_unpack_round_trip_with_zero_as_plus_one(channels):
    x = RNG.standard_normal((2, 3, channels)).astype(np.float32)
    x[0, 0] = 0.0  # sign(0) = +1
    bits = packed.pack(x)
    assert bits.dtype == jnp.uint32 and bits.shape == (2, 3, packed.words(channels))
    want = np.where(x < 0, -1, 1)
    np.testing.assert_array_equal(packed.unpack(bits, channels), want.astype(np.float32))
    assert packed.unpack(bits, channels).dtype == jnp.float32
    got8 = packed.unpack_int8(bits, channels)
    assert got8.dtype == jnp.int8
    np.testing.assert_array_equal(got8, want)
    # channel padding is zero bits (+1): all -1 sets exactly the real channels' bits
    minus = np.asarray(packed.pack(-np.ones(channels, np.float32)))
    assert sum(bin(int(v)).count("1") for v in minus) == channels


def test_bit_order_and_axis():
    x = np.ones(70, np.float32)
    x[[0, 33, 69]] = -1.0
    np.testing.assert_array_equal(packed.pack(x), np.array([1, 2, 1 << 5], np.uint32))
    assert packed.words(32) == 1 and packed.words(33) == 2 and packed.words(64) == 2
    w = pm1(3, 3, 40, 5)  # HWIO kernel packed along its input axis
    wb = packed.pack(w, axis=2)
    assert wb.shape == (3, 3, 2, 5)
    np.testing.assert_array_equal(packed.unpack(wb, 40, axis=2), w)
    np.testing.assert_array_equal(packed.unpack_int8(wb, 40, axis=2), w)
    w64 = pm1(3, 3, 64, 8)
    assert packed.pack(w64, axis=2).nbytes * 32 == w64.nbytes  # 32x smaller than float32


# ----------------------------------------------------------------------------------------------
# Dense
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("channels", [3, 64, 70])
def test_dense_matches_float_matmul(channels):
    x, w = pm1(2, 5, channels), pm1(channels, 7)  # w: a (Cin, Cout) Dense kernel
    want = as_int(x @ w)
    got = packed.dense(packed.pack(x), packed.pack(w.T), channels)
    assert got.dtype == jnp.int32 and got.shape == (2, 5, 7)
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(packed.dense_int8(int8(x), int8(w.T)), want)
    w8 = packed.unpack_int8(packed.pack(w.T), channels)  # stored packed, unpacked at run time
    np.testing.assert_array_equal(packed.dense_int8(int8(x), w8), want)


# ----------------------------------------------------------------------------------------------
# Convolution
# ----------------------------------------------------------------------------------------------
# (Cin, Cout, k, s, padding, H, W)
CONV_CASES = [
    (1, 4, 3, 1, "symmetric", 5, 6),
    (3, 5, 3, 2, "same", 7, 6),
    (33, 3, 3, 2, "symmetric", 6, 5),
    (70, 6, 3, 1, "same", 5, 4),
    (64, 3, 3, 1, "symmetric", 4, 3),
    (32, 5, 1, 1, "symmetric", 4, 4),
    (64, 4, 1, 2, "same", 5, 4),
    (5, 3, 2, 2, "same", 5, 4),       # even kernel: asymmetric SAME padding
    (5, 3, 4, 1, "symmetric", 4, 5),  # even kernel, symmetric: output one larger
]


@pytest.mark.parametrize("cin,cout,k,s,padding,h,w", CONV_CASES)
def test_conv2d_matches_float_conv_for_every_pad_value(cin, cout, k, s, padding, h, w):
    x, kernel = pm1(2, h, w, cin), pm1(k, k, cin, cout)
    xb, wb = packed.pack(x), packed.pack(kernel, axis=2)
    results = []
    for pad_value in (-1, 0, 1):
        want = conv_reference(x, kernel, k, s, padding, pad_value)
        got = packed.conv2d(xb, wb, cin, k, s, padding, pad_value)
        assert got.dtype == jnp.int32
        np.testing.assert_array_equal(got, want, err_msg=f"packed, pad_value {pad_value}")
        got8 = packed.conv2d_int8(int8(x), int8(kernel), k, s, padding, pad_value)
        assert got8.dtype == jnp.int32
        np.testing.assert_array_equal(got8, want, err_msg=f"int8, pad_value {pad_value}")
        results.append(want)
    if k > 1:  # the padding constant matters
        assert not np.array_equal(results[0], results[1])
        assert not np.array_equal(results[1], results[2])


@pytest.mark.parametrize("pad_value", [-1.0, 0.0, 1.0])
def test_conv2d_equals_the_lightjax_conv_layer(pad_value):
    x, kernel = pm1(2, 5, 6, 33), pm1(3, 3, 33, 4)
    layer = Conv(features=4, kernel_size=3, strides=2, padding="same", pad_value=pad_value)
    want = as_int(layer.apply({"params": {"kernel": jnp.asarray(kernel)}}, jnp.asarray(x)))
    got = packed.conv2d(packed.pack(x), packed.pack(kernel, axis=2), 33, 3, 2, "same",
                        pad_value)
    np.testing.assert_array_equal(got, want)


def test_conv2d_under_jit():
    x, kernel = pm1(1, 5, 5, 40), pm1(3, 3, 40, 3)
    xb, wb = packed.pack(x), packed.pack(kernel, axis=2)
    f = jax.jit(lambda a, b: packed.conv2d(a, b, 40, 3, 1, "symmetric", 0))
    np.testing.assert_array_equal(f(xb, wb), conv_reference(x, kernel, 3, 1, "symmetric", 0))
    g = jax.jit(lambda v: packed.conv2d(packed.pack(v), wb, 40, 3, 1, "symmetric", -1))
    np.testing.assert_array_equal(g(x), conv_reference(x, kernel, 3, 1, "symmetric", -1))


# ----------------------------------------------------------------------------------------------
# Transposed convolution
# ----------------------------------------------------------------------------------------------
# (Cin, Cout, k, s, padding)
TRANSPOSED_CASES = [
    (33, 3, 4, 2, "symmetric"),
    (3, 4, 4, 2, "same"),
    (32, 2, 2, 2, "symmetric"),
    (70, 2, 3, 2, "symmetric"),
    (64, 3, 3, 2, "same"),
]


@pytest.mark.parametrize("cin,cout,k,s,padding", TRANSPOSED_CASES)
def test_conv_transpose_matches_lightjax_float(cin, cout, k, s, padding):
    x, kernel = pm1(2, 3, 4, cin), pm1(k, k, cin, cout)
    want = as_int(transposed.conv_transpose(jnp.asarray(x), jnp.asarray(kernel), s, padding))
    assert want.shape == (2, 3 * s, 4 * s, cout)
    got = packed.conv_transpose(packed.pack(x), packed.pack(kernel, axis=2), cin, k, s, padding)
    assert got.dtype == jnp.int32
    np.testing.assert_array_equal(got, want)
    got8 = packed.conv_transpose_int8(int8(x), int8(kernel), k, s, padding)
    np.testing.assert_array_equal(got8, want)


# ----------------------------------------------------------------------------------------------
# Scales and BatchNorm
# ----------------------------------------------------------------------------------------------
def test_fold_batch_norm_equals_bn_of_the_scaled_float_conv():
    cout = 6
    x, kernel = pm1(2, 5, 5, 35), pm1(3, 3, 35, cout)
    alpha = RNG.uniform(0.1, 1.0, cout).astype(np.float32)
    gamma, beta, mean, conv_bias = (RNG.standard_normal(cout).astype(np.float32)
                                    for _ in range(4))
    var, eps = RNG.uniform(0.5, 2.0, cout).astype(np.float32), 1e-3
    y = packed.conv2d(packed.pack(x), packed.pack(kernel, axis=2), 35, 3, 1, "symmetric", -1)
    z = np.asarray(conv_reference(x, kernel, 3, 1, "symmetric", -1), np.float64)
    for cb in (None, conv_bias):
        multiplier, bias = packed.fold_batch_norm(alpha, gamma, beta, mean, var, eps, cb)
        got = packed.fold(y, multiplier, bias)
        assert got.dtype == jnp.float32
        pre = alpha * z + (0.0 if cb is None else cb)
        want = gamma * (pre - mean) / np.sqrt(var.astype(np.float64) + eps) + beta
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(packed.fold(y, 0.5, 1.0), 0.5 * z + 1.0, rtol=1e-6)


# ----------------------------------------------------------------------------------------------
# Validation
# ----------------------------------------------------------------------------------------------
XB, WB = packed.pack(pm1(1, 4, 4, 40)), packed.pack(pm1(3, 3, 40, 2), axis=2)
X8, W8 = int8(pm1(1, 4, 4, 40)), int8(pm1(3, 3, 40, 2))
BAD_CALLS = {
    "pack scalar": lambda: packed.pack(1.0),
    "pack axis": lambda: packed.pack(np.ones((2, 3)), axis=2),
    "pack empty": lambda: packed.pack(np.ones((2, 0))),
    "unpack float": lambda: packed.unpack(np.ones((2, 2), np.float32), 40),
    "unpack channels": lambda: packed.unpack(XB, 70),
    "unpack zero channels": lambda: packed.unpack(XB, 0),
    "dense words": lambda: packed.dense(XB[0, 0], packed.pack(pm1(2, 70)), 40),
    "dense channels": lambda: packed.dense(XB[0, 0], packed.pack(pm1(2, 40)), 65),
    "dense weights rank": lambda: packed.dense(XB[0, 0], WB, 40),
    "dense_int8 dtype": lambda: packed.dense_int8(XB[0, 0], packed.pack(pm1(2, 40))),
    "dense_int8 shape": lambda: packed.dense_int8(X8[0, 0], int8(pm1(40, 2))),
    "conv pad_value": lambda: packed.conv2d(XB, WB, 40, 3, 1, "symmetric", 0.5),
    "conv pad_value 2": lambda: packed.conv2d(XB, WB, 40, 3, 1, "symmetric", 2),
    "conv pad_value bool": lambda: packed.conv2d(XB, WB, 40, 3, 1, "symmetric", True),
    "conv kernel_size": lambda: packed.conv2d(XB, WB, 40, 1, 1),
    "conv strides": lambda: packed.conv2d(XB, WB, 40, 3, 0),
    "conv padding": lambda: packed.conv2d(XB, WB, 40, 3, 1, "valid"),
    "conv rank": lambda: packed.conv2d(XB[0], WB, 40, 3, 1),
    "conv float input": lambda: packed.conv2d(jnp.ones((1, 4, 4, 2)), WB, 40, 3, 1),
    "conv channels": lambda: packed.conv2d(XB, WB, 33.0, 3, 1),
    "conv words": lambda: packed.conv2d(XB, WB[:, :, :1], 40, 3, 1),
    "conv empty": lambda: packed.conv2d(XB[:, :0], WB, 40, 3, 1),
    "conv_int8 pad_value": lambda: packed.conv2d_int8(X8, W8, 3, 1, "same", -0.5),
    "conv_int8 packed input": lambda: packed.conv2d_int8(XB, W8, 3, 1),
    "conv_int8 channels": lambda: packed.conv2d_int8(X8[..., :3], W8, 3, 1),
    "transpose k < s": lambda: packed.conv_transpose(XB, WB, 40, 3, 4),
    "transpose kernel_size": lambda: packed.conv_transpose(XB, WB, 40, 4, 2),
    "transpose_int8 k < s": lambda: packed.conv_transpose_int8(X8, W8, 3, 4),
    "fold shape": lambda: packed.fold(jnp.zeros((2, 3), jnp.int32), jnp.ones(4), 0.0),
}


@pytest.mark.parametrize("name", list(BAD_CALLS))
def test_bad_inputs_raise_one_line_validation_errors(name):
    with pytest.raises(ValidationError) as info:
        BAD_CALLS[name]()
    assert "\n" not in str(info.value)
