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


def depthwise_shifted(x: jax.Array, kernel: jax.Array, stride: int = 1,
                      padding: str = "symmetric") -> jax.Array:
    n, h, w, c = x.shape
    kh, kw = kernel.shape[:2]
    (top, bottom), (left, right) = _pads(x, kernel, stride, padding)
    ho = output_size(h, kh, stride, padding)
    wo = output_size(w, kw, stride, padding)
    s = stride
    # Pad so the padded extent is exactly s * (o - 1 + ceil(k / s)): every phase image then has
    # the same size and every tap is an unstrided slice of one phase.
    hp = s * (ho - 1 + -(-kh // s))
    wp = s * (wo - 1 + -(-kw // s))
    bottom_extra = hp - (h + top + bottom)
    right_extra = wp - (w + left + right)
    xp = jnp.pad(x, ((0, 0), (top, bottom + max(bottom_extra, 0)),
                     (left, right + max(right_extra, 0)), (0, 0)))
    xp = xp[:, :hp, :wp, :]
    if s == 1:  # plain slices (an extra phase axis costs ~3x in XLA's CPU fusion)
        def tap(a: int, b: int) -> jax.Array:
            return xp[:, a:a + ho, b:b + wo, :]
    else:  # (N, s, s, hp/s, wp/s, C): phases[:, a % s, b % s] holds rows a::s, cols b::s
        phases = xp.reshape(n, hp // s, s, wp // s, s, c).transpose(0, 2, 4, 1, 3, 5)

        def tap(a: int, b: int) -> jax.Array:
            return phases[:, a % s, b % s, a // s:a // s + ho, b // s:b // s + wo, :]
    k = kernel.reshape(kh, kw, c).astype(x.dtype)
    out = None
    for a in range(kh):
        for b in range(kw):
            term = tap(a, b) * k[a, b]
            out = term if out is None else out + term
    return out


_FUNCTIONS: dict[str, Callable[..., jax.Array]] = {
    "xla": depthwise_xla,
    "shifted": depthwise_shifted,
}


def depthwise_conv(x: jax.Array, kernel: jax.Array, stride: int = 1,
                   padding: str = "symmetric", impl: str = "auto") -> jax.Array:
    """Depthwise convolution of NHWC ``x`` with a (kh, kw, 1, C) kernel using ``impl``."""
    return _FUNCTIONS[resolve(impl)](x, kernel, stride, padding)
