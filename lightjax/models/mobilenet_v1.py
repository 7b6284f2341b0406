"""MobileNetV1 (Howard et al., 2017) and the MobileNet-rhs variant.

3x3 conv (stride 2; 1 for CIFAR-size inputs) -> 13 depthwise-separable units -> global average
pool -> FC. Width multiplier ``alpha`` scales every layer to ``int(c * alpha)`` channels; the
resolution multiplier is simply the input size. ``variant='rhs'`` makes each unit
dw -> BN -> ReLU-h-swish -> pw -> BN (see :class:`lightjax.layers.separable.SeparableUnit`).

Reference counts (tests/test_cost.py): 4,231,976 params and 568,740,352 MACs at 1.0-224;
MobileNet-rhs on CIFAR-100 with ``pointwise_bias=True``: 3,315,428 params.
"""
from __future__ import annotations

import flax.linen as nn
import jax

from lightjax.layers.conv_bn import ConvBN
from lightjax.layers.factory import LayerFactory
from lightjax.layers.separable import VARIANTS, SeparableUnit
from lightjax.models import base
from lightjax.models.registry import register

NAME = "mobilenet_v1"
STEM_CHANNELS = 32
#: (pointwise output channels, depthwise stride) of the 13 separable units.
UNITS = ((64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2),
         (512, 1), (512, 1), (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1))


@register(NAME)
class MobileNetV1(nn.Module):
    """MobileNetV1 classifier. ``__call__(x, train)``: (N, H, W, 3) float images -> logits.

    Attributes:
      num_classes: classifier outputs.
      alpha: width multiplier (> 0); channels ``int(c * alpha)``.
      activation: activation name; ``None`` means ``'relu'`` for ``variant='standard'`` and
        ``'relu_hswish'`` (after each depthwise conv) for ``variant='rhs'``.
      variant: ``'standard'`` or ``'rhs'``.
      pointwise_bias: bias in every pointwise conv (MobileNet-rhs counting convention).
      stem_stride: 2 (ImageNet) or 1 (CIFAR-size inputs).
      se_reduction: 0, or add an SE block with this reduction after each depthwise conv.
      dropout: dropout rate before the classifier.
      widths: explicit output channels of the 14 prunable layers (stem, unit1/pw ... unit13/pw).
      input_channels: channels of the input images.
      layers: the :class:`LayerFactory` (depthwise implementation, dtype, compression hooks).
    """

    num_classes: int = 1000
    alpha: float = 1.0
    activation: str | None = None
    variant: str = "standard"
    pointwise_bias: bool = False
    stem_stride: int = 2
    se_reduction: int = 0
    dropout: float = 0.0
    widths: tuple[int, ...] | None = None
    input_channels: int = 3
    layers: LayerFactory = LayerFactory()

    def __post_init__(self) -> None:
        base.check_common(NAME, self.num_classes, self.stem_stride, self.activation)
        base.check_alpha(NAME, self.alpha)
        base.check_choice(NAME, "variant", self.variant, VARIANTS)
        self.resolved_widths()
        super().__post_init__()

    @staticmethod
    def prunable_layers() -> tuple[str, ...]:
        return ("stem",) + tuple(f"unit{i}/pw" for i in range(1, len(UNITS) + 1))

    def resolved_widths(self) -> tuple[int, ...]:
        default = [int(STEM_CHANNELS * self.alpha)] + [int(c * self.alpha) for c, _ in UNITS]
        return base.check_widths(NAME, self.prunable_layers(), self.widths, default)

    def _activations(self) -> tuple[str, str | None]:
        if self.variant == "rhs":
            return self.activation or "relu_hswish", None
        act = self.activation or "relu"
        return act, act

    def setup(self) -> None:
        self.head = base.ClassifierHead(self.num_classes, self.dropout, layers=self.layers)

    @nn.compact
    def features(self, x: jax.Array, train: bool) -> dict[str, jax.Array]:
        """Feature maps by name: ``stem``, ``unit1`` ... ``unit13`` (NHWC)."""
        base.check_images(NAME, x, self.input_channels)
        widths = self.resolved_widths()
        dw_act, pw_act = self._activations()
        stem_act = dw_act if self.variant == "standard" else (self.activation or "relu")
        x = ConvBN(widths[0], 3, self.stem_stride, activation=stem_act, layers=self.layers,
                   name="stem")(x, train)
        feats = {"stem": x}
        for i, ((_, stride), width) in enumerate(zip(UNITS, widths[1:]), start=1):
            x = SeparableUnit(width, stride, dw_act, pw_act, self.pointwise_bias,
                              self.se_reduction, self.layers, name=f"unit{i}")(x, train)
            feats[f"unit{i}"] = x
        return feats

    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        return self.head(self.features(x, train)[f"unit{len(UNITS)}"], train)
