"""MobileNetV1-FCN: per-pixel segmentation, a MobileNetV1 backbone and an FCN-8s deconv decoder.

The decoder follows FCN-8s (Long, Shelhamer & Darrell, 2015): the coarsest features are upsampled
by learned transposed convolutions ("deconvolutions") and fused with 1x1 projections of the
stride-16 and stride-8 features, and a last transposed convolution upsamples to the input
resolution. It is the DECONV segmentation network that staged residual binarization was trained
on (Cityscapes). (N, H, W, 3) images -> (N, H, W, num_classes) per-pixel logits, NHWC.

With ``stem_stride=2`` (default; strides halve with ``stem_stride=1``)::

  backbone  MobileNetV1 features (``backbone/stem`` ... ``backbone/unit13``; no pool, no FC)
            unit5: stride 8, 256a ch    unit11: stride 16, 512a ch    unit13: stride 32, 1024a ch
  decoder/proj   1x1 conv + BN + act on unit13                       stride 32, D ch
  decoder/up1    transposed 4x4 conv, x2, + BN (linear)              stride 16, D ch
  decoder/skip1  1x1 conv + BN (linear) on unit11                    stride 16, D ch
  decoder/fuse1  act(up1 + skip1)                                    stride 16
  decoder/up2    transposed 4x4 conv, x2, + BN (linear)              stride 8,  D ch
  decoder/skip2  1x1 conv + BN (linear) on unit5                     stride 8,  D ch
  decoder/fuse2  act(up2 + skip2)                                    stride 8
  head/classifier  transposed (2f)x(2f) conv, x f, with bias         stride 1,  num_classes ch

``D = decoder_channels`` (default ``make_divisible(128 * alpha, 8)``), ``f = 4 * stem_stride``
(8, or 4 for ``stem_stride=1``).

``skips`` (default 2, the FCN-8s layout above) adds finer levels in the same pattern, as FCN's
own "FCN-4s/2s" extension of the skip architecture: ``skips=3`` adds ``decoder/up3`` (x2) +
``decoder/skip3`` (1x1 on ``unit3``, stride 4) and a x4 classifier; ``skips=4`` adds
``decoder/up4`` + ``decoder/skip4`` (``unit1``, stride 2) and a x2 classifier. Their widths
default to ``min(D, channels of the tap)``. A x8 classifier paints each stride-8 cell with one
16x16 kernel, too coarse for shapes a few pixels wide; the finer levels let the decoder draw
their outlines (the shapes demo uses ``skips=3``).

Every transposed conv has kernel ``2 * stride`` and PyTorch's
padding ``(k - s) // 2``, so it maps H x W exactly to (s H) x (s W) (FCN's ``upscore`` layers plus
its crop). ``act`` is ``activation`` (default ``'relu'``; the backbone's default for ``variant``).

Departures from the FCN-8s paper, and why:

- The decoder fuses ``D``-channel *features*, not ``num_classes``-channel score maps; only the
  classifier produces class scores. With few classes FCN's score maps are very narrow, and a
  binarized decoder needs the width. Both branches of an add are batch-normalized, and the
  activation comes after the add (as in residual networks), so each transposed conv sees
  activated features like every backbone conv.
- The upsampling kernels use the lightjax conv initializer (He, fan-out), not FCN's fixed
  bilinear initialization; the k = 2s kernels can learn it.
- Height and width must be multiples of the output stride (32; 16 with ``stem_stride=1``) so the
  skip features line up without FCN's crop layers; other sizes raise ``ValidationError``.

**The last layer** is ``head/classifier`` (:data:`LAST_LAYER`): the final transposed conv, the
only layer with a bias in the decoder and the one that stays full precision by default when the
network is binarized. :data:`TRANSPOSED_LAYERS` names the three deconv layers (the classifier is
the last DECONV layer). Every decoder layer is made by ``layers`` (the :class:`LayerFactory`), so
compression hooks and per-layer rules reach them; module paths read ``backbone/unit5/pw/conv``,
``decoder/up1/conv``, ``decoder/skip1/conv``, ``head/classifier``.

Pruning: the 14 backbone layers and the 5 decoder layers are prunable (:meth:`prunable_layers`);
the adds tie ``decoder/up1`` to ``decoder/skip1`` and ``decoder/up2`` to ``decoder/skip2`` (their
widths must be equal). Trace it at a valid size (:meth:`MobileNetV1FCN.min_input_size`):
``groups.derive(model, (1, 32, 32, 3))`` and ``compact.compact(..., input_shape=(1, 32, 32, 3))``
(16 with ``stem_stride=1``); their 8x8 defaults are too small for this model.
"""
from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax

