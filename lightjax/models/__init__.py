"""lightjax model families. ``create(name, **kwargs)`` builds any of them by name."""
from lightjax.models.registry import create, get, hyperparameters, names, register
from lightjax.models import mobilenet_v1  # noqa: F401  (registers the model)

__all__ = ["create", "get", "hyperparameters", "names", "register"]
