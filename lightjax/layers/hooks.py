"""Hook signatures through which compression transforms a layer's kernel and input.

Every convolution and dense layer of lightjax reads its kernel and its input through exactly one
place, so pruning (masks), binarization (sign + straight-through estimator + scale) and dtype
policies apply to every model without the models knowing about them.

A hook is called *inside* the layer's compact method, so it may create or read variables of any
collection in the layer's scope (e.g. ``layer.variable('masks', 'out', ...)``).

- ``KernelHook(layer, kernel, train) -> kernel``: ``kernel`` has the layer's stored layout (see
  each layer's docstring); the returned array must have the same shape.
- ``InputHook(layer, x, train) -> x``: ``x`` is the NHWC (or ``(..., features)`` for dense) input;
  the returned array must have the same shape.
- ``OutputHook(layer, y, x, train) -> y``: ``y`` is the layer's result before its bias, ``x`` the
  layer's input as it was given (before any input hook); the returned array must have ``y``'s
  shape (e.g. XNOR-Net's input scale ``K``, a factor per output position computed from ``x``).

``train`` is the ``train`` flag the layer was called with (``True`` inside a training step, in
every model), so a hook can behave differently in training (e.g. a stochastic binarization) and
in evaluation. Which layers get which hooks is chosen per layer with
:class:`lightjax.layers.rules.Rule`.
"""
from __future__ import annotations

import inspect
from typing import Any, Callable, Sequence

import jax
from lightjax.errors import InvalidTypeError, ValidationError

Array = jax.Array
KernelHook = Callable[[Any, Array, bool], Array]
InputHook = Callable[[Any, Array, bool], Array]
OutputHook = Callable[[Any, Array, Array, bool], Array]


def check(hook: Any, what: str, output: bool = False) -> None:
    """``InvalidTypeError`` unless ``hook`` is ``None`` or callable as
    ``hook(layer, value, train)`` (``output=True``: ``hook(layer, y, x, train)``).

    Callables whose signature Python cannot inspect (some builtins) are accepted as they are.
    """
    if hook is None:
        return
    args = "(layer, y, x, train)" if output else "(layer, value, train)"
    if not callable(hook):
        raise InvalidTypeError(f"{what} must be a callable hook{args} or None, got "
                               f"{type(hook).__name__}")
    try:
        signature = inspect.signature(hook)
    except (TypeError, ValueError):
        return
    try:
        signature.bind(*((None, None, None, False) if output else (None, None, False)))
    except TypeError:
        raise InvalidTypeError(
            f"{what} {getattr(hook, '__name__', hook)!r} must accept {args}; its "
            f"signature is {signature} (hooks take the train flag since rules were added)"
        ) from None


def chain(*hooks: Any) -> Any:
    """Compose hooks of one kind left to right, skipping ``None``; ``None`` when all are ``None``.

    Each hook transforms the value (argument 2) and receives the remaining arguments unchanged:
    ``(layer, value, train)`` for kernel and input hooks, ``(layer, y, x, train)`` for output
    hooks (every output hook sees the same layer input ``x``).
    """
    present: Sequence[Callable[..., Array]] = [h for h in hooks if h is not None]
    if not present:
        return None
    if len(present) == 1:
        return present[0]

    def chained(layer: Any, value: Array, *rest: Any) -> Array:
        for hook in present:
            value = hook(layer, value, *rest)
        return value

    return chained


def apply(hook: KernelHook | None, layer: Any, value: Array, train: bool = False,
          given: Array | None = None) -> Array:
    """Apply ``hook`` (if any) and check it kept the shape, so errors name the layer. ``given``:
    the layer's input, for an output hook (``hook(layer, value, given, train)``)."""
    if hook is None:
        return value
    out = hook(layer, value, train) if given is None else hook(layer, value, given, train)
    if out.shape != value.shape:
        raise ValidationError(
            f"hook {getattr(hook, '__name__', hook)!r} changed the shape of layer "
            f"{'/'.join(layer.path) if hasattr(layer, 'path') else layer.name} from "
            f"{value.shape} to {out.shape}; hooks must preserve shapes")
    return out
