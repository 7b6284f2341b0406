"""YOLOv3-Mobile: YOLOv3 detection (Redmon & Farhadi, 2018, arXiv:1804.02767) on a MobileNetV1
backbone, with the option of depthwise-separable head convolutions (the YOLOv3-Mobile paper's
speed-up). (N, H, W, 3) images -> three raw prediction maps, NHWC.

With ``stem_stride=2`` (default) and ``alpha=1``, ``head_width=1``::

  backbone   MobileNetV1 features (``backbone/stem`` ... ``backbone/unit13``; no pool, no FC)
             unit4: stride 8, 256 ch    unit6: stride 16, 512 ch    unit13: stride 32, 1024 ch
  neck0      detection block on unit13 (c = 512)                    stride 32
  neck1      transition 1x1(c0/2) of neck0's route, 2x nearest upsample, concat with unit6,
             detection block (c = 256)                              stride 16
  neck2      the same from neck1's route, concat with unit4 (c = 128)  stride 8
  head{i}    1x1 conv with bias on neck{i}'s tip: 3 * (5 + num_classes) channels

A detection block (PaddleDetection's ``YoloDetBlock``, the YOLOv3 paper's "several convolutional
layers") is ``neck{i}/conv0`` 1x1(c) -> ``conv1`` 3x3(2c) -> ``conv2`` 1x1(c) -> ``conv3`` 3x3(2c)
-> ``route`` 1x1(c), and ``tip`` 3x3(2c) on the route; every conv is followed by BN and
LeakyReLU(0.1) (``neck_activation``). ``head_conv='separable'`` replaces each 3x3 conv (2c) by a
depthwise 3x3 -> BN -> act -> pointwise 1x1(2c) -> BN -> act pair (``conv1_dw``, ``conv1_pw``).
``head_width`` scales every neck width ``c`` (``make_divisible(c * head_width, 8)``): the
published model (80 classes, 416x416) has about 24M parameters and 10 GMACs, far beyond a CPU
demo, so demos narrow both the backbone (``alpha``) and the head.

Outputs are returned coarsest first (strides 32, 16, 8, PaddleDetection's order), each
``(N, H / s, W / s, 3 * (5 + num_classes))`` with channel ``a * (5 + C) + j`` holding, for the
scale's anchor ``a`` (:data:`ANCHOR_MASKS`), ``j = 0..3`` the box offsets ``t_x, t_y, t_w, t_h``,
``j = 4`` the objectness logit and ``j = 5..`` the class logits. Concatenations put the upsampled
route first (``[route, backbone feature]``), as PaddleDetection does.

Anchors (:data:`ANCHORS`, pixels at the 416/608 training scale) are the YOLOv3 paper's COCO
clusters; :data:`ANCHOR_MASKS` gives each scale its three (largest anchors on the coarsest map).
Height and width must be multiples of the output stride (32; 16 with ``stem_stride=1``).
"""
from __future__ import annotations

import math

import flax.linen as nn
import jax
import jax.numpy as jnp

from lightjax.errors import ValidationError
from lightjax.layers.conv_bn import ConvBN
from lightjax.layers import activations
from lightjax.layers.factory import LayerFactory
from lightjax.layers.separable import VARIANTS
from lightjax.models import base
from lightjax.models import mobilenet_v1 as v1
from lightjax.models.channels import make_divisible
from lightjax.models.registry import register

NAME = "yolov3_mobilenet_v1"
#: Backbone features of the three scales, coarsest first (strides 32, 16, 8 with stem stride 2).
TAPS = ("unit13", "unit6", "unit4")
#: Neck widths ``c`` of the three scales before ``head_width``.
NECK_CHANNELS = (512, 256, 128)
# the YOLOv3 paper's COCO anchor clusters (width, height in pixels) and each scale's three
from lightjax.detect.anchors import ANCHOR_MASKS, ANCHORS  # noqa: E402,F401
#: ``head_conv`` choices: the 3x3 convs of the neck as standard or depthwise-separable convs.
HEAD_CONVS = ("standard", "separable")
#: Values per anchor before the classes: t_x, t_y, t_w, t_h, objectness.
BOX_VALUES = 5


def upsample_nearest(x: jax.Array, factor: int = 2) -> jax.Array:
    """(N, H, W, C) -> (N, factor * H, factor * W, C), each pixel repeated (nearest neighbour)."""
    return jnp.repeat(jnp.repeat(x, factor, axis=1), factor, axis=2)


