"""lightjax: lightweight CNNs (MobileNet, ShuffleNet) and their compression in JAX/Flax.

``import lightjax`` is cheap: it imports neither jax nor flax. The sub-packages load on first
use (PEP 562), so ``lightjax.models.create(...)``, ``lightjax.cost.count(...)`` and
``lightjax.prune`` work after a plain ``import lightjax``:

- ``models`` (``create``, ``names``, ``hyperparameters``), ``layers``, ``cost`` (``count``);
- ``data`` (``build``), ``tasks``, ``train``, ``prune``, ``binary``, ``detect``, ``sweep``;
- ``errors`` (``ValidationError``), ``launch`` (multi-host launchers), ``interop``;
- ``load_run(workdir) -> (config, experiment, state)``: a run directory's latest checkpoint
  (:func:`lightjax.train.run.load_run`).
"""
import importlib as _importlib
from typing import Any as _Any

__version__ = "0.1.0"

#: Sub-packages and modules imported on first attribute access.
_SUBMODULES = ("binary", "cost", "data", "detect", "errors", "interop", "launch", "layers",
               "models", "prune", "sweep", "tasks", "train")
#: Functions imported on first access: name -> (module, attribute).
_FUNCTIONS = {"load_run": ("lightjax.train.run", "load_run")}

__all__ = ["__version__", *_SUBMODULES, *_FUNCTIONS]


def __getattr__(name: str) -> _Any:
    if name in _SUBMODULES:
        return _importlib.import_module(f"{__name__}.{name}")
    if name in _FUNCTIONS:
        module, attribute = _FUNCTIONS[name]
        value = getattr(_importlib.import_module(module), attribute)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'lightjax' has no attribute {name!r}; available: "
                         f"{', '.join(sorted([*_SUBMODULES, *_FUNCTIONS]))}")


def __dir__() -> list[str]:
    return sorted({n for n in globals() if not n.startswith("_") or n.startswith("__")} |
                  set(__all__))
