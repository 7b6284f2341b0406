"""lightjax model families. ``create(name, **kwargs)`` builds any of them by name."""
from lightjax.models.registry import create, get, hyperparameters, names, register
from lightjax.models import mobilenet_v1, mobilenet_v2, shufflenet_v1, shufflenet_v2  # noqa: F401
from lightjax.models import mobilenet_v1_fcn, yolov3_mobilenet_v1  # noqa: F401

__all__ = ["create", "get", "hyperparameters", "names", "register"]