class NeckScale(nn.Module):
    """One scale of the YOLOv3 neck: ``(feature, route) -> (route, tip)``. NHWC.

    With the coarser scale's ``route`` (not ``None``): ``transition`` 1x1(``transition``
    channels), 2x nearest upsample, concatenated before ``feature``. Then the detection block
    ``conv0`` 1x1(c), ``conv1`` 3x3(2c), ``conv2`` 1x1(c), ``conv3`` 3x3(2c), ``route`` 1x1(c),
    and ``tip`` 3x3(2c) on the route, with output channels ``widths`` (in that order). Each 3x3
    conv ``name`` is a ConvBN, or with ``separable`` a depthwise ConvBN ``name_dw`` and a
    pointwise ConvBN ``name_pw``.
    """

    widths: tuple[int, int, int, int, int, int]
    transition: int = 0
    separable: bool = False
    activation: str = "leaky_relu_0.1"
    layers: LayerFactory = LayerFactory()

    def _conv(self, x: jax.Array, features: int, kernel: int, name: str,
              train: bool) -> jax.Array:
        act, lay = self.activation, self.layers
        if kernel == 1 or not self.separable:
            return ConvBN(features, kernel, activation=act, layers=lay, name=name)(x, train)
        x = ConvBN(x.shape[-1], kernel, depthwise=True, activation=act, layers=lay,
                   name=f"{name}_dw")(x, train)
        return ConvBN(features, 1, activation=act, layers=lay, name=f"{name}_pw")(x, train)

    @nn.compact
    def __call__(self, feature: jax.Array, route: jax.Array | None,
                 train: bool) -> tuple[jax.Array, jax.Array]:
        x = feature
        if route is not None:
            up = upsample_nearest(self._conv(route, self.transition, 1, "transition", train))
            x = jnp.concatenate([up.astype(feature.dtype), feature], axis=-1)
        for i, kernel in enumerate((1, 3, 1, 3)):
            x = self._conv(x, self.widths[i], kernel, f"conv{i}", train)
        route = self._conv(x, self.widths[4], 1, "route", train)
        return route, self._conv(route, self.widths[5], 3, "tip", train)


#: The detection block's convs in ``widths`` order, with their kernel sizes.
BLOCK_CONVS = (("conv0", 1), ("conv1", 3), ("conv2", 1), ("conv3", 3), ("route", 1), ("tip", 3))


