"""ShuffleNet V2 (Ma et al., 2018): channel split, concat and channel shuffle.

torchvision conventions exactly: 3x3 stride-2 ConvBN-ReLU stem -> 3x3/2 max pool (PyTorch
``MaxPool2d(3, 2, 1)``) -> stages 2, 3, 4 of 4 / 8 / 4
:class:`~lightjax.layers.shuffle.ShuffleV2Unit` (the first unit of each stage has stride 2) ->
``conv5`` 1x1 ConvBN-ReLU -> global average pool ->
FC with bias. Channels (stem, stage2, stage3, stage4, conv5) by ``scale``:

=====  =============================
scale  channels
0.5    24, 48, 96, 192, 1024
1.0    24, 116, 232, 464, 1024
1.5    24, 176, 352, 704, 1024
2.0    24, 244, 488, 976, 2048
=====  =============================

Every branch conv of a unit producing ``out`` channels has ``out // 2`` channels.

``stem_stride=1`` (CIFAR-size inputs) makes the stem conv stride 1 *and* drops the max pool, so the
network downsamples 8x (32x32 -> 4x4 at stage 4) instead of 32x.

Prunable layers (``widths``), in order: ``stem``; for each stride-2 unit (``stage{s}_unit1``)
``branch1_pw``, ``branch2_pw1``, ``branch2_pw2``; for each stride-1 unit ``branch2_pw1``,
``branch2_pw2``; ``conv5`` (37 layers; module paths such as ``stage3_unit5/branch2_pw1``). The
depthwise convs follow their producers. Rules (``ValueError`` naming the unit): a unit's output is
channel-shuffled with 2 groups, so it must be even: ``branch1_pw + branch2_pw2`` for stride-2 units,
``in / 2 + branch2_pw2`` for stride-1 units (which split their input in half; the input is the
previous unit's output and therefore even).

Reference counts (tests/models/test_shufflenet_v2.py), 224, 1000 classes: params 1,366,792 /
2,278,604 / 3,503,624 / 7,393,996 and MACs 40,476,448 / 144,907,992 / 295,759,392 / 583,253,464
for 0.5x / 1x / 1.5x / 2x.
"""
from __future__ import annotations

import flax.linen as nn
import jax

from lightjax.layers.conv_bn import ConvBN
from lightjax.layers.factory import LayerFactory
from lightjax.layers.shuffle import ShuffleV2Unit, max_pool
from lightjax.models import base
from lightjax.models.registry import register
from lightjax.errors import ValidationError

NAME = "shufflenet_v2"
#: torchvision's stage_out_channels (stem, stage2, stage3, stage4, conv5) by scale.
CHANNELS = {0.5: (24, 48, 96, 192, 1024), 1.0: (24, 116, 232, 464, 1024),
            1.5: (24, 176, 352, 704, 1024), 2.0: (24, 244, 488, 976, 2048)}
SCALES = tuple(CHANNELS)
REPEATS = (4, 8, 4)
STAGES = (2, 3, 4)


