"""Depthwise convolution kernels (functional): several implementations, one contract.

All take ``x`` of shape (N, H, W, C) and ``kernel`` of shape (kh, kw, 1, C) (the layout of
``lax.conv_general_dilated`` with ``feature_group_count=C``) and return (N, H', W', C).

- ``'xla'``: ``lax.conv_general_dilated(feature_group_count=C)``. XLA's grouped convolution; slow
  on CPU (measured ~10x forward, 4-8x backward versus ``'shifted'``, see benchmarks/RESULTS.md).
- ``'shifted'``: a sum of kh*kw shifted slices times per-channel weights. Pure elementwise work, so
  it fuses well and, under ``jax.vmap`` over the kernel, stays elementwise instead of becoming a
  grouped convolution. Stride 2 is done on a space-to-depth view (four phase images), so no strided
  slice appears in the graph and the backward pass has no interior padding.
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

IMPLEMENTATIONS = ("auto", "xla", "shifted")


def resolve(impl: str) -> str:
    """Map ``'auto'`` to a concrete implementation for the default backend."""
    if impl not in IMPLEMENTATIONS:
        raise ValueError(
            f"unknown depthwise implementation {impl!r}; allowed: {', '.join(IMPLEMENTATIONS)}")
    if impl == "auto":
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


def _taps(x: jax.Array, kh: int, kw: int, stride: int, padding: str):
    """``tap(a, b)``: the (N, Ho, Wo, C) input window multiplied by kernel tap (a, b)."""
    n, h, w, c = x.shape
    s = stride
    (top, bottom), (left, right) = (pad_amounts(h, kh, s, padding),
                                    pad_amounts(w, kw, s, padding))
    ho, wo = output_size(h, kh, s, padding), output_size(w, kw, s, padding)
    # Pad so the padded extent is exactly s * (o - 1 + ceil(k / s)): every phase image then has
    # the same size and every tap is an unstrided slice of one phase.
    hp = s * (ho - 1 + -(-kh // s))
    wp = s * (wo - 1 + -(-kw // s))
    xp = jnp.pad(x, ((0, 0), (top, max(hp - h - top, 0)), (left, max(wp - w - left, 0)),
                     (0, 0)))[:, :hp, :wp, :]
    if s == 1:  # plain slices (an extra phase axis costs ~3x in XLA's CPU fusion)
        return lambda a, b: xp[:, a:a + ho, b:b + wo, :]
    # (N, s, s, hp/s, wp/s, C): phases[:, a % s, b % s] holds rows a::s, cols b::s
    phases = xp.reshape(n, hp // s, s, wp // s, s, c).transpose(0, 2, 4, 1, 3, 5)
    return lambda a, b: phases[:, a % s, b % s, a // s:a // s + ho, b // s:b // s + wo, :]


def _shifted_forward(x: jax.Array, kernel: jax.Array, stride: int, padding: str) -> jax.Array:
    kh, kw, _, c = kernel.shape
    tap = _taps(x, kh, kw, stride, padding)
    k = kernel.reshape(kh, kw, c).astype(x.dtype)
    out = None
    for a in range(kh):
        for b in range(kw):
            term = tap(a, b) * k[a, b]
            out = term if out is None else out + term
    return out


#: Bytes of input + output-gradient per chunk when reducing the kernel gradient: chunks that fit
#: in L2 make the kh*kw reductions ~3x faster on CPU than one pass over the whole batch.
_CHUNK_BYTES = 1 << 20


def _batch_chunk(x: jax.Array, g: jax.Array) -> int:
    n = x.shape[0]
    per_image = (x[0].size + g[0].size) * x.dtype.itemsize
    target = max(1, _CHUNK_BYTES // max(per_image, 1))
    return max(d for d in range(1, n + 1) if n % d == 0 and d <= target)


def _kernel_grad(x: jax.Array, g: jax.Array, kh: int, kw: int, stride: int,
                 padding: str) -> jax.Array:
    """d(out)/d(kernel) contracted with ``g``: (kh, kw, 1, C), float32 accumulation."""
    n, c = x.shape[0], x.shape[-1]
    chunk = _batch_chunk(x, g)

    def partial(xc: jax.Array, gc: jax.Array) -> jax.Array:
        tap = _taps(xc, kh, kw, stride, padding)
        gc = gc.astype(jnp.float32)
        return jnp.stack([(tap(a, b).astype(jnp.float32) * gc).sum((0, 1, 2))
                          for a in range(kh) for b in range(kw)])

    xs = x.reshape(n // chunk, chunk, *x.shape[1:])
    gs = g.reshape(n // chunk, chunk, *g.shape[1:])
    total, _ = lax.scan(lambda acc, xg: (acc + partial(*xg), None),
                        jnp.zeros((kh * kw, c), jnp.float32), (xs, gs))
    return total.reshape(kh, kw, 1, c)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def _shifted(x: jax.Array, kernel: jax.Array, stride: int, padding: str) -> jax.Array:
    return _shifted_forward(x, kernel, stride, padding)


def _shifted_fwd(x, kernel, stride, padding):
    return _shifted_forward(x, kernel, stride, padding), (x, kernel)


def _shifted_bwd(stride, padding, residuals, g):
    x, kernel = residuals
    _, vjp_x = jax.vjp(lambda x_: _shifted_forward(x_, kernel, stride, padding), x)
    (dx,) = vjp_x(g)
    dk = _kernel_grad(x, g, kernel.shape[0], kernel.shape[1], stride, padding)
    return dx, dk.astype(kernel.dtype)


_shifted.defvjp(_shifted_fwd, _shifted_bwd)


def depthwise_shifted(x: jax.Array, kernel: jax.Array, stride: int = 1,
                      padding: str = "symmetric") -> jax.Array:
    """Shifted multiply-add depthwise conv with a custom VJP: the input gradient is the
    transposed shifted sum, the kernel gradient is reduced over L2-sized batch chunks."""
    return _shifted(x, kernel, stride, padding)


_FUNCTIONS: dict[str, Callable[..., jax.Array]] = {
    "xla": depthwise_xla,
    "shifted": depthwise_shifted,
}


def depthwise_conv(x: jax.Array, kernel: jax.Array, stride: int = 1,
                   padding: str = "symmetric", impl: str = "auto") -> jax.Array:
    """Depthwise convolution of NHWC ``x`` with a (kh, kw, 1, C) kernel using ``impl``."""
    return _FUNCTIONS[resolve(impl)](x, kernel, stride, padding)