@register(NAME)
class YOLOv3MobileNetV1(nn.Module):
    """YOLOv3 on MobileNetV1. ``__call__(x, train)``: (N, H, W, C) images -> a tuple of three
    ``(N, H / s, W / s, 3 * (5 + num_classes))`` prediction maps, strides 32, 16, 8.

    Attributes:
      num_classes: object classes C (80 for COCO, 20 for VOC).
      alpha: backbone width multiplier (> 0).
      head_width: neck width multiplier (> 0): ``c = make_divisible(c * head_width, 8)``.
      head_conv: ``'standard'`` or ``'separable'`` 3x3 convs in the neck.
      activation: the backbone's activation (``None``: its default for ``variant``).
      variant: backbone variant, ``'standard'`` or ``'rhs'``.
      neck_activation: activation after every neck conv (LeakyReLU 0.1, as YOLOv3).
      stem_stride: 2 (output strides 32/16/8) or 1 (16/8/4, for tiny inputs).
      widths: explicit output channels of the 32 prunable layers (:meth:`prunable_layers`: the
        backbone's 14, then each scale's conv0, conv1, conv2, conv3, route, tip); overrides
        ``alpha`` and ``head_width`` there (the transitions keep the scale's neck width).
      objectness_prior: initial objectness probability of every prediction (the output biases
        start at ``logit(objectness_prior)`` for objectness and ``logit(1 / num_classes)`` for
        the classes, as RetinaNet and ultralytics' YOLO initialise them; PaddleDetection starts
        at zero). Without it the ~1,000 negatives per image dominate the first epochs.
      input_channels: channels of the input images.
      layers: the :class:`LayerFactory` (dtype, depthwise implementation, compression hooks).
    """

    num_classes: int = 80
    alpha: float = 1.0
    head_width: float = 1.0
    head_conv: str = "standard"
    activation: str | None = None
    variant: str = "standard"
    neck_activation: str = "leaky_relu_0.1"
    stem_stride: int = 2
    widths: tuple[int, ...] | None = None
    objectness_prior: float = 0.01
    input_channels: int = 3
    layers: LayerFactory = LayerFactory()

    def __post_init__(self) -> None:
        base.check_common(NAME, self.num_classes, self.stem_stride, self.activation)
        base.check_alpha(NAME, self.alpha)
        base.check_alpha(NAME, self.head_width, "head_width")
        base.check_choice(NAME, "variant", self.variant, VARIANTS)
        base.check_choice(NAME, "head_conv", self.head_conv, HEAD_CONVS)
        if isinstance(self.objectness_prior, bool) or not isinstance(
                self.objectness_prior, (int, float)) or not 0.0 < self.objectness_prior < 1.0:
            raise ValidationError(f"{NAME}: objectness_prior must be a number in (0, 1), got "
                                  f"{self.objectness_prior!r}")
        activations.create(self.neck_activation)  # unknown names fail here, before tracing
        self.resolved_widths()
        super().__post_init__()

    # --- structure ------------------------------------------------------------------------------
    def neck_channels(self) -> tuple[int, int, int]:
        """The neck widths ``c`` of the three scales, coarsest first."""
        return tuple(make_divisible(c * self.head_width, 8) for c in NECK_CHANNELS)

    def prunable_layers(self) -> tuple[str, ...]:
        """The 32 layers whose widths ``widths`` sets: the backbone's, then each detection
        block's (the pointwise half of a separable 3x3). Transitions and outputs are kept."""
        sep = "_pw" if self.head_conv == "separable" else ""
        neck = tuple(f"neck{i}/{name}{sep if k == 3 else ''}" for i in range(len(TAPS))
                     for name, k in BLOCK_CONVS)
        return tuple(f"backbone/{n}" for n in v1.MobileNetV1.prunable_layers()) + neck

    @staticmethod
    def output_layers() -> tuple[str, ...]:
        """The three 1x1 output convs (kept full precision when binarizing by default)."""
        return tuple(f"head{i}" for i in range(len(TAPS)))

    def resolved_widths(self) -> tuple[int, ...]:
        """The 32 output channel counts (validated)."""
        backbone = ([int(v1.STEM_CHANNELS * self.alpha)]
                    + [int(c * self.alpha) for c, _ in v1.UNITS])
        neck = [m * c for c in self.neck_channels() for m in (1, 2, 1, 2, 1, 2)]
        return base.check_widths(NAME, self.prunable_layers(), self.widths, backbone + neck)

    def output_strides(self) -> tuple[int, int, int]:
        """Strides of the three outputs in pixels, coarsest first: (32, 16, 8) or (16, 8, 4)."""
        s = 16 * self.stem_stride
        return s, s // 2, s // 4

    def outputs_per_anchor(self) -> int:
        """``5 + num_classes``: box offsets, objectness, class logits."""
        return BOX_VALUES + self.num_classes

    def anchors(self) -> tuple[tuple[tuple[int, int], ...], ...]:
        """(width, height) anchors in pixels of each output, coarsest first."""
        return tuple(tuple(ANCHORS[i] for i in mask) for mask in ANCHOR_MASKS)

    def min_input_size(self) -> int:
        """Smallest valid image height/width (the coarsest stride)."""
        return self.output_strides()[0]

    def _prior_bias(self, key, shape, dtype=jnp.float32) -> jax.Array:
        """Output biases ``logit(objectness_prior)`` (objectness), ``logit(1 / C)`` (classes), 0
        (box offsets), for each anchor (``key`` unused: deterministic)."""
        del key
        logit = lambda p: math.log(p / (1.0 - p))  # noqa: E731
        per_anchor = [0.0] * 4 + [logit(self.objectness_prior)] + \
            [logit(1.0 / max(self.num_classes, 2))] * self.num_classes
        return jnp.asarray(per_anchor * (shape[0] // len(per_anchor)), dtype)

    # --- forward --------------------------------------------------------------------------------
    def check_images(self, x: jax.Array) -> None:
        """NHWC, ``input_channels`` channels, height and width multiples of the output stride."""
        base.check_images(NAME, x, self.input_channels)
        s = self.output_strides()[0]
        if x.shape[1] % s or x.shape[2] % s:
            raise ValidationError(
                f"{NAME}: image height and width must be multiples of {s} (the coarsest output "
                f"stride with stem_stride={self.stem_stride}), got {x.shape[1]}x{x.shape[2]}; "
                f"resize or letterbox the images")

    def setup(self) -> None:
        # only features() is called: the backbone's classifier head is never built
        n = len(v1.MobileNetV1.prunable_layers())
        self.backbone = v1.MobileNetV1(num_classes=1, alpha=self.alpha,
                                       activation=self.activation, variant=self.variant,
                                       stem_stride=self.stem_stride,
                                       widths=self.resolved_widths()[:n],
                                       input_channels=self.input_channels, layers=self.layers)

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> tuple[jax.Array, ...]:
        self.check_images(x)
        feats = self.backbone.features(x, train)
        separable = self.head_conv == "separable"
        widths = self.resolved_widths()[len(v1.MobileNetV1.prunable_layers()):]
        outputs, route = [], None
        for i, (tap, c) in enumerate(zip(TAPS, self.neck_channels())):
            route, tip = NeckScale(tuple(widths[6 * i:6 * i + 6]), c, separable,
                                   self.neck_activation, self.layers,
                                   name=f"neck{i}")(feats[tap], route, train)
            outputs.append(self.layers.conv(len(ANCHOR_MASKS[i]) * self.outputs_per_anchor(), 1,
                                            use_bias=True, name=f"head{i}",
                                            bias_init=self._prior_bias)(tip, train=train))
        return tuple(outputs)

