"""Convolution and dense layers (flax.linen, NHWC) with kernel/input hooks and per-layer rules.

Kernels are stored in ``lax.conv_general_dilated``'s HWIO layout, output channels on the last
axis, for every kind of convolution, so pruning criteria and compaction see one layout:

=================  ==========================  ========================================
layer              kernel shape                computed as
=================  ==========================  ========================================
``Conv``           (k, k, Cin, Cout)           ``lax.conv_general_dilated``
``PointwiseConv``  (1, 1, Cin, Cout)           a 2-D matmul over (N*H*W, Cin)
``GroupConv``      (k, k, Cin/g, Cout)         1x1: an einsum over groups; kxk: lax conv
``DepthwiseConv``  (k, k, 1, C)                ``lightjax.layers.depthwise`` (selectable)
``ConvTranspose``  (k, k, Cin, Cout)           a matmul + overlap-add (``layers.transposed``)
``Dense``          (Cin, Cout)                 a matmul over the last axis
=================  ==========================  ========================================

Pointwise, 1x1 group and transposed convs are matmuls/einsums, so ``jax.vmap`` over a member axis
of the parameters turns them into batched matmuls, not grouped convolutions.

Each layer has a ``kind`` (``'standard'``, ``'pointwise'``, ``'group'``, ``'depthwise'``,
``'transposed'``, ``'fc'``), used by cost accounting, by rules and by compression to pick what it
transforms.

Every layer's ``__call__(x, *, train=False)`` passes ``train`` to its hooks. Kernel and input
hooks transform the kernel and the input; an output hook transforms the result (before the bias)
knowing the input as given. Hooks and the padding constant come from the layer's
``kernel_hook`` / ``input_hook`` (a catch-all, applied first) and its ``rules``
(:mod:`lightjax.layers.rules`), resolved from the layer's module path and kind.

``pad_value`` (standard, group and depthwise convs with spatial padding; every depthwise
implementation): the constant the input is padded with, applied AFTER the input hook (a +-1
binarized input padded with 0 would see a third value). It is computed exactly and independently
of the implementation as ``conv(pad(x, c), W) = conv(pad(x - c, 0), W) + c * sum(W)``, the sum
over each filter's window and input channels; ``c = 0`` (the default) computes exactly what a
layer without the option computes. Pointwise convs and dense layers have no padding; a transposed
conv's zeros are structural (the gaps between upsampled pixels), so ``pad_value`` does not apply
to it.
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
from lightjax.layers import rules as rules_lib
from lightjax.layers import transposed as transposed_lib
from lightjax.layers.padding import check_padding, pad_amounts
from lightjax.errors import ValidationError

Initializer = Callable[..., jax.Array]
Pads = tuple[tuple[int, int], tuple[int, int]]

#: He-normal with fan-out, as torchvision initializes MobileNets/ShuffleNets.
conv_init: Initializer = nn.initializers.variance_scaling(2.0, "fan_out", "normal")

LAYER_KINDS = rules_lib.LAYER_KINDS


class _HookedLayer(nn.Module):
    """Shared fields and plumbing: hooks, rules, dtypes, bias. Not used directly."""

    features: int
    _: dataclasses.KW_ONLY  # shared options are keyword-only; subclasses' own fields positional
    use_bias: bool = False
    kernel_hook: hooks.KernelHook | None = None
    input_hook: hooks.InputHook | None = None
    rules: tuple[rules_lib.Rule, ...] = ()
    pad_value: float = 0.0  # spatial padding constant (standard, group, depthwise convs)
    dtype: Any = None  # computation dtype; None: promote input and parameter dtypes
    param_dtype: Any = jnp.float32
    kernel_init: Initializer = conv_init
    bias_init: Initializer = nn.initializers.zeros

    def __post_init__(self) -> None:
        name = type(self).__name__
        hooks.check(self.kernel_hook, f"{name}: kernel_hook")
        hooks.check(self.input_hook, f"{name}: input_hook")
        object.__setattr__(self, "rules", rules_lib.check_rules(self.rules, f"{name}: rules"))
        rules_lib.check_pad_value(self.pad_value, f"{name}: pad_value")
        super().__post_init__()

    def _resolve(self) -> rules_lib.Resolved:
        """This layer's chained hooks and padding constant (its path and kind against rules)."""
        return rules_lib.resolve(self.rules, "/".join(self.path), self.kind,
                                 kernel_hook=self.kernel_hook, input_hook=self.input_hook,
                                 pad_value=self.pad_value)

    def _check_input(self, x: jax.Array, rank: int, resolved: rules_lib.Resolved,
                     train: bool) -> jax.Array:
        if x.ndim != rank:
            raise ValidationError(
                f"{type(self).__name__} {self.name!r} expects a rank-{rank} input "
                f"({'NHWC' if rank == 4 else '(..., features)'}), got shape {x.shape}")
        if self.features <= 0:
            raise ValidationError(f"{type(self).__name__} {self.name!r}: features must be positive, "
                             f"got {self.features}")
        return hooks.apply(resolved.input_hook, self, x, train)

    def _kernel(self, shape: tuple[int, ...], resolved: rules_lib.Resolved,
                train: bool) -> jax.Array:
        kernel = self.param("kernel", self.kernel_init, shape, self.param_dtype)
        return hooks.apply(resolved.kernel_hook, self, kernel, train)

    def _finish(self, y: jax.Array, given: jax.Array, resolved: rules_lib.Resolved,
                train: bool) -> jax.Array:
        """The output hook (``given``: the layer's input before the input hook), then the bias."""
        y = hooks.apply(resolved.output_hook, self, y, train, given=given)
        if self.use_bias:
            bias = self.param("bias", self.bias_init, (self.features,), self.param_dtype)
            y = y + bias.astype(y.dtype)
        return y

    def _promote(self, x: jax.Array, kernel: jax.Array) -> tuple[jax.Array, jax.Array]:
        x, kernel = nn.dtypes.promote_dtype(x, kernel, dtype=self.dtype)
        return x, kernel


