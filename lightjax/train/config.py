"""Run configs: ``configs/*.py`` files with ``get_config(arg)`` plus command-line overrides.

``load('configs/mobilenet_v1_cifar100.py:rhs')`` imports the file and calls ``get_config('rhs')``.
A bare name (``'digits'``, ``'mobilenet_v1_cifar100:rhs'``) means ``./configs/<name>.py`` if the
current directory has one, else the config of that name bundled with lightjax (the checkout's
top-level ``configs/`` folder, installed as the package ``lightjax.configs``; see
:func:`bundled_names`). ``override(cfg, ['--config.model.alpha=0.5'])`` applies dotted overrides
with values parsed as Python literals and checked against the existing field types; a model
hyper-parameter the config leaves at the model's default (``--config.model.pointwise_bias=True``)
can be set too.
"""
from __future__ import annotations

import ast
import atexit
import contextlib
import importlib.resources
import importlib.util
import json
import os
import pathlib
from typing import Any, Callable, Sequence

import ml_collections
from lightjax.errors import ValidationError

DEFAULT = "digits"
#: The package the configs are installed as, and the checkout folder it maps to.
PACKAGE = "lightjax.configs"
_CHECKOUT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_FILES = contextlib.ExitStack()  # bundled files extracted from a zip install, if ever
atexit.register(_FILES.close)


def _bundled_folder(package: str, folder: str):
    """The folder holding ``package``'s files (a ``Traversable``), or ``None``.

    ``importlib.resources`` finds it in a wheel install and in an editable install from the
    checkout (setuptools maps ``lightjax.configs`` to ``configs/``); an editable install made
    before that mapping existed falls back to the checkout's ``folder``.
    """
    try:
        return importlib.resources.files(package)
    except ModuleNotFoundError:
        path = os.path.join(_CHECKOUT, folder)
        return pathlib.Path(path) if os.path.isdir(path) else None


def bundled_file_names(package: str, folder: str) -> tuple[str, ...]:
    """Names (without ``.py``) of the Python files bundled as ``package``, sorted."""
    root = _bundled_folder(package, folder)
    if root is None:
        return ()
    return tuple(sorted(entry.name[:-3] for entry in root.iterdir()
                        if entry.name.endswith(".py") and not entry.name.startswith("_")))


def bundled_file(package: str, folder: str, name: str) -> str | None:
    """The file system path of the bundled ``name``.py, or ``None``."""
    if not name or "/" in name or os.sep in name or name.startswith(("_", ".")):
        return None
    root = _bundled_folder(package, folder)
    if root is None:
        return None
    entry = root.joinpath(f"{name}.py")
    if not entry.is_file():
        return None
    return os.fspath(_FILES.enter_context(importlib.resources.as_file(entry)))


def bundled_names() -> tuple[str, ...]:
    """The configs that ship with lightjax, by the bare name ``--config NAME`` takes."""
    return bundled_file_names(PACKAGE, "configs")


def resolve_file(spec: str, package: str, folder: str, kind: str) -> tuple[str, str | None]:
    """(file path, argument) for ``FILE.py[:ARG]`` or ``NAME[:ARG]`` of a ``kind`` ('config',
    'sweep'): a name is ``./<folder>/NAME.py`` when that exists, else the one bundled as
    ``package``."""
    path, _, arg = spec.partition(":")
    if path.endswith(".py") or os.path.isfile(path):
        if not os.path.isfile(path):
            raise ValidationError(f"{kind} file {path} does not exist")
        return path, (arg or None)
    local = os.path.join(folder, path + ".py")
    found = local if os.path.isfile(local) else bundled_file(package, folder, path)
    if found is None:
        names = bundled_file_names(package, folder)
        raise ValidationError(
            f"{kind} {path!r} not found: give a FILE.py path, a file in ./{folder}/, or a bundled "
            f"{kind}: {', '.join(names) or '(none installed)'}")
    return found, (arg or None)


def resolve_path(spec: str) -> tuple[str, str | None]:
    """(file path, argument) for ``FILE.py[:ARG]`` or ``NAME[:ARG]``.

    A name is ``./configs/NAME.py`` when that exists, else the bundled config ``NAME``.
    """
    return resolve_file(spec, PACKAGE, "configs", "config")


def _one_line(err: BaseException) -> str:
    text = " ".join(str(err).split())
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


def load_module(path: str, what: str, module_name: str):
    """Import the user file ``path``; any exception becomes one ``ValidationError`` line."""
    module_spec = importlib.util.spec_from_file_location(module_name, path)
    if module_spec is None or module_spec.loader is None:
        raise ValidationError(f"{what} {path} is not a Python file")
    module = importlib.util.module_from_spec(module_spec)
    try:
        module_spec.loader.exec_module(module)
    except Exception as err:  # a broken user file: report it in one line
        raise ValidationError(f"{what} {path} could not be loaded: {_one_line(err)}") from err
    return module


def call_user(fn: Callable[..., Any], args: Sequence[Any], what: str, path: str) -> Any:
    """``fn(*args)``; an exception raised inside the user's function (``get_config``,
    ``get_sweep``) becomes one line naming the file and the exception."""
    try:
        return fn(*args)
    except Exception as err:
        raise ValidationError(f"{what} {path}: {getattr(fn, '__name__', 'function')} raised "
                              f"{_one_line(err)}") from err


