"""Hook signatures through which compression transforms a layer's kernel and input.

Every convolution and dense layer of lightjax reads its kernel and its input through exactly one
place, so pruning (masks), binarization (sign + straight-through estimator + scale) and dtype
policies apply to every model without the models knowing about them.

A hook is called *inside* the layer's compact method, so it may create or read variables of any
collection in the layer's scope (e.g. ``layer.variable('masks', 'out', ...)``).

- ``KernelHook(layer, kernel) -> kernel``: ``kernel`` has the layer's stored layout (see each
  layer's docstring); the returned array must have the same shape.
- ``InputHook(layer, x) -> x``: ``x`` is the NHWC (or ``(..., features)`` for dense) input; the
  returned array must have the same shape.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import jax
from lightjax.errors import ValidationError

Array = jax.Array
KernelHook = Callable[[Any, Array], Array]
InputHook = Callable[[Any, Array], Array]


def chain(*hooks: KernelHook | None) -> KernelHook | None:
    """Compose hooks left to right, skipping ``None``; returns ``None`` when all are ``None``."""
    present: Sequence[KernelHook] = [h for h in hooks if h is not None]
    if not present:
        return None
    if len(present) == 1:
        return present[0]

    def chained(layer: Any, value: Array) -> Array:
        for hook in present:
            value = hook(layer, value)
        return value

    return chained


def apply(hook: KernelHook | None, layer: Any, value: Array) -> Array:
    """Apply ``hook`` (if any) and check it kept the shape, so errors name the layer."""
    if hook is None:
        return value
    out = hook(layer, value)
    if out.shape != value.shape:
        raise ValidationError(
            f"hook {getattr(hook, '__name__', hook)!r} changed the shape of layer "
            f"{'/'.join(layer.path) if hasattr(layer, 'path') else layer.name} from "
            f"{value.shape} to {out.shape}; hooks must preserve shapes")
    return out
