"""Depthwise convolution kernels (functional): several implementations, one contract.

All take ``x`` of shape (N, H, W, C) and ``kernel`` of shape (kh, kw, 1, C) (the layout of
``lax.conv_general_dilated`` with ``feature_group_count=C``) and return (N, H', W', C).

- ``'xla'``: ``lax.conv_general_dilated(feature_group_count=C)``. XLA's grouped convolution; slow
  on CPU (measured 6-10x slower forward and 14-24x forward+backward than ``'shifted'`` on
  batch-128 MobileNet shapes, see benchmarks/RESULTS.md).
- ``'shifted'``: a sum of kh*kw shifted slices times per-channel weights. Pure elementwise work, so
  it fuses well and, under ``jax.vmap`` over the kernel, stays elementwise instead of becoming a
  grouped convolution. Stride 2 is done on a space-to-depth view (four phase images), so no strided
  slice appears in the graph and the backward pass has no interior padding. Custom VJP: the
  padded input is the only saved activation, the kernel gradient is one variadic reduction over
  groups of 8 images, the input gradient is written out per phase on large images.
- ``'auto'``: ``'shifted'`` on CPU, ``'xla'`` on other backends (GPU/TPU have fast native depthwise
  kernels; run benchmarks/depthwise.py there to confirm for your shapes).
"""
from __future__ import annotations

import functools
from typing import Callable

import jax
import jax.numpy as jnp
from jax import lax

from lightjax.layers.padding import output_size, pad_amounts
from lightjax.errors import ValidationError

IMPLEMENTATIONS = ("auto", "xla", "shifted")


def check(impl: str) -> str:
    """``impl`` if it names an implementation, else ``ValueError`` (no backend is started)."""
    if impl not in IMPLEMENTATIONS:
        raise ValidationError(
            f"unknown depthwise implementation {impl!r}; allowed: {', '.join(IMPLEMENTATIONS)}")
    return impl


def resolve(impl: str) -> str:
    """Map ``'auto'`` to a concrete implementation for the default backend."""
    if check(impl) == "auto":
        return "shifted" if jax.default_backend() == "cpu" else "xla"
    return impl


def _pads(x: jax.Array, kernel: jax.Array, stride: int, padding: str):
    kh, kw = kernel.shape[:2]
    return (pad_amounts(x.shape[1], kh, stride, padding),
            pad_amounts(x.shape[2], kw, stride, padding))


def depthwise_xla(x: jax.Array, kernel: jax.Array, stride: int = 1,
                  padding: str = "symmetric") -> jax.Array:
    return lax.conv_general_dilated(
        x, kernel.astype(x.dtype), window_strides=(stride, stride),
        padding=_pads(x, kernel, stride, padding),
        dimension_numbers=("NHWC", "HWIO", "NHWC"), feature_group_count=x.shape[-1])