def load(spec: str | None = None) -> ml_collections.ConfigDict:
    """The config ``FILE.py[:ARG]`` or ``NAME[:ARG]`` (default: the bundled ``digits``)."""
    path, arg = resolve_path(spec or DEFAULT)
    module = load_module(path, "config", "lightjax_user_config")
    if not callable(getattr(module, "get_config", None)):
        raise ValidationError(f"config {path} defines no get_config(arg) function")
    cfg = call_user(module.get_config, () if arg is None else (arg,), "config", path)
    if not isinstance(cfg, ml_collections.ConfigDict):
        raise ValidationError(f"config {path}: get_config must return an "
                              f"ml_collections.ConfigDict, got {type(cfg).__name__}")
    return cfg


def _parse(text: str) -> Any:
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def override(cfg: ml_collections.ConfigDict, args: Sequence[str]) -> ml_collections.ConfigDict:
    """Apply ``--config.a.b=value`` (or ``--config.a.b value``) overrides in place."""
    items = list(args)
    while items:
        item = items.pop(0)
        if not item.startswith("--config."):
            raise ValidationError(f"unrecognized argument {item!r} (overrides look like "
                             f"--config.train.epochs=10)")
        key, eq, value = item[len("--config."):].partition("=")
        if not eq:
            if not items:
                raise ValidationError(f"override --config.{key} has no value")
            value = items.pop(0)
        set_field(cfg, key, _parse(value), f"--config.{key}")
    return cfg


#: Model arguments a config never sets: the layer factory is built from ``train``, the input
#: channels come from the data.
_NOT_CONFIG_FIELDS = ("layers", "input_channels")


def model_hyperparameters(cfg: ml_collections.ConfigDict) -> tuple[str, ...]:
    """The hyper-parameters of ``cfg.model.name`` a config may set (``()`` if it names none)."""
    model = cfg.get("model")
    if not isinstance(model, ml_collections.ConfigDict) or not isinstance(model.get("name"), str):
        return ()
    from lightjax import models

    try:
        accepted = models.hyperparameters(model.name)
    except ValueError:  # an unknown model: reported when the model is built
        return ()
    return tuple(n for n in accepted if n not in _NOT_CONFIG_FIELDS)


def task_options(cfg: ml_collections.ConfigDict) -> tuple[str, ...]:
    """The options of ``cfg.task.name`` a config may set (``()`` without a named task)."""
    task = cfg.get("task")
    if not isinstance(task, ml_collections.ConfigDict) or not isinstance(task.get("name"), str):
        return ()
    from lightjax import tasks

    try:
        return tasks.options(task.name)
    except ValueError:  # an unknown task: reported when the task is built
        return ()


def data_options(cfg: ml_collections.ConfigDict) -> tuple[str, ...]:
    """The options of the built-in dataset ``cfg.data.name`` a config may set (e.g. the shapes'
    ``mode``, ``epoch_size``, ``seed``); ``()`` for other datasets."""
    section = cfg.get("data")
    if not isinstance(section, ml_collections.ConfigDict) or not isinstance(
            section.get("name"), str):
        return ()
    from lightjax import data

    return data.options(section.name)


def set_field(cfg: ml_collections.ConfigDict, key: str, new: Any, what: str | None = None) -> None:
    """Set the existing field ``key`` (dotted, e.g. ``'train.lr'``) to ``new``; ``ValueError`` for
    a field the config does not have (``what`` names the source in the message).

    ``model.<hyper-parameter>`` of the config's model may be set even when the config leaves it
    at the model's default (e.g. ``model.pointwise_bias`` on the digits config): the field is
    added, and the model checks its value when it is built. The same holds for
    ``task.<option>`` of a config's named task (e.g. ``task.score_threshold``) and
    ``data.<option>`` of a built-in dataset (e.g. ``data.mode`` of ``shapes``).
    """
    what = what or key
    parent = cfg
    *parents, leaf = key.split(".")
    for part in parents:
        if not isinstance(parent, ml_collections.ConfigDict) or part not in parent:
            raise ValidationError(f"{what}: no field {part!r} in the config")
        parent = parent[part]
    if not isinstance(parent, ml_collections.ConfigDict) or leaf not in parent:
        if parents == ["model"]:
            model_args, owner = model_hyperparameters(cfg), "a hyper-parameter of"
        else:
            options = {("task",): task_options, ("data",): data_options}.get(tuple(parents))
            model_args, owner = (options(cfg) if options else ()), "an option of"
        if leaf in model_args:
            parent[leaf] = tuple(new) if isinstance(new, list) else new
            return
        fields = ", ".join(sorted(parent.keys())) if isinstance(parent, ml_collections.ConfigDict) \
            else "(none)"
        extra = (f" (or {owner} {parent.get('name')}: {', '.join(model_args)})"
                 if model_args else "")
        raise ValidationError(f"{what}: no field {leaf!r} in the config; fields there: "
                              f"{fields}{extra}")
    old = parent[leaf]
    if isinstance(old, float) and isinstance(new, int) and not isinstance(new, bool):
        new = float(new)
    if isinstance(old, tuple) and isinstance(new, list):
        new = tuple(new)
    try:
        parent[leaf] = new
    except TypeError as err:
        raise ValidationError(f"{what}={new!r}: {err}") from None


def to_json(cfg: ml_collections.ConfigDict) -> str:
    return json.dumps(cfg.to_dict(), indent=2, sort_keys=True, default=list)


def from_json(text: str) -> ml_collections.ConfigDict:
    return ml_collections.ConfigDict(json.loads(text))
