"""ShuffleNet building blocks: channel shuffle, padded pooling, the V1 and V2 units.

Channel shuffle is the paper's fixed permutation (Zhang et al., 2018, Fig. 1): view the C channels
as (groups, C / groups), transpose, flatten. Output channel ``j * groups + i`` is input channel
``i * (C / groups) + j``, so consecutive outputs come from different groups. torchvision's
ShuffleNetV2 computes exactly this; megvii's ShuffleNetV1 code reshapes as (C / groups, groups)
instead, i.e. the *inverse* permutation (equivalent for training from scratch, not for porting
weights). Here both models use the paper's.

Pooling follows the factory's padding convention (:mod:`lightjax.layers.padding`):
``'symmetric'`` pads ``k // 2`` on both sides like PyTorch's ``MaxPool2d(3, 2, 1)`` /
``AvgPool2d(3, 2, 1)`` (max pooling pads with -inf; average pooling counts the zero padding,
``count_include_pad=True``, PyTorch's default and what megvii's ShuffleNetV1 uses); ``'same'``
is TensorFlow's SAME, whose average pooling divides by the number of valid inputs.
"""
from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from lightjax.layers.conv_bn import ConvBN
from lightjax.layers.factory import LayerFactory
from lightjax.layers.padding import check_padding, pad_amounts
from lightjax.errors import ValidationError


def _check_groups(groups: object, channels: int, what: str) -> None:
    if isinstance(groups, bool) or not isinstance(groups, int) or groups < 1:
        raise ValidationError(f"{what}: groups must be a positive integer, got {groups!r}")
    if channels % groups:
        raise ValidationError(f"{what}: {channels} channels cannot be split into {groups} equal "
                         f"groups (channels % groups must be 0)")