def _geometry(x_shape, kh: int, kw: int, stride: int, padding: str):
    """Padding, output size and padded extent (``s * (o - 1 + ceil(k / s))``) per spatial axis."""
    h, w = x_shape[1], x_shape[2]
    s = stride
    top, left = pad_amounts(h, kh, s, padding)[0], pad_amounts(w, kw, s, padding)[0]
    ho, wo = output_size(h, kh, s, padding), output_size(w, kw, s, padding)
    hp = s * (ho - 1 + -(-kh // s))
    wp = s * (wo - 1 + -(-kw // s))
    return top, left, ho, wo, hp, wp


def _pad_input(x: jax.Array, kh: int, kw: int, stride: int, padding: str) -> jax.Array:
    """``x`` zero-padded (or cropped) to the (hp, wp) extent every tap slices from."""
    h, w = x.shape[1], x.shape[2]
    top, left, _, _, hp, wp = _geometry(x.shape, kh, kw, stride, padding)
    return jnp.pad(x, ((0, 0), (top, max(hp - h - top, 0)), (left, max(wp - w - left, 0)),
                       (0, 0)))[:, :hp, :wp, :]


def _padded_taps(xp: jax.Array, ho: int, wo: int, stride: int):
    """``tap(a, b)``: the (N, Ho, Wo, C) window of padded ``xp`` that kernel tap (a, b) sees."""
    s = stride
    if s == 1:  # plain slices (an extra phase axis costs ~3x in XLA's CPU fusion)
        return lambda a, b: xp[:, a:a + ho, b:b + wo, :]
    n, hp, wp, c = xp.shape
    # (N, s, s, hp/s, wp/s, C): phases[:, a % s, b % s] holds rows a::s, cols b::s
    phases = xp.reshape(n, hp // s, s, wp // s, s, c).transpose(0, 2, 4, 1, 3, 5)
    return lambda a, b: phases[:, a % s, b % s, a // s:a // s + ho, b // s:b // s + wo, :]


def _taps(x: jax.Array, kh: int, kw: int, stride: int, padding: str):
    """``tap(a, b)``: the (N, Ho, Wo, C) input window multiplied by kernel tap (a, b)."""
    _, _, ho, wo, _, _ = _geometry(x.shape, kh, kw, stride, padding)
    return _padded_taps(_pad_input(x, kh, kw, stride, padding), ho, wo, stride)


def _tap_sum(tap, kernel: jax.Array, dtype) -> jax.Array:
    kh, kw, _, c = kernel.shape
    k = kernel.reshape(kh, kw, c).astype(dtype)
    out = None
    for a in range(kh):
        for b in range(kw):
            term = tap(a, b) * k[a, b]
            out = term if out is None else out + term
    return out


def _shifted_forward(x: jax.Array, kernel: jax.Array, stride: int, padding: str) -> jax.Array:
    kh, kw, _, _ = kernel.shape
    return _tap_sum(_taps(x, kh, kw, stride, padding), kernel, x.dtype)


#: Images summed per group in the first stage of the kernel-gradient reduction (measured on
#: XLA:CPU: 8 is consistently fastest, 2-4x quicker than other sizes on some layers).
_KGRAD_GROUP = 8


def _sum_many(terms: tuple[jax.Array, ...], axes: tuple[int, ...]) -> tuple[jax.Array, ...]:
    """Sums of several same-shape arrays (float32 or float64) over ``axes`` as ONE variadic
    reduction.

    XLA:CPU hands single-operand reductions to a library kernel that needs its operand
    materialized (here: one copy of every tap window); a variadic reduce stays an XLA fusion
    that computes the window products on the fly in a single pass over the inputs.
    """
    zeros = (jnp.zeros((), terms[0].dtype),) * len(terms)
    return tuple(lax.reduce(terms, zeros, lambda p, q: tuple(u + v for u, v in zip(p, q)),
                            axes))


def _kernel_grad_padded(xp: jax.Array, g: jax.Array, kh: int, kw: int,
                        stride: int) -> jax.Array:
    """d(out)/d(kernel) contracted with ``g``, from the padded input: (kh, kw, 1, C), accumulated
    in float32 (float64 for float64 inputs).

    Two stages. First, ONE variadic reduction over a (batch / G, G, H, W, C) view that sums the
    kh*kw window products over each group of G = 8 images (a short reduction over a major axis:
    elementwise adds vectorized along channels, one pass over ``xp`` and ``g``); then each
    (batch / G, Ho, Wo, C) partial is summed. On XLA:CPU this is ~2-4x faster than a
    per-channel reduction of each product over the whole batch, and it is a reshape, not a
    ``lax.scan``: a loop would need its own copy of the (already materialized) padded input.
    """
    n, ho, wo, c = g.shape
    group = max(d for d in range(1, min(n, _KGRAD_GROUP) + 1) if n % d == 0)
    xs = xp.reshape(n // group, group, *xp.shape[1:])
    acc = jnp.promote_types(g.dtype, jnp.float32)
    gs = g.reshape(n // group, group, *g.shape[1:]).astype(acc)
    s = stride
    if s == 1:
        def tap(a, b):
            return xs[:, :, a:a + ho, b:b + wo, :]
    else:
        hp, wp = xp.shape[1], xp.shape[2]
        phases = xs.reshape(n // group, group, hp // s, s, wp // s, s, c)

        def tap(a, b):
            return phases[:, :, a // s:a // s + ho, a % s, b // s:b // s + wo, b % s, :]
    terms = tuple(tap(a, b).astype(acc) * gs for a in range(kh) for b in range(kw))
    partials = _sum_many(terms, (1,))  # kh*kw arrays (batch / G, Ho, Wo, C)
    return jnp.stack([p.sum((0, 1, 2)) for p in partials]).reshape(kh, kw, 1, c)


def _kernel_grad(x: jax.Array, g: jax.Array, kh: int, kw: int, stride: int,
                 padding: str) -> jax.Array:
    """d(out)/d(kernel) contracted with ``g``: (kh, kw, 1, C), float32 accumulation."""
    return _kernel_grad_padded(_pad_input(x, kh, kw, stride, padding), g, kh, kw, stride)


def _input_grad(g: jax.Array, kernel: jax.Array, x_shape, stride: int,
                padding: str) -> jax.Array:
    """d(out)/d(x) contracted with ``g``: the transposed shifted sum, written out.

    Per phase (p, q) of the padded input (rows p::s, cols q::s), the gradient is a stride-1
    correlation of ``g`` (zero-padded by ceil(k/s) - 1 on each side) with the taps of that
    phase, flipped; the s*s phase images are interleaved and cropped to ``x``'s extent. Each
    element of dx costs ~kh*kw/s^2 multiply-adds and there is no pad/select chain per tap.
    """
    kh, kw, _, c = kernel.shape
    s = stride
    n, h, w = x_shape[0], x_shape[1], x_shape[2]
    top, left, ho, wo, hp, wp = _geometry(x_shape, kh, kw, s, padding)
    jh, jw = hp // s - ho + 1, wp // s - wo + 1  # ceil(k / s): taps per phase along each axis
    hs, ws = hp // s, wp // s                     # phase image extent
    k = kernel.reshape(kh, kw, c).astype(g.dtype)
    gp = jnp.pad(g, ((0, 0), (jh - 1, jh - 1), (jw - 1, jw - 1), (0, 0)))
    phase_rows = []
    for p in range(s):
        phase_row = []
        for q in range(s):
            acc = None
            for a in range(p, kh, s):
                for b in range(q, kw, s):
                    i, j = (a - p) // s, (b - q) // s
                    term = gp[:, jh - 1 - i:jh - 1 - i + hs, jw - 1 - j:jw - 1 - j + ws, :] * k[a, b]
                    acc = term if acc is None else acc + term
            if acc is None:
                acc = jnp.zeros((n, hs, ws, c), g.dtype)
            phase_row.append(acc)
        phase_rows.append(phase_row)
    if s == 1:
        dxp = phase_rows[0][0]
    else:  # (N, hs, s, ws, s, C) -> (N, hp, wp, C)
        dxp = jnp.stack([jnp.stack(row, axis=3) for row in phase_rows], axis=2)
        dxp = dxp.reshape(n, hp, wp, c)
    dxp = jnp.pad(dxp, ((0, 0), (0, max(top + h - hp, 0)), (0, max(left + w - wp, 0)), (0, 0)))
    return dxp[:, top:top + h, left:left + w, :]


#: Input sizes (H * W) from which the backward writes the input gradient out explicitly
#: (:func:`_input_grad`); below it, autodiff of the shifted sum is faster on XLA:CPU.
_EXPLICIT_DX_MIN_PIXELS = 1024


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3, 4))
def _shifted(x: jax.Array, kernel: jax.Array, stride: int, padding: str,
             hw: tuple[int, int]) -> jax.Array:
    del hw  # x's spatial size, static, for the backward pass
    return _shifted_forward(x, kernel, stride, padding)


def _shifted_fwd(x, kernel, stride, padding, hw):
    kh, kw = kernel.shape[:2]
    _, _, ho, wo, _, _ = _geometry(x.shape, kh, kw, stride, padding)
    # the padded input is materialized for the forward anyway: keep it (not x) for the kernel
    # gradient, so the backward reads that buffer instead of materializing the input again
    xp = _pad_input(x, kh, kw, stride, padding)
    out = _tap_sum(_padded_taps(xp, ho, wo, stride), kernel, x.dtype)
    return out, (xp, kernel)


def _shifted_bwd(stride, padding, hw, residuals, g):
    xp, kernel = residuals
    x_shape = (g.shape[0], hw[0], hw[1], g.shape[-1])
    if hw[0] * hw[1] >= _EXPLICIT_DX_MIN_PIXELS:
        dx = _input_grad(g, kernel, x_shape, stride, padding).astype(xp.dtype)
    else:
        x0 = jnp.zeros(x_shape, xp.dtype)
        _, vjp_x = jax.vjp(lambda x_: _shifted_forward(x_, kernel, stride, padding), x0)
        (dx,) = vjp_x(g)
    dk = _kernel_grad_padded(xp, g, kernel.shape[0], kernel.shape[1], stride)
    return dx, dk.astype(kernel.dtype)


_shifted.defvjp(_shifted_fwd, _shifted_bwd)


def depthwise_shifted(x: jax.Array, kernel: jax.Array, stride: int = 1,
                      padding: str = "symmetric") -> jax.Array:
    """Shifted multiply-add depthwise conv with a custom VJP: the input gradient is the
    transposed shifted sum, the kernel gradient is reduced over L2-sized batch chunks."""
    return _shifted(x, kernel, stride, padding, (x.shape[1], x.shape[2]))


_FUNCTIONS: dict[str, Callable[..., jax.Array]] = {
    "xla": depthwise_xla,
    "shifted": depthwise_shifted,
}


def depthwise_conv(x: jax.Array, kernel: jax.Array, stride: int = 1,
                   padding: str = "symmetric", impl: str = "auto") -> jax.Array:
    """Depthwise convolution of NHWC ``x`` with a (kh, kw, 1, C) kernel using ``impl``."""
    return _FUNCTIONS[resolve(impl)](x, kernel, stride, padding)
