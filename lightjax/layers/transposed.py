"""Transposed convolution (functional): the stride-s upsampling of FCN-style decoders.

Definition (a scatter-add; kernel (k, k, Cin, Cout), HWIO, output channels last): every input
pixel ``x[n, i, j, :]`` adds ``x[n, i, j, :] @ kernel[a, b]`` to output position
``(i * s + a - lo, j * s + b - lo)`` for every tap ``(a, b)``; the full result, of size
``(H - 1) * s + k``, is cropped by ``lo`` rows/columns before and ``hi`` after, so the output is
exactly ``(N, H * s, W * s, Cout)``. ``lo + hi = k - s`` (so ``kernel_size >= strides``):

- ``'symmetric'`` (PyTorch): ``lo = ceil((k - s) / 2)``, i.e. ``nn.ConvTranspose2d(Cin, Cout, k,
  s, padding=lo, output_padding=(k - s) % 2)``; with ``k - s`` even this is
  ``padding=(k - s) // 2`` and no output padding (k=4, s=2; k=2, s=2; k=16, s=8).
- ``'same'`` (TensorFlow): ``lo = floor((k - s) / 2)``, ``tf.nn.conv2d_transpose(...,
  padding='SAME')`` (the gradient of a SAME stride-s convolution).

The two agree whenever ``k - s`` is even. Porting PyTorch weights: ``kernel = w.permute(2, 3, 0,
1)`` (PyTorch stores (Cin, Cout, k, k); no spatial flip).

Computed as ONE matmul ``(N*H*W, Cin) @ (Cin, K*K*Cout)`` (the kernel zero-padded to ``K =
s * ceil(k / s)``) followed by an overlap-add of ``ceil(k / s)**2`` shifted phase images: the
k*k*Cin*Cout*H*W multiply-adds of the definition, no multiplications by inserted zeros, and under
``jax.vmap`` over parameters a batched matmul. On the 2-core CPU (batch 16; 8x8x64 and 16x16x32
with k=4, s=2; 4x4x21 with k=16, s=8) it measured 1.4-10x faster forward and 3-8x faster
forward+backward than XLA's input-dilated convolution (``lax.conv_general_dilated`` with
``lhs_dilation``).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from lightjax.errors import ValidationError
from lightjax.layers.padding import check_padding


def crop_amounts(kernel_size: int, strides: int, padding: str = "symmetric") -> tuple[int, int]:
    """(before, after) rows cropped from the full ``(H - 1) * s + k`` output (see module doc)."""
    check_padding(padding)
    if strides < 1 or kernel_size < strides:
        raise ValidationError(f"transposed convolution: kernel_size ({kernel_size}) must be >= "
                              f"strides ({strides}) >= 1, so the output is exactly input x strides")
    total = kernel_size - strides
    lo = (total + 1) // 2 if padding == "symmetric" else total // 2
    return lo, total - lo


def conv_transpose(x: jax.Array, kernel: jax.Array, strides: int,
                   padding: str = "symmetric") -> jax.Array:
    """(N, H, W, Cin) x (k, k, Cin, Cout) kernel -> (N, H * s, W * s, Cout)."""
    k, _, cin, cout = kernel.shape
    s = strides
    lo, _ = crop_amounts(k, s, padding)
    m = -(-k // s)  # taps per phase along each axis
    big = m * s
    if big != k:  # zero taps at the end: the phases then all have m taps
        kernel = jnp.pad(kernel, ((0, big - k), (0, big - k), (0, 0), (0, 0)))
    n, h, w, _ = x.shape
    # t[n, i, j, u, r, v, q, o]: contribution of pixel (i, j) through tap (u*s + r, v*s + q)
    t = x.reshape(n * h * w, cin) @ kernel.transpose(2, 0, 1, 3).reshape(cin, big * big * cout)
    t = t.reshape(n, h, w, m, s, m, s, cout).transpose(0, 3, 5, 1, 4, 2, 6, 7)
    # overlap-add: tap block (u, v) of pixel (i, j) lands in phase block (i + u, j + v)
    out = None
    for u in range(m):
        for v in range(m):
            term = t[:, u, v]  # (N, H, s, W, s, Cout)
            if m > 1:
                term = jnp.pad(term, ((0, 0), (u, m - 1 - u), (0, 0), (v, m - 1 - v), (0, 0),
                                      (0, 0)))
            out = term if out is None else out + term
    out = out.reshape(n, (h + m - 1) * s, (w + m - 1) * s, cout)
    return out[:, lo:lo + h * s, lo:lo + w * s, :]
