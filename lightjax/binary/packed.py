"""Inference kernels for binarized (+-1) layers: packed bits (XOR + popcount) and int8.

Both paths compute, in integers, exactly what the float32 layer computes on +-1 inputs and
weights (``lightjax.layers`` geometry: NHWC, HWIO kernels, :func:`~lightjax.layers.padding.
pad_amounts`, :mod:`lightjax.layers.transposed`).

**Packed bits** (Larq Compute Engine's convention): +-1 values are packed along the channel axis
into ``uint32`` words; bit ``i`` of word ``j`` is channel ``32 * j + i``, bit 0 = +1, bit 1 = -1
(``bit = x < 0``, so 0 packs as +1). Channels are padded to a multiple of 32 with zero bits (+1)
in BOTH operands, so the padding bits XOR to 0 and the dot product of two +-1 vectors of ``K``
real channels is ``K - 2 * popcount(a XOR b)`` summed over the words. Weights are 32x smaller
than float32. The XOR-popcount "matmul" is unrolled over the words (one fused elementwise loop
over the output, vectorized along the output channels); on the 2-core AVX-512 CPU that was 4-80x
faster than a reduction over a word axis, and (one run on a loaded machine, batch 32) 3.5-27x
faster than the float32 layer (``benchmarks/binary_layers.py``).

======================  =============  ================  ===============================
function                input          weights           packed from a float kernel as
======================  =============  ================  ===============================
:func:`dense`           (..., Wd)      (Cout, Wd)        ``pack(kernel.T)`` (row/output)
:func:`conv2d`          (N, H, W, Wd)  (k, k, Wd, Cout)  ``pack(kernel, axis=2)``
:func:`conv_transpose`  (N, H, W, Wd)  (k, k, Wd, Cout)  ``pack(kernel, axis=2)``
======================  =============  ================  ===============================

``Wd = words(Cin)``; results are ``int32``. Convolutions are im2col on words (the k*k shifted
windows' words concatenated) followed by the packed dense; the transposed convolution is the
packed dense of every input pixel with every tap followed by the integer overlap-add and crop of
:mod:`lightjax.layers.transposed`.

**int8**: +-1 values as ``int8`` in ``lax.conv_general_dilated`` / ``dot_general`` with
``preferred_element_type=int32`` (exact; on CPUs often, not always, faster than float32: see
``benchmarks/binary_layers.py``). :func:`unpack_int8` turns stored packed weights into int8 at
run time, so a model keeps the 32x smaller weights. Same weight layouts as the packed path
(dense: (Cout, Cin)).

**Padding constant** (``pad_value``, the constant the +-1 input is spatially padded with, as the
``pad_value`` of :class:`lightjax.layers.Conv`): +1 pads with zero bits, -1 with words whose real
channels' bits are 1 (channel-padding bits 0). 0 is a true zero, not a binary value: the
convolution is computed with +1 padding and each output then loses, exactly, what the +1 padding
added: ``sum over the taps (a, b) that fall in the padding of S[a, b, o]``, where ``S[a, b, o] =
Cin - 2 * popcount(w[a, b, :, o])`` is the sum of tap ``(a, b)`` of filter ``o`` over the input
channels (the correction is an integer function of the output position, independent of the
input). The int8 path pads with the value itself.

**Scales and BatchNorm** are applied after the integer result: :func:`fold` computes
``y * multiplier + bias`` in float32 and :func:`fold_batch_norm` gives the ``multiplier`` and
``bias`` of a binary layer with per-output-channel weight scale ``alpha`` (and optional bias)
followed by BatchNorm (inference mode).

Every public function validates its arguments (shapes are static, so this also works under
``jax.jit``) and raises :class:`~lightjax.errors.ValidationError` with a one-line message, then
calls a jitted kernel.
"""
from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from lightjax.errors import ValidationError
from lightjax.layers.padding import check_padding, output_size, pad_amounts
from lightjax.layers.transposed import crop_amounts

BITS = 32
PAD_VALUES = (-1, 0, 1)
_SHIFTS = np.arange(BITS, dtype=np.uint32)
_DIMS = ("NHWC", "HWIO", "NHWC")


