"""Model registry: ``create(name, **kwargs)`` builds any registered model by name."""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, TypeVar

import flax.linen as nn
from lightjax.errors import InvalidTypeError, ValidationError

_MODELS: dict[str, type[nn.Module]] = {}
M = TypeVar("M", bound=type[nn.Module])


def register(name: str) -> Callable[[M], M]:
    """Class decorator: make a model available as ``create(name, ...)``."""
    def wrap(cls: M) -> M:
        if name in _MODELS:
            raise ValidationError(f"model {name!r} is already registered")
        _MODELS[name] = cls
        return cls
    return wrap


def names() -> tuple[str, ...]:
    return tuple(sorted(_MODELS))


def get(name: str) -> type[nn.Module]:
    if not isinstance(name, str):
        raise InvalidTypeError(f"model name must be a string, got {type(name).__name__}")
    if name not in _MODELS:
        raise ValidationError(f"unknown model {name!r}; available: {', '.join(names())}")
    return _MODELS[name]


def hyperparameters(name: str) -> tuple[str, ...]:
    """The keyword arguments ``create(name, ...)`` accepts."""
    return tuple(f.name for f in dataclasses.fields(get(name))
                 if f.init and f.name not in ("parent", "name"))


def create(name: str, **kwargs: Any) -> nn.Module:
    """Build model ``name`` with hyper-parameters ``kwargs`` (validated before any tracing)."""
    cls = get(name)
    allowed = hyperparameters(name)
    unknown = sorted(set(kwargs) - set(allowed))
    if unknown:
        raise InvalidTypeError(f"{name}: unknown argument(s) {', '.join(unknown)}; "
                        f"allowed: {', '.join(allowed)}")
    if kwargs.get("widths") is not None and isinstance(kwargs["widths"], list):
        kwargs["widths"] = tuple(kwargs["widths"])
    return cls(**kwargs)
