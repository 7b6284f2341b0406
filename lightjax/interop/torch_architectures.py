"""The PyTorch architectures lightjax imports weights from, layer by layer.

Each supported source (``torchvision:mobilenet_v2``, ``torchvision:shufflenet_v2_x1_0``,
``timm:mobilenetv1_100``, ...) is an :class:`Architecture`: the lightjax model and
hyper-parameters that compute exactly what the PyTorch model computes, the input normalization
its published weights expect, and the ordered list of its layers as :class:`TorchLayer` pairs
(PyTorch state-dict prefix, lightjax module path, kind). The list is generated from the same
block tables as the lightjax models, in the PyTorch model's forward order.

Exactness, checked by ``tests/interop/test_import_weights.py`` for every source on random
weights: PyTorch pads every k x k conv and the max pool with ``k // 2`` on both sides, which is
lightjax's default ``'symmetric'`` padding (no option needed); BatchNorm epsilon 1e-5 and
momentum 0.1 (flax convention 0.9) are lightjax's defaults too and are written into the
imported run's config.

Left out: timm's ``mobilenetv1_100h``, which adds a 1x1 conv + BN + ReLU6 head (1024 -> 1024
channels) after the last unit that lightjax's MobileNetV1 does not have. timm registers no other
MobileNetV1 (checked in timm 1.0.31: ``mobilenetv1_100``, ``mobilenetv1_100h``,
``mobilenetv1_125``).
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable

from lightjax.errors import ValidationError
from lightjax.models import mobilenet_v1, mobilenet_v2, shufflenet_v2

#: Layer kinds: a standard or pointwise conv (torch (O, I, kh, kw)), a depthwise conv (torch
#: (C, 1, kh, kw)), a BatchNorm (weight, bias, running_mean, running_var), a linear layer.
KINDS = ("conv", "depthwise", "bn", "linear")

#: torchvision's (and lightjax's imagenet2012) normalization, [0, 1] pixel space.
TORCHVISION_MEAN = (0.485, 0.456, 0.406)
TORCHVISION_STD = (0.229, 0.224, 0.225)
#: timm's MobileNetV1 weights (``pretrained_cfg`` of mobilenetv1_100 / _125): [-1, 1] inputs.
TIMM_MOBILENETV1_MEAN = (0.5, 0.5, 0.5)
TIMM_MOBILENETV1_STD = (0.5, 0.5, 0.5)


@dataclasses.dataclass(frozen=True)
class TorchLayer:
    """One PyTorch layer and the lightjax module it fills.

    Attributes:
      torch: state-dict prefix (``'features.1.conv.0.0'``; tensors ``<prefix>.weight`` ...).
      path: lightjax module path (``'block1/dw/conv'``).
      kind: one of :data:`KINDS`.
    """

    torch: str
    path: str
    kind: str


@dataclasses.dataclass(frozen=True)
class Architecture:
    """A PyTorch model lightjax reproduces exactly.

    Attributes:
      source: ``'torchvision:mobilenet_v2'`` etc.
      model: the lightjax model name; ``hyperparameters`` its arguments (``num_classes``
        included).
      mean / std: the input normalization the published weights were trained with.
      layers: every PyTorch layer in forward order with its lightjax module.
    """

    source: str
    model: str
    hyperparameters: dict[str, Any]
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    layers: tuple[TorchLayer, ...]


def _conv_bn(torch_conv: str, torch_bn: str, path: str, depthwise: bool = False
             ) -> list[TorchLayer]:
    return [TorchLayer(torch_conv, f"{path}/conv", "depthwise" if depthwise else "conv"),
            TorchLayer(torch_bn, f"{path}/bn", "bn")]


def _mobilenet_v2_layers() -> list[TorchLayer]:
    """torchvision ``MobileNetV2``: ``features.0`` stem, ``features.1..17`` inverted residuals
    (``conv.0`` expand ConvBNReLU when t != 1, then the dw ConvBNReLU, the project conv and its
    BN), ``features.18`` the 1x1 head conv, ``classifier.1`` the linear layer."""
    layers = _conv_bn("features.0.0", "features.0.1", "stem")
    for i, (t, _, _) in enumerate(mobilenet_v2.BLOCKS, start=1):
        p, block = f"features.{i}.conv", f"block{i}"
        j = 0
        if t != 1:
            layers += _conv_bn(f"{p}.0.0", f"{p}.0.1", f"{block}/expand")
            j = 1
        layers += _conv_bn(f"{p}.{j}.0", f"{p}.{j}.1", f"{block}/dw", depthwise=True)
        layers += _conv_bn(f"{p}.{j + 1}", f"{p}.{j + 2}", f"{block}/project")
    n = len(mobilenet_v2.BLOCKS) + 1
    layers += _conv_bn(f"features.{n}.0", f"features.{n}.1", "head_conv")
    return layers + [TorchLayer("classifier.1", "head/fc", "linear")]


def _shufflenet_v2_layers() -> list[TorchLayer]:
    """torchvision ``ShuffleNetV2``: ``conv1``, ``stage2..4.<i>`` (``branch1`` = dw, BN, pw,
    BN in stride-2 units; ``branch2`` = pw, BN, -, dw, BN, pw, BN), ``conv5``, ``fc``."""
    layers = _conv_bn("conv1.0", "conv1.1", "stem")
    for stage, repeats in zip(shufflenet_v2.STAGES, shufflenet_v2.REPEATS):
        for i in range(repeats):
            p, unit = f"stage{stage}.{i}", f"stage{stage}_unit{i + 1}"
            if i == 0:
                layers += _conv_bn(f"{p}.branch1.0", f"{p}.branch1.1", f"{unit}/branch1_dw",
                                   depthwise=True)
                layers += _conv_bn(f"{p}.branch1.2", f"{p}.branch1.3", f"{unit}/branch1_pw")
            layers += _conv_bn(f"{p}.branch2.0", f"{p}.branch2.1", f"{unit}/branch2_pw1")
            layers += _conv_bn(f"{p}.branch2.3", f"{p}.branch2.4", f"{unit}/branch2_dw",
                               depthwise=True)
            layers += _conv_bn(f"{p}.branch2.5", f"{p}.branch2.6", f"{unit}/branch2_pw2")
    layers += _conv_bn("conv5.0", "conv5.1", "conv5")
    return layers + [TorchLayer("fc", "head/fc", "linear")]


#: timm's MobileNetV1 stages (``dsa_r1_k3_s1_c64``, ``dsa_r2_k3_s2_c128``, ... ): units per stage.
TIMM_MOBILENETV1_STAGES = (1, 2, 2, 6, 2)


def _timm_mobilenet_v1_layers() -> list[TorchLayer]:
    """timm ``EfficientNet`` built by ``_gen_mobilenet_v1``: ``conv_stem``/``bn1``, then
    ``blocks.<stage>.<i>`` DepthwiseSeparableConv (``conv_dw``, ``bn1``, ``conv_pw``, ``bn2``;
    no skip), ``classifier``."""
    layers = [TorchLayer("conv_stem", "stem/conv", "conv"), TorchLayer("bn1", "stem/bn", "bn")]
    unit = 0
    for stage, count in enumerate(TIMM_MOBILENETV1_STAGES):
        for i in range(count):
            unit += 1
            p = f"blocks.{stage}.{i}"
            layers += _conv_bn(f"{p}.conv_dw", f"{p}.bn1", f"unit{unit}/dw", depthwise=True)
            layers += _conv_bn(f"{p}.conv_pw", f"{p}.bn2", f"unit{unit}/pw")
    assert unit == len(mobilenet_v1.UNITS)
    return layers + [TorchLayer("classifier", "head/fc", "linear")]


def _timm_round_channels(channels: int, multiplier: float) -> int:
    """timm's ``round_channels`` (``make_divisible(c * m, 8, round_limit=0.9)``)."""
    value = channels * multiplier
    new = max(8, int(value + 4) // 8 * 8)
    return new + 8 if new < 0.9 * value else new


def _timm_mobilenet_v1(name: str, multiplier: float) -> Architecture:
    # lightjax's MobileNetV1 uses int(c * alpha): exact only where timm's rounding agrees
    chans = [mobilenet_v1.STEM_CHANNELS] + [c for c, _ in mobilenet_v1.UNITS]
    assert all(_timm_round_channels(c, multiplier) == int(c * multiplier) for c in chans), name
    return Architecture(
        f"timm:{name}", mobilenet_v1.NAME,
        dict(num_classes=1000, alpha=multiplier, activation="relu6", variant="standard",
             stem_stride=2, dropout=0.0),
        TIMM_MOBILENETV1_MEAN, TIMM_MOBILENETV1_STD, tuple(_timm_mobilenet_v1_layers()))


def _torchvision_mobilenet_v2(width_mult: float) -> Architecture:
    return Architecture(
        "torchvision:mobilenet_v2", mobilenet_v2.NAME,
        dict(num_classes=1000, alpha=width_mult, activation="relu6", stem_stride=2,
             dropout=0.2),
        TORCHVISION_MEAN, TORCHVISION_STD, tuple(_mobilenet_v2_layers()))


def _torchvision_shufflenet_v2(scale: float) -> Architecture:
    suffix = str(scale).replace(".", "_")
    return Architecture(
        f"torchvision:shufflenet_v2_x{suffix}", shufflenet_v2.NAME,
        dict(num_classes=1000, scale=scale, activation="relu", stem_stride=2),
        TORCHVISION_MEAN, TORCHVISION_STD, tuple(_shufflenet_v2_layers()))


#: Supported sources -> their architecture (a width multiplier argument where one applies).
_BUILDERS: dict[str, Callable[..., Architecture]] = {
    "torchvision:mobilenet_v2": _torchvision_mobilenet_v2,
    **{f"torchvision:shufflenet_v2_x{str(s).replace('.', '_')}":
       (lambda s=s: _torchvision_shufflenet_v2(s)) for s in shufflenet_v2.SCALES},
    "timm:mobilenetv1_100": lambda: _timm_mobilenet_v1("mobilenetv1_100", 1.0),
    "timm:mobilenetv1_125": lambda: _timm_mobilenet_v1("mobilenetv1_125", 1.25),
}
#: Sources that take ``width_mult`` (torchvision's ``mobilenet_v2(width_mult=...)``).
WIDTH_MULT_SOURCES = ("torchvision:mobilenet_v2",)


def sources() -> tuple[str, ...]:
    """The names :func:`get` accepts."""
    return tuple(_BUILDERS)


def get(source: str, width_mult: float | None = None) -> Architecture:
    """The architecture of ``source``; ``width_mult`` (torchvision ``mobilenet_v2`` only,
    default 1.0, the only width torchvision publishes weights for) is its width multiplier."""
    if not isinstance(source, str) or source not in _BUILDERS:
        hint = (" (timm's mobilenetv1_100h has a 1x1 head conv lightjax's MobileNetV1 lacks)"
                if source == "timm:mobilenetv1_100h" else "")
        raise ValidationError(f"unknown weight source {source!r}{hint}; allowed: "
                              f"{', '.join(_BUILDERS)}")
    if source in WIDTH_MULT_SOURCES:
        value = 1.0 if width_mult is None else width_mult
        if (isinstance(value, bool) or not isinstance(value, (int, float))
                or not math.isfinite(value) or value <= 0):
            raise ValidationError(f"width_mult must be a finite number > 0, got {width_mult!r}")
        return _BUILDERS[source](float(value))
    if width_mult is not None:
        raise ValidationError(f"width_mult applies to {', '.join(WIDTH_MULT_SOURCES)} only, not "
                              f"{source}; the width is part of the name")
    return _BUILDERS[source]()
