"""What every lightjax classifier shares: input checks, per-layer ``widths``, the head.

Each model lists its *prunable layers* — every convolution whose output channel count can be
chosen freely (not depthwise convs, which follow their input, and not the classifier) — by module
path, in order. ``widths`` overrides their output channels; compaction after pruning builds the
same model class with explicit ``widths``.
"""
from __future__ import annotations

import math
from typing import Sequence

import flax.linen as nn
import jax

from lightjax.layers import activations
from lightjax.layers.factory import LayerFactory
from lightjax.errors import InvalidTypeError, ValidationError


def check_alpha(model: str, value: float, name: str = "alpha") -> None:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or \
            not math.isfinite(value) or value <= 0:
        raise ValidationError(f"{model}: {name} must be a finite number > 0, got {value!r}")


def check_widths(model: str, names: Sequence[str], widths: Sequence[int] | None,
                 default: Sequence[int]) -> tuple[int, ...]:
    """Return the per-layer output channels: ``widths`` validated, else ``default``."""
    if widths is None:
        out = tuple(int(w) for w in default)
        bad = [f"{n}={w}" for n, w in zip(names, out) if w <= 0]
        if bad:
            raise ValidationError(f"{model}: these hyper-parameters leave layers with no channels: "
                             f"{', '.join(bad)}; use a larger width multiplier")
        return out
    if isinstance(widths, (str, bytes)) or not isinstance(widths, Sequence):
        raise InvalidTypeError(f"{model}: widths must be a sequence of {len(names)} positive integers, "
                        f"got {type(widths).__name__}")
    if len(widths) != len(names):
        raise ValidationError(f"{model}: widths has {len(widths)} entries but this model has "
                         f"{len(names)} prunable layers ({names[0]} ... {names[-1]})")
    for n, w in zip(names, widths):
        if isinstance(w, bool) or not isinstance(w, int) or w <= 0:
            raise ValidationError(f"{model}: widths must be positive integers; layer {n} got {w!r}")
    return tuple(widths)


def check_images(model: str, x: jax.Array, input_channels: int) -> None:
    """Images must be NHWC with ``input_channels`` channels and a non-empty spatial extent."""
    if x.ndim != 4:
        raise ValidationError(f"{model}: expected images of shape (batch, height, width, "
                         f"{input_channels}) (NHWC), got shape {tuple(x.shape)}")
    if x.shape[-1] != input_channels:
        raise ValidationError(f"{model}: expected {input_channels} input channels (last axis, NHWC), "
                         f"got shape {tuple(x.shape)}; set input_channels to match the data")
    if x.shape[1] < 1 or x.shape[2] < 1:
        raise ValidationError(f"{model}: image height and width must be >= 1, got shape "
                         f"{tuple(x.shape)}")


class ClassifierHead(nn.Module):
    """Global average pool -> dropout -> FC. (N, H, W, C) -> (N, num_classes)."""

    num_classes: int
    dropout: float = 0.0
    use_bias: bool = True
    layers: LayerFactory = LayerFactory()

    @nn.compact
    def __call__(self, x: jax.Array, train: bool) -> jax.Array:
        x = x.mean(axis=(1, 2))
        if self.dropout:
            x = nn.Dropout(self.dropout, deterministic=not train)(x)
        fc = self.layers.dense(self.num_classes, use_bias=self.use_bias, name="fc")
        return fc(x, train=train)


def check_common(model: str, num_classes: int, stem_stride: int,
                 activation: str | None) -> None:
    """Checks every classifier shares: class count, stem stride (1 or 2), activation name."""
    check_num_classes(model, num_classes)
    if isinstance(stem_stride, bool) or stem_stride not in (1, 2):
        raise ValidationError(f"{model}: stem_stride must be 1 or 2, got {stem_stride!r}")
    if activation is not None:
        activations.create(activation)  # unknown names fail here, before tracing


def check_num_classes(model: str, num_classes: int) -> None:
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ValidationError(f"{model}: num_classes must be a positive integer, got {num_classes!r}")


def check_choice(model: str, name: str, value: object, allowed: Sequence[str]) -> None:
    """``value`` of the hyper-parameter ``name`` must be one of ``allowed``."""
    if value not in allowed:
        raise ValidationError(f"{model}: unknown {name} {value!r}; allowed: {', '.join(allowed)}")
