"""The kernel and input hooks that binarize a layer (installed by rules, see :mod:`.plugin`).

A binarized layer computes with

- **weights** ``W_eff = s * alpha * q(W) + (1 - s) * W``: ``q`` a sign quantizer with a
  straight-through estimator (:mod:`lightjax.binary.quantizers`), ``alpha`` the per-output-channel
  scale ``mean |W|`` (XNOR-Net; gradient stopped through it, as larq's ``magnitude_aware_sign``)
  or 1, and ``s`` the layer's **weight selection** (``(Cout,)`` 0/1: which output channels are
  binary, the partial binarization of stochastic/staged schedules);
- **inputs** ``x_eff = t * x_hat + (1 - t) * x`` with ``t`` the **input selection** (``(H, W)``
  0/1 over the input's positions; ``(1,)`` for dense layers) and ``x_hat`` the binary
  approximation of ``x``:

  - order 1 without scale: ``sign(x)`` (BNN, XNOR);
  - order ``n`` (HORQ): ``x_hat = sum_i beta_i H_i`` with ``H_1 = q(x)``, ``beta_1 = mean_c |x|``,
    ``R_i = x - sum_{j<=i} beta_j H_j``, ``H_{i+1} = q(R_i)``, ``beta_{i+1} = mean_c |R_i|``.

    Granularity: ``beta_i`` is computed **per spatial position** (the mean over the channels of
    each pixel), not per receptive field as in the HORQ paper. Per position, the approximation is a
    feature map of the input's own shape, identical for standard, depthwise, pointwise, group,
    transposed and dense layers (a per-receptive-field residual would be a k*k times larger im2col
    tensor per layer, and undefined for transposed convolutions); in packed inference each order
    is one binary plane and ``beta_i`` weights its per-tap popcount sums exactly.

XNOR-Net's **input scale** ``K`` (:class:`InputScale`, an output hook): ``A = mean_c |x|`` per
input position, ``K = A`` averaged over each kernel window (``A * k`` with ``k`` the box filter
``1 / (kh kw)``, the layer's own stride and padding, zeros outside the map, as in XNOR-Net); the
layer's result is multiplied by ``K`` at every output position, gradient stopped through ``K``
(like ``alpha``). Pointwise convs use ``A`` itself (subsampled by their stride), dense layers the
mean over features, transposed convs ``A`` spread by the transposed box filter
``1 / ceil(k / s)**2`` (the number of input pixels reaching an output pixel). With a partial input
selection ``t`` the factor is ``tau K + 1 - tau``, ``tau`` the share of selected positions in each
window: exact XNOR-Net where every position is binary, untouched where none is.

The selections are read from the ``binary`` variable collection (``{layer path: {'weights',
'inputs'}}``, given by the plug-in from its train state); a layer applied without it is fully
binarized. Spatial padding of binary inputs uses the rule's ``pad_value`` (``0``: a true zero,
``+1``/``-1``: binary padding; larq's ``pad_values``), applied after these hooks.
"""
from __future__ import annotations

import dataclasses
import inspect
from typing import Any

import jax
import jax.numpy as jnp
from jax import lax

from lightjax.binary import quantizers
from lightjax.errors import ValidationError
from lightjax.layers import padding as padding_lib
from lightjax.layers import transposed as transposed_lib

COLLECTION = "binary"


def selection(layer: Any, name: str, shape: tuple[int, ...]) -> jax.Array:
    """The layer's ``binary/<name>`` selection (float 0/1 of ``shape``), ones when absent."""
    if layer.has_variable(COLLECTION, name):
        return jnp.asarray(layer.get_variable(COLLECTION, name), jnp.float32)
    return jnp.ones(shape, jnp.float32)


def weight_scale(kernel: jax.Array) -> jax.Array:
    """``alpha``: mean ``|W|`` per output channel (last axis), gradient stopped; shape ``(Cout,)``."""
    axes = tuple(range(kernel.ndim - 1))
    return jax.lax.stop_gradient(jnp.mean(jnp.abs(kernel), axis=axes))


def residual_approximation(x: jax.Array, order: int, quantizer: Any,
                           scaled: bool = True) -> jax.Array:
    """``sum_i beta_i H_i`` (see the module docstring); ``scaled=False`` with ``order=1`` is
    ``q(x)`` (pure +-1). ``beta_i``: mean over the last (channel) axis, per position."""
    if order < 1:
        raise ValidationError(f"HORQ order must be an integer >= 1, got {order!r}")
    approx = jnp.zeros_like(x)
    residual = x
    for _ in range(order):
        h = quantizer(residual)
        if scaled:
            beta = jax.lax.stop_gradient(jnp.mean(jnp.abs(residual), axis=-1, keepdims=True))
            h = h * beta.astype(h.dtype)
        approx = approx + h
        residual = x - jax.lax.stop_gradient(approx)
    return approx


