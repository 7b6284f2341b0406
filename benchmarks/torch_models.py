"""PyTorch reference models for the benchmarks, architecturally identical to lightjax's.

``MobileNetV1`` mirrors ``lightjax.models.mobilenet_v1`` (``variant='standard'``): 3x3 stem conv
(stride 2, or 1 for CIFAR-size inputs) + BN + ReLU, 13 depthwise-separable units
(dw3x3 + BN + ReLU, pw1x1 + BN + ReLU) with ``int(c * alpha)`` channels, global average pool,
Linear. Convs have no bias; padding is ``k // 2`` (lightjax's default ``'symmetric'``); BN has
eps 1e-5 and momentum 0.1 (flax's 0.9).

``load_lightjax_variables`` copies a lightjax model's ``params``/``batch_stats`` into it, so the
benchmark can check that both compute the same function, not merely have the same size.
"""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import torch
from torch import nn

STEM_CHANNELS = 32
#: (pointwise output channels, depthwise stride) of the 13 separable units (Howard et al., 2017).
UNITS = ((64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2),
         (512, 1), (512, 1), (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1))


class ConvBN(nn.Sequential):
    """conv (no bias) -> BatchNorm -> ReLU; submodules ``conv``, ``bn``, ``act``."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 groups: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride,
                              padding=kernel_size // 2, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(out_channels, eps=1e-5, momentum=0.1)
        self.act = nn.ReLU(inplace=True)


class SeparableUnit(nn.Sequential):
    """dw3x3 -> BN -> ReLU -> pw1x1 -> BN -> ReLU; submodules ``dw``, ``pw``."""

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.dw = ConvBN(in_channels, in_channels, 3, stride, groups=in_channels)
        self.pw = ConvBN(in_channels, out_channels, 1)


class MobileNetV1(nn.Module):
    """MobileNetV1 classifier on NCHW images (any memory format): (N, 3, H, W) -> logits."""

    def __init__(self, num_classes: int = 1000, alpha: float = 1.0, stem_stride: int = 2,
                 input_channels: int = 3, widths: tuple[int, ...] | None = None) -> None:
        super().__init__()
        # widths: stem + 13 pointwise output channels, as lightjax's ``widths`` (pruned models)
        widths = widths or tuple(int(c * alpha)
                                 for c in (STEM_CHANNELS,) + tuple(u[0] for u in UNITS))
        channels = widths[0]
        self.stem = ConvBN(input_channels, channels, 3, stem_stride)
        units = []
        for (_, stride), out in zip(UNITS, widths[1:]):
            units.append(SeparableUnit(channels, out, stride))
            channels = out
        self.units = nn.Sequential(*units)
        self.fc = nn.Linear(channels, num_classes)
        self._init_weights()

    def _init_weights(self) -> None:
        """He-normal (fan-out) convs, unit BN, as torchvision initializes MobileNets."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0.0, 0.01)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.units(self.stem(x))
        return self.fc(x.mean(dim=(2, 3)))


