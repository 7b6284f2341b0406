"""Task registry: ``create(name, num_classes=..., **options)``."""
from __future__ import annotations

import inspect
from typing import Any, Callable

from lightjax.errors import ValidationError
from lightjax.tasks.base import Task

_TASKS: dict[str, Callable[..., Task]] = {}


def register(name: str) -> Callable:
    def wrap(cls):
        _TASKS[name] = cls
        cls.name = name
        return cls
    return wrap


def names() -> tuple[str, ...]:
    _load_builtin()
    return tuple(sorted(_TASKS))


def _load_builtin() -> None:
    from lightjax.tasks import classification, detection, segmentation  # noqa: F401  (registers)


def options(name: str) -> tuple[str, ...]:
    """The options task ``name`` takes (its constructor's arguments but ``num_classes``)."""
    _load_builtin()
    if name not in _TASKS:
        raise ValidationError(f"unknown task {name!r}; allowed: {', '.join(sorted(_TASKS))}")
    return tuple(p for p in inspect.signature(_TASKS[name].__init__).parameters
                 if p not in ("self", "num_classes"))


def create(name: str, num_classes: int, **kwargs: Any) -> Task:
    """The task ``name`` for ``num_classes`` outputs; unknown names or options are errors."""
    allowed = options(name)
    unknown = sorted(set(kwargs) - set(allowed))
    if unknown:
        raise ValidationError(f"task {name!r} does not take {', '.join(unknown)}; options: "
                              f"{', '.join(allowed) or 'none'}")
    return _TASKS[name](num_classes, **kwargs)