@dataclasses.dataclass(frozen=True)
class BinaryKernel:
    """Kernel hook: ``s * alpha * q(W) + (1 - s) * W`` (``s``: the ``weights`` selection).

    Attributes:
      quantizer: registered quantizer name (:func:`lightjax.binary.quantizers.names`).
      scale: multiply by the per-output-channel ``alpha = mean |W|`` (BWN, XNOR, HORQ).
      clip_value: the straight-through estimator's clip (``None``: identity gradient).
    """

    quantizer: str = "ste_sign"
    scale: bool = True
    clip_value: float | None = 1.0

    def __call__(self, layer: Any, kernel: jax.Array, train: bool = False) -> jax.Array:
        q = quantizers.get(self.quantizer, **_clip_kwargs(self.quantizer, self.clip_value))
        binary = q(kernel)
        if self.scale:
            binary = binary * weight_scale(kernel).astype(binary.dtype)
        s = selection(layer, "weights", (kernel.shape[-1],)).astype(kernel.dtype)
        return kernel + s * (binary - kernel)


@dataclasses.dataclass(frozen=True)
class BinaryInput:
    """Input hook: ``t * x_hat + (1 - t) * x`` (``t``: the ``inputs`` selection over positions).

    Attributes:
      quantizer: registered quantizer name.
      order: 1 (sign) or the HORQ order ``n`` of the residual approximation.
      scale: multiply each order by its per-position ``beta`` (always on for ``order > 1``).
      clip_value: the straight-through estimator's clip (``None``: identity gradient).
    """

    quantizer: str = "ste_sign"
    order: int = 1
    scale: bool = False
    clip_value: float | None = 1.0

    def __call__(self, layer: Any, x: jax.Array, train: bool = False) -> jax.Array:
        q = quantizers.get(self.quantizer, **_clip_kwargs(self.quantizer, self.clip_value))
        approx = residual_approximation(x, self.order, q, self.scale or self.order > 1)
        positions = x.shape[1:-1] if x.ndim == 4 else (1,)
        t = selection(layer, "inputs", positions).astype(x.dtype)
        return x + t[..., None] * (approx - x)


def window_sum(layer: Any, a: jax.Array) -> jax.Array:
    """Sum of the single-channel map ``a`` (``(N, H, W, 1)``) over each of ``layer``'s kernel
    windows, with the layer's stride and padding (zeros outside): ``(N, Ho, Wo, 1)``; a
    transposed conv spreads ``a`` with its own geometry (its ``ceil(k / s)**2`` taps per output)."""
    k = getattr(layer, "kernel_size", 1)
    s = getattr(layer, "strides", 1)
    if layer.kind == "transposed":
        ones = jnp.ones((k, k, 1, 1), a.dtype)
        return transposed_lib.conv_transpose(a, ones, s, layer.padding)
    if k == 1:
        return a[:, ::s, ::s, :]
    padding = getattr(layer, "padding", "symmetric")
    pads = (padding_lib.pad_amounts(a.shape[1], k, s, padding),
            padding_lib.pad_amounts(a.shape[2], k, s, padding))
    return lax.conv_general_dilated(a, jnp.ones((k, k, 1, 1), a.dtype), (s, s), pads,
                                    dimension_numbers=("NHWC", "HWIO", "NHWC"))


def window_taps(layer: Any) -> int:
    """How many input positions one output position of ``layer`` averages for ``K``."""
    k = getattr(layer, "kernel_size", 1)
    if layer.kind == "transposed":
        return (-(-k // layer.strides)) ** 2
    return k * k


def input_scale(layer: Any, x: jax.Array) -> jax.Array:
    """XNOR-Net's ``K`` for ``layer``'s input ``x`` (module docstring), shaped to broadcast against
    the layer's output; gradient stopped."""
    a = jnp.mean(jnp.abs(jax.lax.stop_gradient(x)), axis=-1, keepdims=True)
    if layer.kind == "fc" or x.ndim != 4:
        return a
    return window_sum(layer, a) / window_taps(layer)


def selected_share(layer: Any, t: jax.Array, like: jax.Array) -> jax.Array:
    """``tau``: the share of selected input positions (``t``, ``(H, W)``) in each window of
    ``layer``, shaped ``(1, Ho, Wo, 1)`` (``(1,)`` selections: the value itself)."""
    if like.ndim != 4 or t.ndim != 2:
        return t.reshape(-1)[:1]
    t = t[None, :, :, None].astype(like.dtype)
    return window_sum(layer, t) / jnp.maximum(window_sum(layer, jnp.ones_like(t)), 1.0)


@dataclasses.dataclass(frozen=True)
class InputScale:
    """Output hook: multiply the layer's result by XNOR-Net's input scale ``K`` (module
    docstring), blended by the input selection's share per window."""

    def __call__(self, layer: Any, y: jax.Array, x: jax.Array, train: bool = False) -> jax.Array:
        k = input_scale(layer, x).astype(y.dtype)
        positions = x.shape[1:-1] if x.ndim == 4 else (1,)
        t = selection(layer, "inputs", positions)
        tau = selected_share(layer, t, y).astype(y.dtype)
        return y * (tau * k + (1 - tau))


def _clip_kwargs(name: str, clip_value: float | None) -> dict[str, Any]:
    """``clip_value`` for the quantizers that take one (``approx_sign``, ``swish_sign`` do not)."""
    params = inspect.signature(quantizers.QUANTIZERS[name]).parameters
    return {"clip_value": clip_value} if "clip_value" in params else {}
