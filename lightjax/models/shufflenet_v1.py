"""ShuffleNet V1 (Zhang et al., 2018): pointwise group convs + channel shuffle + depthwise convs.

3x3 stride-2 ConvBN-act stem -> 3x3/2 max pool -> stages 2, 3, 4 of 4 / 8 / 4
:class:`~lightjax.layers.shuffle.ShuffleV1Unit` (the first unit of each stage has stride 2 and an
avg-pool shortcut that is concatenated, so its branch outputs ``out - in`` channels; the others
are residual) -> global average pool -> FC. As in megvii's reference code (ShuffleNet-Series):
the bottleneck is ``stage output // 4`` (also in a stage's first unit), stage 2's first 1x1 conv
is not grouped, the classifier has no bias by default, and the channel shuffle follows the
paper (megvii's code applies the inverse permutation; see :mod:`lightjax.layers.shuffle`).

Channels (``scale`` s, ``groups`` g). Stage-2 output channels at 1x (paper Table 1) are
144 / 200 / 240 / 272 / 384 for g = 1 / 2 / 3 / 4 / 8; stage 3 = 2 x stage 2, stage 4 = 4 x
stage 2. At scale s, stage 2 has ``make_divisible(c * s, 4 * g)`` channels (nearest multiple of
4g, never more than 10% below), so that the bottleneck (out / 4) splits into g groups; stages 3
and 4 keep the 2x / 4x ratios. The stem has 24 channels at 1x; megvii's table gives 12 / 24 /
24 / 48 for 0.5x / 1x / 1.5x / 2x (1.5x keeps 24), other scales use ``24 * s``; the result is
rounded to a multiple of g (``make_divisible(., g)``) because the stem channels are concatenated
into stage 2's output, which feeds grouped convs. For g = 3 and g = 8 this reproduces megvii's
``stage_out_channels`` tables exactly (e.g. g=8 0.5x: stem 16, stages 192 / 384 / 768).

``stem_stride=1`` (CIFAR-size inputs) makes the stem conv stride 1 *and* drops the max pool, so the
network downsamples 8x (32x32 -> 4x4 at stage 4) instead of 32x.

Prunable layers (``widths``), in order: ``stem``; for every unit ``stage{s}_unit{i}/gconv1``
(its bottleneck) and, for the stride-2 first unit of each stage, ``stage{s}_unit1/gconv2`` (its
branch output; the unit outputs ``in + gconv2`` channels). The other units' ``gconv2`` outputs are
tied to their input by the residual add and are not listed. Rules (``ValueError`` naming the layer):
with g > 1 every listed width must be divisible by g (gconv1: the shuffle and grouped gconv2 split
it into g groups; gconv2: grouped; stem: it becomes part of stage 2's output, the grouped input of
the next units).

Measured counts at 224, 1000 classes, bias-free classifier, scale 1x (tests/models/
test_shufflenet_v1.py). Paper Table 1 gives 143 / 140 / 137 / 133 / 137 MFLOPs; these are the
MACs *without the classifier FC* (C4 x 1000), rounded: 142.50 / 140.04 / 136.50 / 133.25 / 136.83M.

=====  ==========  ===========
g      params      MACs
1      1,530,936   143,078,976
2      1,732,848   140,836,512
3      1,864,728   137,460,672
4      1,967,344   134,339,776
8      2,433,768   138,365,952
=====  ==========  ===========

g=3 1x: 1,864,728 params, the megvii reference code's count. megvii's README (FLOPs / params,
g=3 and g=8 at 0.5x / 1x / 1.5x / 2x) is matched too, e.g. g=3 2x: 524,045,184 MACs, 5.45M params.
"""
from __future__ import annotations

import flax.linen as nn
import jax

from lightjax.layers.conv_bn import ConvBN
from lightjax.layers.factory import LayerFactory
from lightjax.layers.shuffle import ShuffleV1Unit, max_pool
from lightjax.models import base
from lightjax.models.channels import make_divisible
from lightjax.models.registry import register
from lightjax.errors import ValidationError

NAME = "shufflenet_v1"
#: Stage-2 output channels at scale 1x by group count (paper Table 1); stages 3, 4 double.
STAGE2_CHANNELS = {1: 144, 2: 200, 3: 240, 4: 272, 8: 384}
GROUPS = tuple(STAGE2_CHANNELS)
STEM_CHANNELS = 24
#: megvii's stem (first conv) channels by model size; other scales use ``24 * scale``.
STEM_BY_SCALE = {0.5: 12, 1.0: 24, 1.5: 24, 2.0: 48}
REPEATS = (4, 8, 4)
STAGES = (2, 3, 4)


def stage_channels(groups: int, scale: float) -> tuple[int, int, int, int]:
    """(stem, stage2, stage3, stage4) output channels for ``groups`` and ``scale``."""
    stage2 = make_divisible(STAGE2_CHANNELS[groups] * scale, 4 * groups)
    stem = make_divisible(STEM_BY_SCALE.get(float(scale), STEM_CHANNELS * scale), groups)
    return stem, stage2, 2 * stage2, 4 * stage2