def padded_with(conv: Callable[[jax.Array], jax.Array], x: jax.Array, kernel: jax.Array,
                pads: Pads, pad_value: float) -> jax.Array:
    """``conv`` (a zero-padding convolution of ``x`` with ``kernel``) as if ``x`` were padded with
    ``pad_value``: ``conv(x - c) + c * sum(kernel over window and input channels)``. With ``c = 0``
    or no padding it is just ``conv(x)``.

    ``x``: (N, H, W, Cin) NHWC; ``kernel``: (k, k, Cin / groups, Cout) HWIO (depthwise:
    (k, k, 1, C)); ``pads``: ((top, bottom), (left, right)) as ``conv`` pads.
    """
    if pad_value == 0.0 or not any(p for axis in pads for p in axis):
        return conv(x)
    y = conv(x - jnp.asarray(pad_value, x.dtype))
    acc = jnp.promote_types(kernel.dtype, jnp.float32)
    window_sum = jnp.sum(kernel, axis=(0, 1, 2), dtype=acc)  # (Cout,)
    return y + (pad_value * window_sum).astype(y.dtype)


class _SpatialConv(_HookedLayer):
    kernel_size: int = 3
    strides: int = 1
    padding: str = "symmetric"

    def _pads(self, x: jax.Array) -> Pads:
        k, s = self.kernel_size, self.strides
        return (pad_amounts(x.shape[1], k, s, self.padding),
                pad_amounts(x.shape[2], k, s, self.padding))

    def _lax_conv(self, x: jax.Array, kernel: jax.Array, groups: int,
                  pad_value: float = 0.0) -> jax.Array:
        s, pads = self.strides, self._pads(x)

        def conv(v: jax.Array) -> jax.Array:
            return lax.conv_general_dilated(
                v, kernel, window_strides=(s, s), padding=pads,
                dimension_numbers=("NHWC", "HWIO", "NHWC"), feature_group_count=groups)

        return padded_with(conv, x, kernel, pads, pad_value)

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
    def __call__(self, x: jax.Array, *, train: bool = False) -> jax.Array:
        self._check_geometry()
        r = self._resolve()
        given, x = x, self._check_input(x, 4, r, train)
        k = self.kernel_size
        kernel = self._kernel((k, k, x.shape[-1], self.features), r, train)
        x, kernel = self._promote(x, kernel)
        return self._finish(self._lax_conv(x, kernel, 1, r.pad_value), given, r, train)