def channel_shuffle(x: jax.Array, groups: int) -> jax.Array:
    """Shuffle the last (channel) axis: reshape (groups, C/groups) -> transpose -> flatten.

    ``channel_shuffle(x, g)[..., k] == x[..., shuffle_permutation(C, g)[k]]``; for C=6, g=2 the
    output order is input channels [0, 3, 1, 4, 2, 5]. Raises ``ValueError`` if ``C % g``.
    """
    c = x.shape[-1]
    _check_groups(groups, c, "channel_shuffle")
    if groups == 1:
        return x
    y = x.reshape(*x.shape[:-1], groups, c // groups)
    return jnp.swapaxes(y, -1, -2).reshape(x.shape)


def shuffle_permutation(channels: int, groups: int) -> np.ndarray:
    """Input channel index of each output channel of :func:`channel_shuffle` (an int array)."""
    _check_groups(groups, channels, "shuffle_permutation")
    return np.arange(channels).reshape(groups, channels // groups).T.reshape(-1)


def _pads(x: jax.Array, kernel_size: int, strides: int, padding: str):
    return tuple(pad_amounts(x.shape[a], kernel_size, strides, padding) for a in (1, 2))


def max_pool(x: jax.Array, kernel_size: int = 3, strides: int = 2,
             padding: str = "symmetric") -> jax.Array:
    """k x k max pooling (NHWC), -inf padding; 'symmetric' is PyTorch MaxPool2d(k, s, k // 2)."""
    check_padding(padding)
    return nn.max_pool(x, (kernel_size, kernel_size), (strides, strides),
                       _pads(x, kernel_size, strides, padding))


def avg_pool(x: jax.Array, kernel_size: int = 3, strides: int = 2,
             padding: str = "symmetric") -> jax.Array:
    """k x k average pooling (NHWC). ``'symmetric'`` = PyTorch AvgPool2d(k, s, k//2), which counts
    the zero padding (border windows divide by k*k); ``'same'`` = TF, which does not."""
    check_padding(padding)
    return nn.avg_pool(x, (kernel_size, kernel_size), (strides, strides),
                       _pads(x, kernel_size, strides, padding),
                       count_include_pad=padding == "symmetric")


def _check_positive(unit: str, field: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValidationError(f"{unit}: {field} must be a positive integer, got {value!r}")


def _check_strides(unit: str, strides: object) -> None:
    if strides not in (1, 2) or isinstance(strides, bool):
        raise ValidationError(f"{unit}: strides must be 1 or 2, got {strides!r}")


class ShuffleV1Unit(nn.Module):
    """ShuffleNet V1 unit (paper Fig. 2b/2c; megvii ShuffleNet-Series ``ShuffleV1Block``).

    Branch: ``gconv1`` 1x1 group conv (Cin -> bottleneck, ``groups`` groups, or 1 when
    ``first_group_conv_grouped`` is false) -> BN -> act -> channel shuffle (when groups > 1) ->
    ``dw`` depthwise 3x3 with ``strides`` -> BN (linear) -> ``gconv2`` 1x1 group conv
    (bottleneck -> branch outputs) -> BN (linear).

    - ``strides == 1``: ``act(x + branch)``; ``features`` must equal Cin.
    - ``strides == 2``: ``concat([avg_pool3x3/2(x), act(branch)])``; the branch outputs
      ``features - Cin`` channels (must be > 0). The avg pool follows the factory's padding
      (``'symmetric'``: PyTorch AvgPool2d(3, 2, 1), zero padding counted).

    Submodules: ``gconv1``, ``dw``, ``gconv2`` (:class:`ConvBN`) and ``act``.

    Attributes:
      features: unit output channels.
      bottleneck: channels of gconv1's output and of the depthwise conv (divisible by groups).
      groups: group count of the 1x1 group convs and of the shuffle.
      strides: 1 or 2.
      first_group_conv_grouped: ``False`` only for stage 2's first unit, whose input (24
        channels at 1x) is too narrow to group.
      activation: registered activation name.
      layers: the :class:`LayerFactory` every layer is created through.
    """

    features: int
    bottleneck: int
    groups: int = 3
    strides: int = 1
    first_group_conv_grouped: bool = True
    activation: str = "relu"
    layers: LayerFactory = LayerFactory()

    def __post_init__(self) -> None:
        for field in ("features", "bottleneck", "groups"):
            _check_positive("ShuffleV1Unit", field, getattr(self, field))
        _check_strides("ShuffleV1Unit", self.strides)
        _check_groups(self.groups, self.bottleneck, "ShuffleV1Unit bottleneck")
        super().__post_init__()

    def branch_features(self, in_channels: int) -> int:
        """Output channels of ``gconv2`` for ``in_channels`` input channels."""
        return self.features - in_channels if self.strides == 2 else self.features

    @nn.compact
    def __call__(self, x: jax.Array, train: bool) -> jax.Array:
        cin = x.shape[-1]
        out = self.branch_features(cin)
        if self.strides == 1 and self.features != cin:
            raise ValidationError(f"ShuffleV1Unit {self.name!r}: a stride-1 unit adds its input, so "
                             f"features ({self.features}) must equal the input channels ({cin})")
        if out <= 0:
            raise ValidationError(f"ShuffleV1Unit {self.name!r}: a stride-2 unit concatenates its "
                             f"{cin} input channels, so features ({self.features}) must exceed "
                             f"them")
        g1 = self.groups if self.first_group_conv_grouped else 1
        y = ConvBN(self.bottleneck, 1, groups=g1, activation=self.activation,
                   layers=self.layers, name="gconv1")(x, train)
        if self.groups > 1:
            y = channel_shuffle(y, self.groups)
        y = ConvBN(self.bottleneck, 3, self.strides, depthwise=True, activation=None,
                   layers=self.layers, name="dw")(y, train)
        y = ConvBN(out, 1, groups=self.groups, activation=None, layers=self.layers,
                   name="gconv2")(y, train)
        act = self.layers.act(self.activation, module_name="act")
        if self.strides == 1:
            return act(x + y)
        shortcut = avg_pool(x, 3, 2, self.layers.padding)
        return jnp.concatenate([shortcut.astype(y.dtype), act(y)], axis=-1)


class ShuffleV2Unit(nn.Module):
    """ShuffleNet V2 unit (paper Fig. 3c/3d; torchvision ``shufflenetv2.InvertedResidual``).

    - ``strides == 1``: split the channels in half (Cin must be even); the first half passes
      through, the second goes through branch 2; ``concat([x1, branch2(x2)])``.
    - ``strides == 2``: ``concat([branch1(x), branch2(x)])`` with
      branch 1 = ``branch1_dw`` depthwise 3x3/2 -> BN (linear) -> ``branch1_pw`` 1x1 -> BN -> act.

    Branch 2 = ``branch2_pw1`` 1x1 (-> ``mid``) -> BN -> act -> ``branch2_dw`` depthwise 3x3 with
    ``strides`` -> BN (linear) -> ``branch2_pw2`` 1x1 (-> ``branch_features``) -> BN -> act.
    The concatenation is then channel-shuffled with 2 groups, so its total must be even.

    torchvision uses ``mid == branch1_features == branch_features == out // 2``; the three are
    separate fields so that compacted (pruned) units can be expressed.

    Attributes:
      branch_features: output channels of ``branch2_pw2``.
      strides: 1 or 2.
      mid: output channels of ``branch2_pw1`` (default ``branch_features``).
      branch1_features: output channels of ``branch1_pw`` (stride 2 only; default
        ``branch_features``).
      activation: registered activation name.
      layers: the :class:`LayerFactory` every layer is created through.
    """

    branch_features: int
    strides: int = 1
    mid: int | None = None
    branch1_features: int | None = None
    activation: str = "relu"
    layers: LayerFactory = LayerFactory()

    def __post_init__(self) -> None:
        _check_positive("ShuffleV2Unit", "branch_features", self.branch_features)
        _check_strides("ShuffleV2Unit", self.strides)
        if self.mid is not None:
            _check_positive("ShuffleV2Unit", "mid", self.mid)
        if self.branch1_features is not None:
            if self.strides == 1:
                raise ValidationError("ShuffleV2Unit: branch1_features applies to stride-2 units only "
                                 "(a stride-1 unit has no branch 1)")
            _check_positive("ShuffleV2Unit", "branch1_features", self.branch1_features)
        super().__post_init__()

    def out_channels(self, in_channels: int) -> int:
        """Unit output channels for ``in_channels`` input channels."""
        if self.strides == 1:
            return in_channels // 2 + self.branch_features
        return (self.branch1_features or self.branch_features) + self.branch_features

    @nn.compact
    def __call__(self, x: jax.Array, train: bool) -> jax.Array:
        cin = x.shape[-1]
        if self.strides == 1 and cin % 2:
            raise ValidationError(f"ShuffleV2Unit {self.name!r}: a stride-1 unit splits its input in "
                             f"half, so the input channels ({cin}) must be even")
        total = self.out_channels(cin)
        if total % 2:
            raise ValidationError(f"ShuffleV2Unit {self.name!r}: the concatenated output ({total} "
                             f"channels) is shuffled with 2 groups, so it must be even")
        mid = self.mid or self.branch_features
        if self.strides == 1:
            x1, x2 = x[..., :cin // 2], x[..., cin // 2:]
        else:
            x1 = ConvBN(cin, 3, self.strides, depthwise=True, activation=None,
                        layers=self.layers, name="branch1_dw")(x, train)
            x1 = ConvBN(self.branch1_features or self.branch_features, 1,
                        activation=self.activation, layers=self.layers,
                        name="branch1_pw")(x1, train)
            x2 = x
        y = ConvBN(mid, 1, activation=self.activation, layers=self.layers,
                   name="branch2_pw1")(x2, train)
        y = ConvBN(mid, 3, self.strides, depthwise=True, activation=None, layers=self.layers,
                   name="branch2_dw")(y, train)
        y = ConvBN(self.branch_features, 1, activation=self.activation, layers=self.layers,
                   name="branch2_pw2")(y, train)
        return channel_shuffle(jnp.concatenate([x1.astype(y.dtype), y], axis=-1), 2)
