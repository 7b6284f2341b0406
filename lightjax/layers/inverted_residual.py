"""Inverted residual block with a linear bottleneck (MobileNetV2, Sandler et al., 2018)."""
from __future__ import annotations

import flax.linen as nn
import jax

from lightjax.layers.conv_bn import ConvBN
from lightjax.layers.factory import LayerFactory
from lightjax.errors import ValidationError


def _check_positive_int(field: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValidationError(f"InvertedResidual: {field} must be a positive integer, got {value!r}")


class InvertedResidual(nn.Module):
    """[expand 1x1 -> BN -> act] -> depthwise 3x3 -> BN -> act -> project 1x1 -> BN (linear).

    Shapes (NHWC): ``(N, H, W, Cin) -> (N, ceil(H / strides), ceil(W / strides), features)``
    (symmetric padding; TF ``'same'`` padding gives the same sizes). The expand conv maps
    ``Cin -> hidden``, the depthwise conv keeps ``hidden`` channels and applies ``strides``, the
    project conv maps ``hidden -> features`` with no activation. The input is added to the output
    when the block has a residual (see ``residual``).

    Channel counts are explicit (not an expansion ratio) so that pruned, compacted models whose
    hidden widths are no longer ``t * Cin`` can be expressed. Submodules (all :class:`ConvBN`)
    are named ``expand`` (only when ``expand`` is true), ``dw`` and ``project``.

    Attributes:
      hidden: expanded channels (output of ``expand``, width of the depthwise conv).
      features: output channels (of ``project``).
      strides: depthwise stride.
      expand: whether there is an expand conv; ``False`` for expansion ratio t = 1, in which case
        ``hidden`` must equal the input channels (``ValueError`` otherwise).
      activation: registered activation name after the expand and depthwise convs.
      residual: ``None`` (default, the MobileNetV2 rule): add the input when ``strides == 1`` and
        ``Cin == features``. ``True``: require the residual (``ValueError`` if the shapes do not
        allow it). ``False``: never add it. Models pass an explicit value so that a width override
        can neither remove nor create a shortcut silently.
      layers: the :class:`LayerFactory` every layer is created through.
    """

    hidden: int
    features: int
    strides: int = 1
    expand: bool = True
    activation: str = "relu6"
    layers: LayerFactory = LayerFactory()
    residual: bool | None = None

    def __post_init__(self) -> None:
        _check_positive_int("hidden", self.hidden)
        _check_positive_int("features", self.features)
        _check_positive_int("strides", self.strides)
        super().__post_init__()

    def has_residual(self, in_channels: int) -> bool:
        """Whether the input is added to the output for ``in_channels`` input channels."""
        possible = self.strides == 1 and in_channels == self.features
        if self.residual is None:
            return possible
        if self.residual and not possible:
            raise ValidationError(
                f"InvertedResidual {self.name!r}: residual=True needs strides == 1 and input "
                f"channels == features, got strides={self.strides}, input channels "
                f"{in_channels}, features {self.features}")
        return bool(self.residual)

    @nn.compact
    def __call__(self, x: jax.Array, train: bool) -> jax.Array:
        if x.ndim != 4:
            raise ValidationError(f"InvertedResidual {self.name!r}: expected NHWC input, got shape "
                             f"{tuple(x.shape)}")
        in_channels = x.shape[-1]
        if not self.expand and self.hidden != in_channels:
            raise ValidationError(
                f"InvertedResidual {self.name!r}: without an expand conv (expand=False) hidden "
                f"({self.hidden}) must equal the input channels ({in_channels})")
        residual = self.has_residual(in_channels)
        y = x
        if self.expand:
            y = ConvBN(self.hidden, 1, activation=self.activation, layers=self.layers,
                       name="expand")(y, train)
        y = ConvBN(self.hidden, 3, self.strides, depthwise=True, activation=self.activation,
                   layers=self.layers, name="dw")(y, train)
        y = ConvBN(self.features, 1, activation=None, layers=self.layers,
                   name="project")(y, train)
        return x + y if residual else y