class PointwiseConv(_HookedLayer):
    """1 x 1 convolution as a 2-D matmul over (N*H*W, Cin). ``strides`` subsamples first."""

    strides: int = 1
    kind = "pointwise"

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool = False) -> jax.Array:
        r = self._resolve()
        given, x = x, self._check_input(x, 4, r, train)
        if self.strides > 1:
            x = x[:, ::self.strides, ::self.strides, :]
        kernel = self._kernel((1, 1, x.shape[-1], self.features), r, train)
        x, kernel = self._promote(x, kernel)
        n, h, w, c = x.shape
        y = (x.reshape(n * h * w, c) @ kernel.reshape(c, self.features))
        return self._finish(y.reshape(n, h, w, self.features), given, r, train)


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
    def __call__(self, x: jax.Array, *, train: bool = False) -> jax.Array:
        self._check_geometry()
        r = self._resolve()
        given, x = x, self._check_input(x, 4, r, train)
        g, cin, k = self.groups, x.shape[-1], self.kernel_size
        if g < 1 or cin % g or self.features % g:
            raise ValidationError(
                f"GroupConv {self.name!r}: groups={g} must divide input channels ({cin}) and "
                f"output channels ({self.features})")
        kernel = self._kernel((k, k, cin // g, self.features), r, train)
        x, kernel = self._promote(x, kernel)
        if k != 1:
            return self._finish(self._lax_conv(x, kernel, g, r.pad_value), given, r, train)
        if self.strides > 1:
            x = x[:, ::self.strides, ::self.strides, :]
        n, h, w, _ = x.shape
        kg = kernel.reshape(cin // g, g, self.features // g).transpose(1, 0, 2)
        y = jnp.einsum("mgi,gio->mgo", x.reshape(n * h * w, g, cin // g), kg)
        return self._finish(y.reshape(n, h, w, self.features), given, r, train)


class DepthwiseConv(_SpatialConv):
    """Depthwise k x k convolution (one filter per channel; ``features`` must equal Cin).

    ``impl`` selects the kernel: ``'auto'`` (default), ``'shifted'`` or ``'xla'``; see
    :mod:`lightjax.layers.depthwise`. ``pad_value`` applies to every implementation.
    """

    impl: str = "auto"
    kind = "depthwise"

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool = False) -> jax.Array:
        self._check_geometry()
        r = self._resolve()
        given, x = x, self._check_input(x, 4, r, train)
        if x.shape[-1] != self.features:
            raise ValidationError(f"DepthwiseConv {self.name!r}: features ({self.features}) must equal "
                             f"the input channels ({x.shape[-1]})")
        kernel = self._kernel((self.kernel_size, self.kernel_size, 1, self.features), r, train)
        x, kernel = self._promote(x, kernel)

        def conv(v: jax.Array) -> jax.Array:
            return dw.depthwise_conv(v, kernel, self.strides, self.padding, self.impl)

        y = padded_with(conv, x, kernel, self._pads(x), r.pad_value)
        return self._finish(y, given, r, train)


class ConvTranspose(_HookedLayer):
    """Transposed k x k convolution: (N, H, W, Cin) -> (N, H * strides, W * strides, features).

    Kernel (k, k, Cin, Cout) (HWIO, output channels last like every layer); ``kernel_size`` must
    be >= ``strides``. ``padding`` picks how the ``k - s`` extra rows/columns of the full result
    are cropped: ``'symmetric'`` equals PyTorch's ``nn.ConvTranspose2d(Cin, Cout, k, s,
    padding=(k - s) // 2)`` for even ``k - s`` (k=4, s=2; k=2, s=2; k=16, s=8), ``'same'`` equals
    TensorFlow's SAME; see :mod:`lightjax.layers.transposed`. Hooks and rules apply as to every
    layer; ``pad_value`` does not (the zeros between upsampled pixels are structural).
    """

    kernel_size: int = 4
    strides: int = 2
    padding: str = "symmetric"
    kind = "transposed"

    def __post_init__(self) -> None:
        for field in ("kernel_size", "strides"):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValidationError(f"ConvTranspose {self.name!r}: {field} must be a positive "
                                      f"integer, got {value!r}")
        if self.kernel_size < self.strides:
            raise ValidationError(f"ConvTranspose {self.name!r}: kernel_size ({self.kernel_size}) "
                                  f"must be >= strides ({self.strides}); the output is exactly "
                                  f"input size x strides")
        check_padding(self.padding)
        super().__post_init__()

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool = False) -> jax.Array:
        r = self._resolve()
        given, x = x, self._check_input(x, 4, r, train)
        k = self.kernel_size
        kernel = self._kernel((k, k, x.shape[-1], self.features), r, train)
        x, kernel = self._promote(x, kernel)
        y = transposed_lib.conv_transpose(x, kernel, self.strides, self.padding)
        return self._finish(y, given, r, train)


class Dense(_HookedLayer):
    """Fully connected layer over the last axis: (..., Cin) -> (..., features)."""

    use_bias: bool = True
    kernel_init: Initializer = nn.initializers.lecun_normal()
    kind = "fc"

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool = False) -> jax.Array:
        if x.ndim < 1:
            raise ValidationError(f"Dense {self.name!r} expects an input with a features axis")
        r = self._resolve()
        given, x = x, hooks.apply(r.input_hook, self, x, train)
        kernel = self._kernel((x.shape[-1], self.features), r, train)
        x, kernel = self._promote(x, kernel)
        return self._finish(x @ kernel, given, r, train)


#: Every lightjax convolution / dense layer class (all have a ``kind`` and a kernel with output
#: channels last).
LAYER_TYPES = (Conv, PointwiseConv, GroupConv, DepthwiseConv, ConvTranspose, Dense)