@register(NAME)
class ShuffleNetV2(nn.Module):
    """ShuffleNet V2 classifier. ``__call__(x, train)``: (N, H, W, C) float images -> logits.

    Attributes:
      num_classes: classifier outputs.
      scale: 0.5, 1.0, 1.5 or 2.0 (torchvision's ``shufflenet_v2_x*``).
      activation: registered activation name used wherever the paper uses ReLU.
      stem_stride: 2 (ImageNet: stride-2 stem conv + max pool) or 1 (CIFAR-size inputs: stride-1
        stem conv, no max pool).
      widths: explicit output channels of the prunable layers (:meth:`prunable_layers`).
      input_channels: channels of the input images.
      layers: the :class:`LayerFactory` (depthwise implementation, dtype, compression hooks).
    """

    num_classes: int = 1000
    scale: float = 1.0
    activation: str = "relu"
    stem_stride: int = 2
    widths: tuple[int, ...] | None = None
    input_channels: int = 3
    layers: LayerFactory = LayerFactory()

    def __post_init__(self) -> None:
        base.check_common(NAME, self.num_classes, self.stem_stride, self.activation)
        if (isinstance(self.scale, bool) or not isinstance(self.scale, (int, float))
                or self.scale not in CHANNELS):
            raise ValidationError(f"{NAME}: unknown scale {self.scale!r}; allowed: "
                             f"{', '.join(map(str, SCALES))}")
        self.unit_specs()  # validates widths
        super().__post_init__()

    @staticmethod
    def prunable_layers() -> tuple[str, ...]:
        names = ["stem"]
        for stage, repeats in zip(STAGES, REPEATS):
            for i in range(1, repeats + 1):
                unit = f"stage{stage}_unit{i}"
                if i == 1:
                    names.append(f"{unit}/branch1_pw")
                names += [f"{unit}/branch2_pw1", f"{unit}/branch2_pw2"]
        return tuple(names + ["conv5"])

    def _default_widths(self) -> list[int]:
        stem, *outs, last = CHANNELS[self.scale]
        widths = [stem]
        for out, repeats in zip(outs, REPEATS):
            widths += [out // 2] * (2 * repeats + 1)
        return widths + [last]

    def resolved_widths(self) -> tuple[int, ...]:
        return base.check_widths(NAME, self.prunable_layers(), self.widths,
                                 self._default_widths())

    def unit_specs(self) -> tuple[dict, ...]:
        """Per unit: ``name``, ``in_channels``, ``stride``, ``branch1`` (stride 2, else None),
        ``mid``, ``branch2``, ``out``. Validates ``widths``."""
        widths = dict(zip(self.prunable_layers(), self.resolved_widths()))
        specs, cin = [], widths["stem"]
        for stage, repeats in zip(STAGES, REPEATS):
            for i in range(1, repeats + 1):
                name = f"stage{stage}_unit{i}"
                b2 = widths[f"{name}/branch2_pw2"]
                if i == 1:
                    b1 = widths[f"{name}/branch1_pw"]
                    out, rule = b1 + b2, f"{name}/branch1_pw ({b1}) + {name}/branch2_pw2 ({b2})"
                else:
                    b1 = None
                    out, rule = cin // 2 + b2, (f"half its input ({cin} // 2 = {cin // 2}) + "
                                                f"{name}/branch2_pw2 ({b2})")
                if out % 2:
                    raise ValidationError(f"{NAME}: unit {name} outputs {rule} = {out} channels, "
                                     f"which are channel-shuffled with 2 groups, so the total "
                                     f"must be even")
                specs.append(dict(name=name, in_channels=cin, stride=2 if i == 1 else 1,
                                  branch1=b1, mid=widths[f"{name}/branch2_pw1"], branch2=b2,
                                  out=out))
                cin = out
        return tuple(specs)

    def setup(self) -> None:
        # The head lives in setup so that ``features`` can be the compact method: it is then
        # callable on its own, ``model.apply(variables, x, False, method="features")``.
        self.head = base.ClassifierHead(self.num_classes, layers=self.layers)

    @nn.compact
    def features(self, x: jax.Array, train: bool) -> dict[str, jax.Array]:
        """Feature maps by name (NHWC): ``stem`` (the stem conv's output, before the max pool),
        ``stage2``, ``stage3``, ``stage4``, ``conv5``. Strides 2, 8, 16, 32, 32
        (``stem_stride=2``) or 1, 2, 4, 8, 8 (``stem_stride=1``)."""
        base.check_images(NAME, x, self.input_channels)
        widths = self.resolved_widths()
        x = ConvBN(widths[0], 3, self.stem_stride, activation=self.activation,
                   layers=self.layers, name="stem")(x, train)
        feats = {"stem": x}
        if self.stem_stride == 2:
            x = max_pool(x, 3, 2, self.layers.padding)
        for spec in self.unit_specs():
            x = ShuffleV2Unit(spec["branch2"], spec["stride"], spec["mid"], spec["branch1"],
                              self.activation, self.layers, name=spec["name"])(x, train)
            feats[spec["name"].split("_")[0]] = x
        x = ConvBN(widths[-1], 1, activation=self.activation, layers=self.layers,
                   name="conv5")(x, train)
        feats["conv5"] = x
        return feats

    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        return self.head(self.features(x, train)["conv5"], train)