def parameter_count(model: nn.Module) -> int:
    """Trainable parameters (BN running statistics are buffers, not counted)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def _copy(dst: torch.Tensor, src: Any) -> None:
    src = torch.from_numpy(np.array(src, dtype=np.float32))
    if tuple(src.shape) != tuple(dst.shape):
        raise ValueError(f"shape mismatch: lightjax {tuple(src.shape)} vs torch "
                         f"{tuple(dst.shape)}")
    dst.copy_(src)


def _load_conv_bn(block: ConvBN, params: Mapping[str, Any], stats: Mapping[str, Any]) -> None:
    # lightjax stores every conv kernel as HWIO (k, k, Cin/groups, Cout); torch wants OIHW.
    _copy(block.conv.weight, np.asarray(params["conv"]["kernel"]).transpose(3, 2, 0, 1))
    _copy(block.bn.weight, params["bn"]["scale"])
    _copy(block.bn.bias, params["bn"]["bias"])
    _copy(block.bn.running_mean, stats["bn"]["mean"])
    _copy(block.bn.running_var, stats["bn"]["var"])


@torch.no_grad()
def load_lightjax_variables(model: MobileNetV1, variables: Mapping[str, Any]) -> None:
    """Copy lightjax ``mobilenet_v1`` variables (``params``, ``batch_stats``) into ``model``."""
    params, stats = variables["params"], variables["batch_stats"]
    _load_conv_bn(model.stem, params["stem"], stats["stem"])
    for i, unit in enumerate(model.units, start=1):
        for part in ("dw", "pw"):
            _load_conv_bn(getattr(unit, part), params[f"unit{i}"][part],
                          stats[f"unit{i}"][part])
    _copy(model.fc.weight, np.asarray(params["head"]["fc"]["kernel"]).T)
    _copy(model.fc.bias, params["head"]["fc"]["bias"])


class LeakyConvBN(nn.Sequential):
    """conv (no bias) -> BatchNorm -> LeakyReLU(0.1), the YOLOv3 neck's unit; a 3x3 one is split
    into depthwise + pointwise units when ``separable``."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int,
                 separable: bool = False) -> None:
        super().__init__()
        if separable and kernel_size > 1:
            self.dw = LeakyConvBN(in_channels, in_channels, kernel_size, False)
            self.dw.conv = nn.Conv2d(in_channels, in_channels, kernel_size,
                                     padding=kernel_size // 2, groups=in_channels, bias=False)
            self.pw = LeakyConvBN(in_channels, out_channels, 1)
            return
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2,
                              bias=False)
        self.bn = nn.BatchNorm2d(out_channels, eps=1e-5, momentum=0.1)
        self.act = nn.LeakyReLU(0.1, inplace=True)


class YOLOv3MobileNetV1(nn.Module):
    """``lightjax.models.yolov3_mobilenet_v1`` in PyTorch (NCHW): the MobileNetV1 backbone above
    tapped after units 4/6/13, per scale a detection block 1x1(c) 3x3(2c) 1x1(c) 3x3(2c) 1x1(c)
    (widths as lightjax's ``widths[14:]``), tip 3x3, a 1x1 output (with bias) of
    ``3 * (5 + num_classes)``, and the route 1x1 + nearest 2x upsample + concat."""

    TAPS = (13, 6, 4)

    def __init__(self, num_classes: int, alpha: float, neck_widths: tuple[int, ...],
                 transitions: tuple[int, int], separable: bool) -> None:
        super().__init__()
        self.backbone = MobileNetV1(num_classes=1, alpha=alpha)
        self.backbone.fc = nn.Identity()  # only the features are used
        taps = [int(UNITS[t - 1][0] * alpha) for t in self.TAPS]
        self.blocks, self.tips, self.heads, self.transitions = (nn.ModuleList() for _ in range(4))
        route = 0
        for i, tap in enumerate(taps):
            w = neck_widths[6 * i:6 * i + 6]
            channels = tap + (transitions[i - 1] if i else 0)
            if i:
                self.transitions.append(LeakyConvBN(route, transitions[i - 1], 1))
            layers = []
            for k, (width, kernel) in enumerate(zip(w[:5], (1, 3, 1, 3, 1))):
                layers.append(LeakyConvBN(channels, width, kernel, separable))
                channels = width
            self.blocks.append(nn.Sequential(*layers))
            self.tips.append(LeakyConvBN(channels, w[5], 3, separable))
            self.heads.append(nn.Conv2d(w[5], 3 * (5 + num_classes), 1))
            route = channels

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        feats = {}
        x = self.backbone.stem(x)
        for i, unit in enumerate(self.backbone.units, start=1):
            x = unit(x)
            feats[i] = x
        outputs, route = [], None
        for i, tap in enumerate(self.TAPS):
            x = feats[tap]
            if route is not None:
                up = nn.functional.interpolate(self.transitions[i - 1](route), scale_factor=2,
                                               mode="nearest")
                x = torch.cat([up, x], dim=1)
            route = self.blocks[i](x)
            outputs.append(self.heads[i](self.tips[i](route)))
        return tuple(outputs)