@register(NAME)
class ShuffleNetV1(nn.Module):
    """ShuffleNet V1 classifier. ``__call__(x, train)``: (N, H, W, C) float images -> logits.

    Attributes:
      num_classes: classifier outputs.
      groups: group count of the 1x1 group convs: 1, 2, 3, 4 or 8.
      scale: width multiplier s (> 0; the paper uses 0.25, 0.5, 1, 1.5, 2); see the module
        docstring for the channel rule.
      activation: registered activation name used wherever the paper uses ReLU.
      stem_stride: 2 (ImageNet: stride-2 stem conv + max pool) or 1 (CIFAR-size inputs: stride-1
        stem conv, no max pool).
      classifier_bias: bias in the final FC (the reference code has none).
      widths: explicit output channels of the prunable layers (:meth:`prunable_layers`).
      input_channels: channels of the input images.
      layers: the :class:`LayerFactory` (depthwise implementation, dtype, compression hooks).
    """

    num_classes: int = 1000
    groups: int = 3
    scale: float = 1.0
    activation: str = "relu"
    stem_stride: int = 2
    classifier_bias: bool = False
    widths: tuple[int, ...] | None = None
    input_channels: int = 3
    layers: LayerFactory = LayerFactory()

    def __post_init__(self) -> None:
        base.check_common(NAME, self.num_classes, self.stem_stride, self.activation)
        if type(self.groups) is not int or self.groups not in GROUPS:
            raise ValidationError(f"{NAME}: groups must be one of {', '.join(map(str, GROUPS))}, "
                             f"got {self.groups!r}")
        base.check_alpha(NAME, self.scale, "scale")
        self.unit_specs()  # validates widths
        super().__post_init__()

    @staticmethod
    def prunable_layers() -> tuple[str, ...]:
        names = ["stem"]
        for stage, repeats in zip(STAGES, REPEATS):
            for i in range(1, repeats + 1):
                names.append(f"stage{stage}_unit{i}/gconv1")
                if i == 1:
                    names.append(f"stage{stage}_unit{i}/gconv2")
        return tuple(names)

    def _default_widths(self) -> list[int]:
        stem, *outs = stage_channels(self.groups, self.scale)
        widths, cin = [stem], stem
        for out, repeats in zip(outs, REPEATS):
            if out <= cin:
                raise ValidationError(f"{NAME}: scale={self.scale} leaves stage outputs ({out}) no "
                                 f"wider than their inputs ({cin}); use a larger scale")
            widths += [out // 4, out - cin] + [out // 4] * (repeats - 1)
            cin = out
        return widths

    def resolved_widths(self) -> tuple[int, ...]:
        names = self.prunable_layers()
        widths = base.check_widths(NAME, names, self.widths, self._default_widths())
        g = self.groups
        for name, w in zip(names, widths):
            if w % g:
                why = {"stem": "its channels are concatenated into stage 2's output, which "
                               "feeds grouped 1x1 convs",
                       "gconv1": "the channel shuffle and the grouped gconv2 split it into "
                                 "groups",
                       "gconv2": "it is a grouped conv"}[name.rsplit("/", 1)[-1]]
                raise ValidationError(f"{NAME}: layer {name} has width {w}, which must be divisible "
                                 f"by groups={g} ({why})")
        return widths

    def unit_specs(self) -> tuple[dict, ...]:
        """Per unit: ``name``, ``in_channels``, ``bottleneck``, ``out``, ``stride``,
        ``first_group_conv_grouped``. Validates ``widths``."""
        widths = dict(zip(self.prunable_layers(), self.resolved_widths()))
        specs, cin = [], widths["stem"]
        for stage, repeats in zip(STAGES, REPEATS):
            for i in range(1, repeats + 1):
                name = f"stage{stage}_unit{i}"
                out = cin + widths[f"{name}/gconv2"] if i == 1 else cin
                specs.append(dict(name=name, in_channels=cin, bottleneck=widths[f"{name}/gconv1"],
                                  out=out, stride=2 if i == 1 else 1,
                                  first_group_conv_grouped=not (stage == 2 and i == 1)))
                cin = out
        return tuple(specs)

    def setup(self) -> None:
        # The head lives in setup so that ``features`` can be the compact method: it is then
        # callable on its own, ``model.apply(variables, x, False, method="features")``.
        self.head = base.ClassifierHead(self.num_classes, use_bias=self.classifier_bias,
                                         layers=self.layers)

    @nn.compact
    def features(self, x: jax.Array, train: bool) -> dict[str, jax.Array]:
        """Feature maps by name (NHWC): ``stem`` (the stem conv's output, before the max pool),
        ``stage2``, ``stage3``, ``stage4``. Strides 2, 8, 16, 32 (``stem_stride=2``) or
        1, 2, 4, 8 (``stem_stride=1``)."""
        base.check_images(NAME, x, self.input_channels)
        specs = self.unit_specs()
        x = ConvBN(specs[0]["in_channels"], 3, self.stem_stride, activation=self.activation,
                   layers=self.layers, name="stem")(x, train)
        feats = {"stem": x}
        if self.stem_stride == 2:
            x = max_pool(x, 3, 2, self.layers.padding)
        for spec in specs:
            x = ShuffleV1Unit(spec["out"], spec["bottleneck"], self.groups, spec["stride"],
                              spec["first_group_conv_grouped"], self.activation, self.layers,
                              name=spec["name"])(x, train)
            feats[spec["name"].split("_")[0]] = x
        return feats

    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        return self.head(self.features(x, train)["stage4"], train)
