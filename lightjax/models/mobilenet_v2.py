"""MobileNetV2 (Sandler et al., 2018): inverted residuals and linear bottlenecks.

torchvision conventions: 3x3 stride-2 ConvBN-ReLU6 stem with ``make_divisible(32 * alpha)``
channels -> 17 inverted residual blocks from the (t, c, n, s) table -> 1x1 ConvBN-ReLU6 with
``make_divisible(1280 * max(1, alpha))`` channels -> global average pool -> dropout(0.2) -> FC with
bias. Block output channels are ``make_divisible(c * alpha, 8)``; a block's hidden (expanded)
width is ``int(round(Cin * t))``; the first block of each stage has stride ``s``, the others 1.

Residuals follow the default architecture: a block adds its input exactly when it has stride 1
and its default input and output widths are equal (at alpha = 1: blocks 3, 5, 6, 8, 9, 10, 12,
13, 15, 16). ``widths`` may not break one of these shortcuts (``ValueError`` naming the block);
conversely, widths that happen to make a non-residual block square do not add one.

Reference counts (tests/models/test_mobilenet_v2.py): 3,504,872 params and 300,774,272 MACs at
1.0-224 with 1000 classes.
"""
from __future__ import annotations

import flax.linen as nn
import jax

from lightjax.layers.conv_bn import ConvBN
from lightjax.layers.factory import LayerFactory
from lightjax.layers.inverted_residual import InvertedResidual
from lightjax.models import base
from lightjax.models.channels import make_divisible
from lightjax.models.registry import register
from lightjax.errors import ValidationError

NAME = "mobilenet_v2"
STEM_CHANNELS = 32
LAST_CHANNELS = 1280
DIVISOR = 8
#: (expansion t, output channels c, repeats n, first stride s) of the seven stages.
STAGES = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
          (6, 160, 3, 2), (6, 320, 1, 1))
#: (expansion t, output channels c, stride) of the 17 blocks, block1 first.
BLOCKS = tuple((t, c, s if i == 0 else 1) for t, c, n, s in STAGES for i in range(n))


@register(NAME)
class MobileNetV2(nn.Module):
    """MobileNetV2 classifier. ``__call__(x, train)``: (N, H, W, C) float images -> logits.

    Attributes:
      num_classes: classifier outputs.
      alpha: width multiplier (> 0); see the module docstring for the channel rule.
      activation: registered activation name used wherever MobileNetV2 uses ReLU6 (stem, expand
        and depthwise convs, last conv); the project convs stay linear.
      stem_stride: 2 (ImageNet) or 1 (CIFAR-size inputs such as 32x32).
      dropout: dropout rate before the classifier.
      widths: explicit output channels of the prunable layers (:meth:`prunable_layers`: ``stem``,
        ``block{i}/expand`` for blocks with t != 1, ``block{i}/project``, ``head_conv``). Widths
        tied by a residual add must stay equal (``ValueError`` otherwise).
      input_channels: channels of the input images.
      layers: the :class:`LayerFactory` (depthwise implementation, dtype, compression hooks).
    """

    num_classes: int = 1000
    alpha: float = 1.0
    activation: str = "relu6"
    stem_stride: int = 2
    dropout: float = 0.2
    widths: tuple[int, ...] | None = None
    input_channels: int = 3
    layers: LayerFactory = LayerFactory()

    def __post_init__(self) -> None:
        base.check_common(NAME, self.num_classes, self.stem_stride, self.activation)
        base.check_alpha(NAME, self.alpha)
        self.block_specs()  # validates widths, including the residual ties
        super().__post_init__()

    @staticmethod
    def prunable_layers() -> tuple[str, ...]:
        names = ["stem"]
        for i, (t, _, _) in enumerate(BLOCKS, start=1):
            if t != 1:
                names.append(f"block{i}/expand")
            names.append(f"block{i}/project")
        return tuple(names + ["head_conv"])

    def _default_widths(self) -> list[int]:
        width = make_divisible(STEM_CHANNELS * self.alpha, DIVISOR)
        out = [width]
        for t, c, _ in BLOCKS:
            if t != 1:
                out.append(int(round(width * t)))
            width = make_divisible(c * self.alpha, DIVISOR)
            out.append(width)
        return out + [make_divisible(LAST_CHANNELS * max(1.0, self.alpha), DIVISOR)]

    def default_residuals(self) -> tuple[bool, ...]:
        """Per block (block1 first): whether the default architecture has a residual add."""
        default = self._default_widths()
        names = self.prunable_layers()
        out, width = [], default[0]
        for i, (_, _, stride) in enumerate(BLOCKS, start=1):
            project = default[names.index(f"block{i}/project")]
            out.append(stride == 1 and width == project)
            width = project
        return tuple(out)

    def resolved_widths(self) -> tuple[int, ...]:
        return base.check_widths(NAME, self.prunable_layers(), self.widths,
                                 self._default_widths())

    def block_specs(self) -> tuple[dict, ...]:
        """Per block: ``in``, ``hidden``, ``out`` channels, ``stride``, ``expand``, ``residual``.

        Raises ``ValueError`` if ``widths`` makes a residual block's input and output differ.
        """
        widths = dict(zip(self.prunable_layers(), self.resolved_widths()))
        specs, width = [], widths["stem"]
        for i, ((t, _, stride), residual) in enumerate(zip(BLOCKS, self.default_residuals()),
                                                       start=1):
            expand = t != 1
            hidden = widths[f"block{i}/expand"] if expand else width
            out = widths[f"block{i}/project"]
            if residual and width != out:
                prev = "stem" if i == 1 else f"block{i - 1}/project"
                raise ValidationError(
                    f"{NAME}: block{i} has a residual add, so its input and output widths must "
                    f"be equal, but widths gives {prev}={width} and block{i}/project={out}")
            specs.append(dict(name=f"block{i}", in_channels=width, hidden=hidden, out=out,
                              stride=stride, expand=expand, residual=residual))
            width = out
        return tuple(specs)

    def setup(self) -> None:
        # Submodules are declared here (not inline in a compact method) so that ``features`` can
        # also be applied on its own: ``model.apply(variables, x, False, method='features')``.
        widths = self.resolved_widths()
        self.stem = ConvBN(widths[0], 3, self.stem_stride, activation=self.activation,
                           layers=self.layers)
        self.blocks = [
            InvertedResidual(spec["hidden"], spec["out"], spec["stride"], spec["expand"],
                             self.activation, self.layers, residual=spec["residual"],
                             name=spec["name"])
            for spec in self.block_specs()]
        self.head_conv = ConvBN(widths[-1], 1, activation=self.activation, layers=self.layers)
        self.head = base.ClassifierHead(self.num_classes, self.dropout, layers=self.layers)

    def features(self, x: jax.Array, train: bool = False) -> dict[str, jax.Array]:
        """Feature maps by name: ``stem``, ``block1`` ... ``block17``, ``head_conv`` (NHWC).

        With ``stem_stride=2`` their strides are 2 (stem, block1), 4 (block2-3), 8 (block4-6),
        16 (block7-13) and 32 (block14-17, head_conv). Usable as a backbone from a parent's
        compact method or directly with ``model.apply(variables, x, train, method='features')``.
        """
        base.check_images(NAME, x, self.input_channels)
        x = self.stem(x, train)
        feats = {"stem": x}
        for block in self.blocks:
            x = block(x, train)
            feats[block.name] = x
        feats["head_conv"] = self.head_conv(x, train)
        return feats

    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        """(N, H, W, input_channels) images -> (N, num_classes) logits."""
        return self.head(self.features(x, train)["head_conv"], train)