from lightjax.errors import InvalidTypeError, ValidationError
from lightjax.layers.conv_bn import ConvBN
from lightjax.layers.factory import LayerFactory
from lightjax.layers.separable import VARIANTS
from lightjax.models import base
from lightjax.models import mobilenet_v1 as v1
from lightjax.models.channels import make_divisible
from lightjax.models.registry import register

NAME = "mobilenet_v1_fcn"
#: Default decoder width before ``alpha``: ``make_divisible(128 * alpha, 8)``.
DECODER_CHANNELS = 128
#: Backbone features the decoder reads: stride 8, 16 and 32 with ``stem_stride=2``.
TAP8, TAP16, TAP32 = "unit5", "unit11", "unit13"
#: Skip taps from coarse to fine (stride 16, 8, 4, 2 with ``stem_stride=2``): ``skips=n`` uses
#: the first n (2 = FCN-8s).
SKIP_TAPS = (TAP16, TAP8, "unit3", "unit1")
#: Allowed ``skips``: 2 (FCN-8s, stride-8 classifier input), 3 (stride 4) or 4 (stride 2).
SKIP_CHOICES = (2, 3, 4)
#: The final transposed conv producing the logits (full precision by default when binarized).
LAST_LAYER = "head/classifier"


def decoder_layers(skips: int = 2) -> tuple[str, ...]:
    """The decoder's prunable layers (module paths), in order: ``decoder/proj``, then
    ``decoder/up{i}``, ``decoder/skip{i}`` for i = 1 .. ``skips``."""
    return ("decoder/proj",) + tuple(f"decoder/{kind}{i}" for i in range(1, skips + 1)
                                     for kind in ("up", "skip"))


def tied_layers(skips: int = 2) -> tuple[tuple[str, str], ...]:
    """Layers added together (their widths must be equal: one channel group each)."""
    return tuple((f"decoder/up{i}", f"decoder/skip{i}") for i in range(1, skips + 1))


def transposed_layers(skips: int = 2) -> tuple[str, ...]:
    """Module paths of the transposed convolutions, in order (the classifier is the last one)."""
    return tuple(f"decoder/up{i}/conv" for i in range(1, skips + 1)) + (LAST_LAYER,)


#: The FCN-8s decoder (``skips=2``): prunable layers, tied pairs, transposed convs.
DECODER_LAYERS = decoder_layers()
TIED = tied_layers()
TRANSPOSED_LAYERS = transposed_layers()
#: Kernel size and stride of the two x2 decoder upsamplings.
UP_KERNEL, UP_STRIDE = 4, 2


class DeconvBN(nn.Module):
    """Transposed conv (``kernel_size``, ``strides``, no bias) -> BatchNorm (linear output).

    (N, H, W, Cin) -> (N, strides * H, strides * W, features) for ``kernel_size >= strides``.
    Submodules ``conv`` and ``bn``, like :class:`lightjax.layers.conv_bn.ConvBN`, so parameter
    paths read ``<block>/conv/kernel``, ``<block>/bn/scale``.
    """

    features: int
    kernel_size: int = UP_KERNEL
    strides: int = UP_STRIDE
    layers: LayerFactory = LayerFactory()

    @nn.compact
    def __call__(self, x: jax.Array, train: bool) -> jax.Array:
        y = self.layers.conv_transpose(self.features, self.kernel_size, self.strides,
                                       use_bias=False, name="conv")(x, train=train)
        return self.layers.norm(train, name="bn")(y)


class FCNDecoder(nn.Module):
    """FCN fusion of coarse-to-fine features (NHWC) into one map of ``widths[-2]`` channels.

    ``feats[0]`` is the coarsest map (stride s), ``feats[i]`` the i-th skip (stride s / 2^i).
    Each level: ``up{i}`` (transposed 4x4 conv, x2, + BN) + ``skip{i}`` (1x1 conv + BN on
    ``feats[i]``), then ``activation`` (``fuse{i}``).

    Attributes:
      widths: output channels of ``proj``, then ``up{i}``, ``skip{i}`` per level (``up{i} ==
        skip{i}``: they are added).
      activation: activation after ``proj`` and after each add.
      layers: the layer factory.
    """

    widths: tuple[int, ...]
    activation: str = "relu"
    layers: LayerFactory = LayerFactory()

    @nn.compact
    def __call__(self, *feats: jax.Array, train: bool) -> jax.Array:
        """feats: (N, h, w, *), (N, 2h, 2w, *), ... -> (N, 2^k h, 2^k w, widths[-2])
        for k = len(feats) - 1 skips."""
        x = ConvBN(self.widths[0], 1, activation=self.activation, layers=self.layers,
                   name="proj")(feats[0], train)
        for i, skip in enumerate(feats[1:], start=1):
            up, lateral = self.widths[2 * i - 1], self.widths[2 * i]
            x = (DeconvBN(up, layers=self.layers, name=f"up{i}")(x, train)
                 + ConvBN(lateral, 1, activation=None, layers=self.layers,
                          name=f"skip{i}")(skip, train))
            x = self.layers.act(self.activation, module_name=f"fuse{i}")(x)
        return x


