"""Convolution and dense layers (flax.linen, NHWC) with kernel/input hooks.

Kernels are stored in ``lax.conv_general_dilated``'s HWIO layout, output channels on the last
axis, for every kind of convolution, so pruning criteria and compaction see one layout:

=================  ==========================  ========================================
layer              kernel shape                computed as
=================  ==========================  ========================================
``Conv``           (k, k, Cin, Cout)           ``lax.conv_general_dilated``
``PointwiseConv``  (1, 1, Cin, Cout)           a 2-D matmul over (N*H*W, Cin)
``GroupConv``      (k, k, Cin/g, Cout)         1x1: an einsum over groups; kxk: lax conv
``DepthwiseConv``  (k, k, 1, C)                ``lightjax.layers.depthwise`` (selectable)
``Dense``          (Cin, Cout)                 a matmul over the last axis
=================  ==========================  ========================================

Pointwise and 1x1 group convs are matmuls/einsums, so ``jax.vmap`` over a member axis of the
parameters turns them into batched matmuls, not grouped convolutions.

Each layer has a ``kind`` (``'standard'``, ``'pointwise'``, ``'group'``, ``'depthwise'``, ``'fc'``),
used by cost accounting and by compression to pick what it transforms.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

from lightjax.layers import depthwise as dw
from lightjax.layers import hooks
from lightjax.layers.padding import check_padding, pad_amounts
from lightjax.errors import ValidationError

Initializer = Callable[..., jax.Array]

#: He-normal with fan-out, as torchvision initializes MobileNets/ShuffleNets.
conv_init: Initializer = nn.initializers.variance_scaling(2.0, "fan_out", "normal")

LAYER_KINDS = ("standard", "depthwise", "pointwise", "group", "fc")


class _HookedLayer(nn.Module):
    """Shared fields and plumbing: hooks, dtypes, bias. Not used directly."""

    features: int
    _: dataclasses.KW_ONLY  # shared options are keyword-only; subclasses' own fields positional
    use_bias: bool = False
    kernel_hook: hooks.KernelHook | None = None
    input_hook: hooks.InputHook | None = None
    dtype: Any = None  # computation dtype; None: promote input and parameter dtypes
    param_dtype: Any = jnp.float32
    kernel_init: Initializer = conv_init
    bias_init: Initializer = nn.initializers.zeros

    def _check_input(self, x: jax.Array, rank: int) -> jax.Array:
        if x.ndim != rank:
            raise ValidationError(
                f"{type(self).__name__} {self.name!r} expects a rank-{rank} input "
                f"({'NHWC' if rank == 4 else '(..., features)'}), got shape {x.shape}")
        if self.features <= 0:
            raise ValidationError(f"{type(self).__name__} {self.name!r}: features must be positive, "
                             f"got {self.features}")
        return hooks.apply(self.input_hook, self, x)

    def _kernel(self, shape: tuple[int, ...]) -> jax.Array:
        kernel = self.param("kernel", self.kernel_init, shape, self.param_dtype)
        return hooks.apply(self.kernel_hook, self, kernel)

    def _finish(self, y: jax.Array) -> jax.Array:
        if self.use_bias:
            bias = self.param("bias", self.bias_init, (self.features,), self.param_dtype)
            y = y + bias.astype(y.dtype)
        return y

    def _promote(self, x: jax.Array, kernel: jax.Array) -> tuple[jax.Array, jax.Array]:
        x, kernel = nn.dtypes.promote_dtype(x, kernel, dtype=self.dtype)
        return x, kernel


class _SpatialConv(_HookedLayer):
    kernel_size: int = 3
    strides: int = 1
    padding: str = "symmetric"

    def _lax_conv(self, x: jax.Array, kernel: jax.Array, groups: int) -> jax.Array:
        k, s = self.kernel_size, self.strides
        pads = (pad_amounts(x.shape[1], k, s, self.padding),
                pad_amounts(x.shape[2], k, s, self.padding))
        return lax.conv_general_dilated(
            x, kernel, window_strides=(s, s), padding=pads,
            dimension_numbers=("NHWC", "HWIO", "NHWC"), feature_group_count=groups)

    def _check_geometry(self) -> None:
        check_padding(self.padding)
        if self.kernel_size < 1 or self.strides < 1:
            raise ValidationError(f"{type(self).__name__} {self.name!r}: kernel_size and strides must "
                             f"be >= 1, got {self.kernel_size}, {self.strides}")


class Conv(_SpatialConv):
    """Standard k x k convolution (groups = 1). NHWC in, NHWC out."""

    @property
    def kind(self) -> str:
        return "pointwise" if self.kernel_size == 1 else "standard"

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        self._check_geometry()
        x = self._check_input(x, 4)
        k = self.kernel_size
        kernel = self._kernel((k, k, x.shape[-1], self.features))
        x, kernel = self._promote(x, kernel)
        return self._finish(self._lax_conv(x, kernel, 1))


class PointwiseConv(_HookedLayer):
    """1 x 1 convolution as a 2-D matmul over (N*H*W, Cin). ``strides`` subsamples first."""

    strides: int = 1
    kind = "pointwise"

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        x = self._check_input(x, 4)
        if self.strides > 1:
            x = x[:, ::self.strides, ::self.strides, :]
        kernel = self._kernel((1, 1, x.shape[-1], self.features))
        x, kernel = self._promote(x, kernel)
        n, h, w, c = x.shape
        y = (x.reshape(n * h * w, c) @ kernel.reshape(c, self.features))
        return self._finish(y.reshape(n, h, w, self.features))


class GroupConv(_SpatialConv):
    """Grouped convolution with ``groups`` equal groups (input and output channels divisible).

    Output channel ``o`` belongs to group ``o // (Cout / groups)`` (lax's convention). The 1 x 1
    case (ShuffleNet) is an einsum over groups; k x k uses ``lax`` with ``feature_group_count``.
    """

    groups: int = 1
    kernel_size: int = 1

    @property
    def kind(self) -> str:
        if self.groups == 1:
            return "pointwise" if self.kernel_size == 1 else "standard"
        return "group"

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        self._check_geometry()
        x = self._check_input(x, 4)
        g, cin, k = self.groups, x.shape[-1], self.kernel_size
        if g < 1 or cin % g or self.features % g:
            raise ValidationError(
                f"GroupConv {self.name!r}: groups={g} must divide input channels ({cin}) and "
                f"output channels ({self.features})")
        kernel = self._kernel((k, k, cin // g, self.features))
        x, kernel = self._promote(x, kernel)
        if k != 1:
            return self._finish(self._lax_conv(x, kernel, g))
        if self.strides > 1:
            x = x[:, ::self.strides, ::self.strides, :]
        n, h, w, _ = x.shape
        kg = kernel.reshape(cin // g, g, self.features // g).transpose(1, 0, 2)
        y = jnp.einsum("mgi,gio->mgo", x.reshape(n * h * w, g, cin // g), kg)
        return self._finish(y.reshape(n, h, w, self.features))


class DepthwiseConv(_SpatialConv):
    """Depthwise k x k convolution (one filter per channel; ``features`` must equal Cin).

    ``impl`` selects the kernel: ``'auto'`` (default), ``'shifted'`` or ``'xla'``; see
    :mod:`lightjax.layers.depthwise`.
    """

    impl: str = "auto"
    kind = "depthwise"

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        self._check_geometry()
        x = self._check_input(x, 4)
        if x.shape[-1] != self.features:
            raise ValidationError(f"DepthwiseConv {self.name!r}: features ({self.features}) must equal "
                             f"the input channels ({x.shape[-1]})")
        kernel = self._kernel((self.kernel_size, self.kernel_size, 1, self.features))
        x, kernel = self._promote(x, kernel)
        return self._finish(dw.depthwise_conv(x, kernel, self.strides, self.padding, self.impl))


class Dense(_HookedLayer):
    """Fully connected layer over the last axis: (..., Cin) -> (..., features)."""

    use_bias: bool = True
    kernel_init: Initializer = nn.initializers.lecun_normal()
    kind = "fc"

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        if x.ndim < 1:
            raise ValidationError(f"Dense {self.name!r} expects an input with a features axis")
        x = hooks.apply(self.input_hook, self, x)
        kernel = self._kernel((x.shape[-1], self.features))
        x, kernel = self._promote(x, kernel)
        return self._finish(x @ kernel)