def words(channels: int) -> int:
    """uint32 words holding ``channels`` packed channels: ``ceil(channels / 32)``."""
    return -(-channels // BITS)


# ----------------------------------------------------------------------------------------------
# Validation
# ----------------------------------------------------------------------------------------------
def _fail(what: str, message: str) -> None:
    raise ValidationError(f"{what}: {message}")


def _check_array(a: Any, what: str, dtype: Any, rank: int | None = None) -> None:
    shape = getattr(a, "shape", None)
    if shape is None or getattr(a, "dtype", None) != jnp.dtype(dtype):
        _fail(what, f"expected a {jnp.dtype(dtype).name} array, got "
                    f"{getattr(a, 'dtype', type(a).__name__)}")
    if rank is not None and len(shape) != rank:
        _fail(what, f"expected rank {rank}, got shape {tuple(shape)}")
    if rank is None and len(shape) < 1:
        _fail(what, "expected an array with a channel (last) axis, got a scalar")


def _check_int(value: Any, what: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        _fail(what, f"must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _check_channels(channels: Any, nwords: int, what: str) -> int:
    channels = _check_int(channels, f"{what}: channels")
    if words(channels) != nwords:
        _fail(what, f"{channels} channels need {words(channels)} uint32 words, the packed axis "
                    f"has {nwords}")
    return channels


def _check_pad_value(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.number)) or \
            value not in PAD_VALUES:
        _fail(what, f"pad_value must be -1, 0 or 1 (+-1 inputs padded with -1, a true zero or "
                    f"+1), got {value!r}")
    return int(value)


def _check_geometry(kernel_size: Any, strides: Any, padding: str, kernel_shape: tuple[int, ...],
                    what: str) -> tuple[int, int]:
    k = _check_int(kernel_size, f"{what}: kernel_size")
    s = _check_int(strides, f"{what}: strides")
    check_padding(padding)
    if tuple(kernel_shape[:2]) != (k, k):
        _fail(what, f"kernel_size {k} does not match the kernel's spatial shape "
                    f"{tuple(kernel_shape[:2])}")
    return k, s


def _check_conv(x: Any, w: Any, kernel_size: Any, strides: Any, padding: str, dtype: Any,
                what: str) -> tuple[int, int]:
    """Ranks, dtypes, kernel geometry, matching input axes, non-empty output."""
    _check_array(x, f"{what}: input", dtype, 4)
    _check_array(w, f"{what}: kernel", dtype, 4)
    k, s = _check_geometry(kernel_size, strides, padding, w.shape, what)
    if w.shape[2] != x.shape[3]:
        _fail(what, f"input channel axis {x.shape[3]} != kernel input axis {w.shape[2]} "
                    f"(kernel (k, k, Cin or words, Cout))")
    for size in x.shape[1:3]:
        if output_size(size, k, s, padding) < 1:
            _fail(what, f"input {tuple(x.shape)} is too small for kernel {k} with "
                        f"{padding!r} padding")
    return k, s


def _check_transposed(x: Any, w: Any, kernel_size: Any, strides: Any, padding: str, dtype: Any,
                      what: str) -> tuple[int, int]:
    _check_array(x, f"{what}: input", dtype, 4)
    _check_array(w, f"{what}: kernel", dtype, 4)
    k, s = _check_geometry(kernel_size, strides, padding, w.shape, what)
    crop_amounts(k, s, padding)  # kernel_size >= strides
    if w.shape[2] != x.shape[3]:
        _fail(what, f"input channel axis {x.shape[3]} != kernel input axis {w.shape[2]}")
    return k, s


def _check_dense(x: Any, w: Any, dtype: Any, what: str) -> None:
    _check_array(x, f"{what}: input", dtype)
    _check_array(w, f"{what}: weights", dtype, 2)
    if w.shape[1] != x.shape[-1]:
        _fail(what, f"input last axis {x.shape[-1]} != weights' input axis {w.shape[1]} "
                    f"(weights (Cout, Cin or words))")


# ----------------------------------------------------------------------------------------------
# Packing
# ----------------------------------------------------------------------------------------------
def _axis(ndim: int, axis: int, what: str) -> int:
    if isinstance(axis, bool) or not isinstance(axis, int) or not -ndim <= axis < ndim:
        _fail(what, f"axis {axis!r} out of range for rank {ndim}")
    return axis % ndim


def pack(x: jax.Array, axis: int = -1) -> jax.Array:
    """Sign-pack ``x`` along ``axis`` (C values -> ``words(C)`` uint32; bit = ``x < 0``, so 0
    and +1 give bit 0). E.g. NHWC (N, H, W, C) -> (N, H, W, Wd); a (k, k, Cin, Cout) kernel with
    ``axis=2`` -> (k, k, Wd, Cout)."""
    x = jnp.asarray(x)
    axis = _axis(x.ndim, axis, "pack")
    if x.shape[axis] < 1:
        _fail("pack", f"empty axis {axis} in shape {x.shape}")
    return _pack(x, axis)


@functools.partial(jax.jit, static_argnums=1)
def _pack(x: jax.Array, axis: int) -> jax.Array:
    x = jnp.moveaxis(x, axis, -1)
    c = x.shape[-1]
    bits = x < 0
    extra = words(c) * BITS - c
    if extra:
        bits = jnp.pad(bits, [(0, 0)] * (x.ndim - 1) + [(0, extra)])
    bits = bits.reshape(*x.shape[:-1], words(c), BITS).astype(jnp.uint32) << _SHIFTS
    return jnp.moveaxis(jnp.sum(bits, axis=-1, dtype=jnp.uint32), -1, axis)  # disjoint bits


def unpack(bits: jax.Array, channels: int, dtype: Any = jnp.float32, axis: int = -1
           ) -> jax.Array:
    """Inverse of :func:`pack`: (..., Wd) uint32 -> (..., channels) +-1 of ``dtype`` (along
    ``axis``); the channel-padding bits are dropped."""
    _check_array(bits, "unpack", jnp.uint32)
    axis = _axis(bits.ndim, axis, "unpack")
    channels = _check_channels(channels, bits.shape[axis], "unpack")
    return _unpack(bits, channels, jnp.dtype(dtype), axis)


def unpack_int8(bits: jax.Array, channels: int, axis: int = -1) -> jax.Array:
    """:func:`unpack` to int8 +-1: stored packed weights -> the int8 kernels' weights, e.g.
    ``unpack_int8(w_bits, cin, axis=2)`` for a (k, k, Wd, Cout) kernel, ``unpack_int8(w_bits,
    cin)`` for (Cout, Wd) dense weights."""
    return unpack(bits, channels, jnp.int8, axis)


@functools.partial(jax.jit, static_argnums=(1, 2, 3))
def _unpack(bits: jax.Array, channels: int, dtype: Any, axis: int) -> jax.Array:
    b = jnp.moveaxis(bits, axis, -1)
    flat = ((b[..., None] >> _SHIFTS) & 1).reshape(*b.shape[:-1], -1)[..., :channels]
    return jnp.moveaxis((1 - 2 * flat.astype(jnp.int32)).astype(dtype), -1, axis)


def _minus_one_words(channels: int) -> np.ndarray:
    """The packed words of ``channels`` -1 values (real channels' bits 1, padding bits 0)."""
    out = np.full(words(channels), 0xFFFFFFFF, np.uint32)
    if channels % BITS:
        out[-1] = (1 << (channels % BITS)) - 1
    return out


# ----------------------------------------------------------------------------------------------
# Packed kernels
# ----------------------------------------------------------------------------------------------
def _popcount_dot(x: jax.Array, wt: jax.Array, channels: int) -> jax.Array:
    """(..., K) x (K, Cout) words -> (..., Cout) int32 ``channels - 2 * popcount(x ^ w)``,
    unrolled over the K words (XLA fuses the sum into one loop over the output)."""
    count = None
    for j in range(x.shape[-1]):
        term = lax.population_count(x[..., j, None] ^ wt[j]).astype(jnp.int32)
        count = term if count is None else count + term
    return channels - 2 * count


def dense(x_bits: jax.Array, w_bits: jax.Array, channels: int) -> jax.Array:
    """Packed +-1 dense layer: (..., Wd) x (Cout, Wd) -> (..., Cout) int32, the dot products of
    the ``channels`` real channels (``w_bits = pack(kernel.T)`` for a (Cin, Cout) kernel)."""
    _check_dense(x_bits, w_bits, jnp.uint32, "dense")
    channels = _check_channels(channels, x_bits.shape[-1], "dense")
    return _dense(x_bits, w_bits, channels)


@functools.partial(jax.jit, static_argnums=2)
def _dense(x: jax.Array, w: jax.Array, channels: int) -> jax.Array:
    return _popcount_dot(x, w.T, channels)


def _inside(h: int, w: int, pads: tuple[tuple[int, int], ...]) -> np.ndarray:
    """(Hp, Wp) bool: True on the padded image's real pixels, False in the padding."""
    (top, bottom), (left, right) = pads
    rows = np.zeros(h + top + bottom, bool)
    rows[top:top + h] = True
    cols = np.zeros(w + left + right, bool)
    cols[left:left + w] = True
    return rows[:, None] & cols[None, :]


def _windows(xp: jax.Array, k: int, s: int, ho: int, wo: int) -> list[jax.Array]:
    """The k*k strided windows (tap (a, b) in row-major order) of a padded NHWC array."""
    return [xp[:, a:a + s * (ho - 1) + 1:s, b:b + s * (wo - 1) + 1:s]
            for a in range(k) for b in range(k)]


def conv2d(x_bits: jax.Array, w_bits: jax.Array, channels: int, kernel_size: int,
           strides: int = 1, padding: str = "symmetric", pad_value: float = 0.0) -> jax.Array:
    """Packed +-1 convolution, exactly :class:`lightjax.layers.Conv` on +-1 values.

    ``x_bits``: (N, H, W, Wd); ``w_bits``: (k, k, Wd, Cout) (``pack(kernel, axis=2)``);
    ``channels``: Cin. Returns (N, Ho, Wo, Cout) int32, ``Ho = output_size(H, k, s, padding)``.
    ``pad_value``: -1, 0 or +1 (see the module doc).
    """
    what = "conv2d"
    k, s = _check_conv(x_bits, w_bits, kernel_size, strides, padding, jnp.uint32, what)
    channels = _check_channels(channels, x_bits.shape[-1], what)
    return _conv2d(x_bits, w_bits, channels, k, s, padding, _check_pad_value(pad_value, what))


@functools.partial(jax.jit, static_argnums=(2, 3, 4, 5, 6))
def _conv2d(x: jax.Array, w: jax.Array, channels: int, k: int, s: int, padding: str,
            pad_value: int) -> jax.Array:
    n, h, wd, nw = x.shape
    pads = (pad_amounts(h, k, s, padding), pad_amounts(wd, k, s, padding))
    ho, wo = output_size(h, k, s, padding), output_size(wd, k, s, padding)
    xp = jnp.pad(x, ((0, 0), *pads, (0, 0)))  # zero bits: +1
    inside = _inside(h, wd, pads)
    padded = not inside.all()
    if pad_value == -1 and padded:
        xp = jnp.where(inside[None, :, :, None], xp, _minus_one_words(channels))
    cols = jnp.concatenate(_windows(xp, k, s, ho, wo), axis=-1)  # (N, Ho, Wo, k*k*Wd)
    y = _popcount_dot(cols, w.reshape(k * k * nw, -1), k * k * channels)
    if pad_value == 0 and padded:
        # S[a, b, o]: what tap (a, b) of filter o adds for a +1 pixel; remove it where it fell
        # in the padding (a true zero adds nothing)
        taps = channels - 2 * jnp.sum(lax.population_count(w), axis=2, dtype=jnp.int32)
        in_pad = _windows(~inside[None, :, :, None], k, s, ho, wo)  # k*k x (1, Ho, Wo, 1)
        for (a, b), mask in zip(np.ndindex(k, k), in_pad):
            if mask.any():
                y = y - mask.astype(np.int32) * taps[a, b]
    return y


def _overlap_add(t: jax.Array, s: int, padding: str) -> jax.Array:
    """(N, H, W, k, k, Cout) per-pixel, per-tap integers -> (N, H*s, W*s, Cout): each pixel's
    tap (a, b) added at (i*s + a, j*s + b) of the full output, then cropped
    (:mod:`lightjax.layers.transposed`'s phase decomposition, taps beyond k being zeros)."""
    n, h, w, k, _, cout = t.shape
    lo, _ = crop_amounts(k, s, padding)
    m = -(-k // s)  # taps per phase along each axis
    big = m * s
    if big != k:
        t = jnp.pad(t, ((0, 0),) * 3 + ((0, big - k),) * 2 + ((0, 0),))
    t = t.reshape(n, h, w, m, s, m, s, cout).transpose(0, 3, 5, 1, 4, 2, 6, 7)
    out = None
    for u in range(m):
        for v in range(m):
            term = t[:, u, v]  # (N, H, s, W, s, Cout), lands in phase block (i + u, j + v)
            if m > 1:
                term = jnp.pad(term, ((0, 0), (u, m - 1 - u), (0, 0), (v, m - 1 - v), (0, 0),
                                      (0, 0)))
            out = term if out is None else out + term
    out = out.reshape(n, (h + m - 1) * s, (w + m - 1) * s, cout)
    return out[:, lo:lo + h * s, lo:lo + w * s, :]


def conv_transpose(x_bits: jax.Array, w_bits: jax.Array, channels: int, kernel_size: int,
                   strides: int, padding: str = "symmetric") -> jax.Array:
    """Packed +-1 transposed convolution, exactly
    :func:`lightjax.layers.transposed.conv_transpose` on +-1 values (its inserted zeros are
    structural: every input pixel adds its packed dot product with every tap).

    ``x_bits``: (N, H, W, Wd); ``w_bits``: (k, k, Wd, Cout) (``pack(kernel, axis=2)``);
    returns (N, H*s, W*s, Cout) int32.
    """
    what = "conv_transpose"
    k, s = _check_transposed(x_bits, w_bits, kernel_size, strides, padding, jnp.uint32, what)
    channels = _check_channels(channels, x_bits.shape[-1], what)
    return _conv_transpose(x_bits, w_bits, channels, s, padding)


@functools.partial(jax.jit, static_argnums=(2, 3, 4))
def _conv_transpose(x: jax.Array, w: jax.Array, channels: int, s: int, padding: str
                    ) -> jax.Array:
    k, _, nw, cout = w.shape
    t = _popcount_dot(x, w.transpose(2, 0, 1, 3).reshape(nw, k * k * cout), channels)
    return _overlap_add(t.reshape(*x.shape[:3], k, k, cout), s, padding)


# ----------------------------------------------------------------------------------------------
# int8 kernels
# ----------------------------------------------------------------------------------------------
def dense_int8(x: jax.Array, w: jax.Array) -> jax.Array:
    """int8 +-1 dense: (..., Cin) x (Cout, Cin) (the packed layout; ``unpack_int8(w_bits,
    Cin)``) -> (..., Cout) int32."""
    _check_dense(x, w, jnp.int8, "dense_int8")
    return _dense_int8(x, w)


@jax.jit
def _dense_int8(x: jax.Array, w: jax.Array) -> jax.Array:
    return lax.dot_general(x, w, (((x.ndim - 1,), (1,)), ((), ())),
                           preferred_element_type=jnp.int32)


def conv2d_int8(x: jax.Array, w: jax.Array, kernel_size: int, strides: int = 1,
                padding: str = "symmetric", pad_value: float = 0.0) -> jax.Array:
    """int8 +-1 convolution: (N, H, W, Cin) x (k, k, Cin, Cout) -> (N, Ho, Wo, Cout) int32,
    exactly :class:`lightjax.layers.Conv` with ``pad_value`` -1, 0 or +1 (the input is padded
    with that value)."""
    what = "conv2d_int8"
    k, s = _check_conv(x, w, kernel_size, strides, padding, jnp.int8, what)
    return _conv2d_int8(x, w, k, s, padding, _check_pad_value(pad_value, what))


@functools.partial(jax.jit, static_argnums=(2, 3, 4, 5))
def _conv2d_int8(x: jax.Array, w: jax.Array, k: int, s: int, padding: str, pad_value: int
                 ) -> jax.Array:
    pads = (pad_amounts(x.shape[1], k, s, padding), pad_amounts(x.shape[2], k, s, padding))
    if pad_value != 0:
        x = jnp.pad(x, ((0, 0), *pads, (0, 0)), constant_values=pad_value)
        pads = ((0, 0), (0, 0))
    return lax.conv_general_dilated(x, w, (s, s), pads, dimension_numbers=_DIMS,
                                    preferred_element_type=jnp.int32)


def conv_transpose_int8(x: jax.Array, w: jax.Array, kernel_size: int, strides: int,
                        padding: str = "symmetric") -> jax.Array:
    """int8 +-1 transposed convolution: (N, H, W, Cin) x (k, k, Cin, Cout) -> (N, H*s, W*s,
    Cout) int32, exactly :func:`lightjax.layers.transposed.conv_transpose`."""
    what = "conv_transpose_int8"
    _, s = _check_transposed(x, w, kernel_size, strides, padding, jnp.int8, what)
    return _conv_transpose_int8(x, w, s, padding)


@functools.partial(jax.jit, static_argnums=(2, 3))
def _conv_transpose_int8(x: jax.Array, w: jax.Array, s: int, padding: str) -> jax.Array:
    k, _, cin, cout = w.shape
    t = lax.dot_general(x, w.transpose(2, 0, 1, 3).reshape(cin, k * k * cout),
                        (((3,), (0,)), ((), ())), preferred_element_type=jnp.int32)
    return _overlap_add(t.reshape(*x.shape[:3], k, k, cout), s, padding)


# ----------------------------------------------------------------------------------------------
# Scales and BatchNorm
# ----------------------------------------------------------------------------------------------
def fold(y_int: jax.Array, multiplier: jax.Array, bias: jax.Array) -> jax.Array:
    """float32 ``y_int * multiplier + bias``, per output channel (last axis; scalars allowed).
    int32 -> float32 is exact while ``|y| < 2**24``."""
    y = jnp.asarray(y_int)
    for name, v in (("multiplier", multiplier), ("bias", bias)):
        if jnp.ndim(v) > 1 or (jnp.ndim(v) == 1 and jnp.shape(v)[0] != y.shape[-1]):
            _fail("fold", f"{name} must be a scalar or have shape ({y.shape[-1]},), got "
                          f"{jnp.shape(v)}")
    return (y.astype(jnp.float32) * jnp.asarray(multiplier, jnp.float32)
            + jnp.asarray(bias, jnp.float32))


def fold_batch_norm(alpha: Any, gamma: Any, beta: Any, mean: Any, var: Any, eps: float,
                    conv_bias: Any = None) -> tuple[jax.Array, jax.Array]:
    """``(multiplier, bias)`` for :func:`fold` such that ``fold(y, multiplier, bias) ==
    BN(alpha * y + conv_bias)``, BN in inference mode: ``gamma * (z - mean) / sqrt(var + eps) +
    beta``. With ``r = gamma / sqrt(var + eps)``: ``multiplier = alpha * r``, ``bias = beta -
    mean * r + conv_bias * r``. All per output channel (or scalars); float32."""
    f32 = lambda v: jnp.asarray(v, jnp.float32)  # noqa: E731
    r = f32(gamma) / jnp.sqrt(f32(var) + f32(eps))
    bias = f32(beta) - f32(mean) * r
    if conv_bias is not None:
        bias = bias + f32(conv_bias) * r
    return f32(alpha) * r, bias