class SegmentationHead(nn.Module):
    """The classifier: a transposed conv, kernel ``2 * factor``, stride ``factor``, with bias.

    (N, h, w, C) -> (N, factor * h, factor * w, num_classes) logits.
    """

    num_classes: int
    factor: int = 8
    layers: LayerFactory = LayerFactory()

    @nn.compact
    def __call__(self, x: jax.Array, train: bool) -> jax.Array:
        return self.layers.conv_transpose(self.num_classes, 2 * self.factor, self.factor,
                                          use_bias=True, name="classifier")(x, train=train)


@register(NAME)
class MobileNetV1FCN(nn.Module):
    """MobileNetV1 + FCN-8s deconv decoder. ``__call__(x, train)``: (N, H, W, C) -> (N, H, W, K).

    Attributes:
      num_classes: classes K (logits per pixel).
      alpha: width multiplier (> 0) of the backbone (``int(c * alpha)``) and default decoder.
      activation: activation name; ``None`` means the backbone's default for ``variant``
        (``'relu'`` / ``'relu_hswish'``) and ``'relu'`` in the decoder.
      variant: backbone variant, ``'standard'`` or ``'rhs'`` (see ``mobilenet_v1``).
      stem_stride: 2 (output stride 32) or 1 (output stride 16, for tiny inputs).
      decoder_channels: decoder width D (positive int); ``None``: ``make_divisible(128*alpha)``.
      skips: skip levels of the decoder: 2 (FCN-8s: stride 16 and 8, a x8 classifier), 3 (adds
        ``unit3``, stride 4, a x4 classifier) or 4 (adds ``unit1``, stride 2, a x2 classifier).
        Levels 3 and 4 default to ``min(D, channels of their tap)``.
      widths: explicit output channels of the 14 + 1 + 2 * skips prunable layers
        (:meth:`prunable_layers` order: 14 backbone layers, then ``decoder/proj, up1, skip1,
        up2, skip2, ...``); overrides ``alpha`` and ``decoder_channels``.
      input_channels: channels of the input images.
      layers: the :class:`LayerFactory` (dtype, depthwise implementation, compression hooks).
    """

    num_classes: int = 21
    alpha: float = 1.0
    activation: str | None = None
    variant: str = "standard"
    stem_stride: int = 2
    decoder_channels: int | None = None
    skips: int = 2
    widths: tuple[int, ...] | None = None
    input_channels: int = 3
    layers: LayerFactory = LayerFactory()

    def __post_init__(self) -> None:
        base.check_common(NAME, self.num_classes, self.stem_stride, self.activation)
        base.check_alpha(NAME, self.alpha)
        base.check_choice(NAME, "variant", self.variant, VARIANTS)
        if isinstance(self.skips, bool) or self.skips not in SKIP_CHOICES:
            raise ValidationError(f"{NAME}: skips must be one of "
                                  f"{', '.join(map(str, SKIP_CHOICES))}, got {self.skips!r}")
        dc = self.decoder_channels
        if dc is not None and (isinstance(dc, bool) or not isinstance(dc, int)):
            raise InvalidTypeError(f"{NAME}: decoder_channels must be a positive integer or None, "
                                   f"got {dc!r}")
        if dc is not None and dc < 1:
            raise ValidationError(f"{NAME}: decoder_channels must be a positive integer or None, "
                                  f"got {dc!r}")
        self.resolved_widths()
        super().__post_init__()

    # --- structure ------------------------------------------------------------------------------
    def prunable_layers(self) -> tuple[str, ...]:
        """Module paths of the layers whose widths ``widths`` sets (the backbone's 14, then the
        decoder's 1 + 2 * ``skips``)."""
        return (tuple(f"backbone/{n}" for n in v1.MobileNetV1.prunable_layers())
                + decoder_layers(self.skips))

    def skip_taps(self) -> tuple[str, ...]:
        """The backbone units the decoder's skips read, coarse to fine."""
        return SKIP_TAPS[:self.skips]

    def resolved_widths(self) -> tuple[int, ...]:
        """The output channel counts (validated; equal widths where layers are added)."""
        d = self.decoder_channels
        if d is None:
            d = make_divisible(DECODER_CHANNELS * self.alpha, 8)
        backbone = [int(v1.STEM_CHANNELS * self.alpha)] + [int(c * self.alpha) for c, _ in v1.UNITS]
        decoder = [d]
        for level, tap in enumerate(self.skip_taps(), start=1):
            width = d if level <= 2 else min(d, backbone[int(tap[len("unit"):])])
            decoder += [width, width]
        names = self.prunable_layers()
        widths = base.check_widths(NAME, names, self.widths, backbone + decoder)
        by_name = dict(zip(names, widths))
        for a, b in tied_layers(self.skips):
            if by_name[a] != by_name[b]:
                raise ValidationError(f"{NAME}: {a} and {b} are added, so their widths must be "
                                      f"equal; widths gives {a}={by_name[a]} and {b}={by_name[b]}")
        return widths

    def output_stride(self) -> int:
        """Stride of the coarsest feature map (unit13): 32, or 16 with ``stem_stride=1``.
        Input height and width must be multiples of it."""
        return 16 * self.stem_stride

    def min_input_size(self) -> int:
        """Smallest valid image height/width in pixels (= :meth:`output_stride`); tools that trace
        the model on a tiny input (``groups.derive``, ``compact.compact``) should use it."""
        return self.output_stride()

    def upsample_factor(self) -> int:
        """Stride of the classifier's transposed conv: that of the finest skip tap (with
        ``stem_stride=2``: 8, 4 or 2 for ``skips`` 2, 3, 4; half that with ``stem_stride=1``)."""
        return self.output_stride() // UP_STRIDE ** self.skips

    def layer_info(self) -> tuple[dict[str, Any], ...]:
        """The decoder and head layers: ``name`` (module path), ``kind`` (``'pointwise'`` or
        ``'transposed'``), ``kernel``, ``stride`` (upsampling factor for transposed convs),
        ``input`` (what it reads), ``input_stride``/``output_stride`` (pixels), ``channels``."""
        stride = self.output_stride()
        w = dict(zip(self.prunable_layers(), self.resolved_widths()))
        rows = [("decoder/proj/conv", "pointwise", 1, 1, f"backbone {TAP32}", stride, stride)]
        source = "decoder/proj"
        for i, tap in enumerate(self.skip_taps(), start=1):
            rows += [(f"decoder/up{i}/conv", "transposed", UP_KERNEL, UP_STRIDE, source, stride,
                      stride // UP_STRIDE),
                     (f"decoder/skip{i}/conv", "pointwise", 1, 1, f"backbone {tap}",
                      stride // UP_STRIDE, stride // UP_STRIDE)]
            stride //= UP_STRIDE
            source = f"decoder/fuse{i}"
        rows.append((LAST_LAYER, "transposed", 2 * stride, stride, source, stride, 1))
        return tuple(dict(name=n, kind=k, kernel=kk, stride=st, input=src, input_stride=si,
                          output_stride=so,
                          channels=self.num_classes if n == LAST_LAYER else w[n[:-len("/conv")]])
                     for n, k, kk, st, src, si, so in rows)

    # --- forward --------------------------------------------------------------------------------
    def check_images(self, x: jax.Array) -> None:
        """NHWC, ``input_channels`` channels, height and width multiples of the output stride."""
        base.check_images(NAME, x, self.input_channels)
        s = self.output_stride()
        if x.shape[1] % s or x.shape[2] % s:
            raise ValidationError(
                f"{NAME}: image height and width must be multiples of {s} (the output stride "
                f"with stem_stride={self.stem_stride}), got {x.shape[1]}x{x.shape[2]}; resize or "
                f"pad the images" + ("" if self.stem_stride == 1 else
                                     ", or use stem_stride=1 (multiples of 16)"))

    def setup(self) -> None:
        widths = self.resolved_widths()
        n = len(v1.MobileNetV1.prunable_layers())
        # only features() is called: the backbone's classifier head is never built
        self.backbone = v1.MobileNetV1(num_classes=1, alpha=self.alpha,
                                       activation=self.activation, variant=self.variant,
                                       stem_stride=self.stem_stride, widths=widths[:n],
                                       input_channels=self.input_channels, layers=self.layers)
        self.decoder = FCNDecoder(widths[n:], self.activation or "relu", self.layers)
        self.head = SegmentationHead(self.num_classes, self.upsample_factor(), self.layers)

    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        self.check_images(x)
        feats = self.backbone.features(x, train)
        y = self.decoder(feats[TAP32], *(feats[t] for t in self.skip_taps()), train=train)
        return self.head(y, train)
