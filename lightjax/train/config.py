"""Run configs: ``configs/*.py`` files with ``get_config(arg)`` plus command-line overrides.

``load('configs/mobilenet_v1_cifar100.py:rhs')`` imports the file and calls ``get_config('rhs')``;
a bare name (``'digits'``) means ``configs/<name>.py`` in the current directory or the lightjax
checkout. ``override(cfg, ['--config.model.alpha=0.5'])`` applies dotted overrides with values
parsed as Python literals and checked against the existing field types.
"""
from __future__ import annotations

import ast
import importlib.util
import json
import os
from typing import Any, Sequence

import ml_collections
from lightjax.errors import ValidationError

DEFAULT = "digits"
_REPO_CONFIGS = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), "configs")


def resolve_path(spec: str) -> tuple[str, str | None]:
    """(file path, argument) for ``FILE[:ARG]`` or ``NAME[:ARG]``."""
    path, _, arg = spec.partition(":")
    if not path.endswith(".py"):
        for folder in ("configs", _REPO_CONFIGS):
            candidate = os.path.join(folder, path + ".py")
            if os.path.isfile(candidate):
                path = candidate
                break
    if not os.path.isfile(path):
        raise ValidationError(f"config {spec!r} not found (expected a configs/*.py file or a name in "
                         f"{_REPO_CONFIGS})")
    return path, (arg or None)


def load(spec: str | None = None) -> ml_collections.ConfigDict:
    path, arg = resolve_path(spec or DEFAULT)
    module_spec = importlib.util.spec_from_file_location("lightjax_user_config", path)
    module = importlib.util.module_from_spec(module_spec)
    try:
        module_spec.loader.exec_module(module)
    except Exception as err:  # a broken user file: report it in one line
        raise ValidationError(f"config {path} could not be loaded: {type(err).__name__}: {err}") from None
    if not hasattr(module, "get_config"):
        raise ValidationError(f"config {path} defines no get_config(arg) function")
    cfg = module.get_config(arg) if arg is not None else module.get_config()
    if not isinstance(cfg, ml_collections.ConfigDict):
        raise ValidationError(f"config {path}: get_config must return an ml_collections.ConfigDict")
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


def set_field(cfg: ml_collections.ConfigDict, key: str, new: Any, what: str | None = None) -> None:
    """Set the existing field ``key`` (dotted, e.g. ``'train.lr'``) to ``new``; ``ValueError`` for
    a field the config does not have (``what`` names the source in the message)."""
    what = what or key
    parent = cfg
    *parents, leaf = key.split(".")
    for part in parents:
        if not isinstance(parent, ml_collections.ConfigDict) or part not in parent:
            raise ValidationError(f"{what}: no field {part!r} in the config")
        parent = parent[part]
    if not isinstance(parent, ml_collections.ConfigDict) or leaf not in parent:
        fields = ", ".join(sorted(parent.keys())) if isinstance(parent, ml_collections.ConfigDict) \
            else "(none)"
        raise ValidationError(f"{what}: no field {leaf!r} in the config; fields there: {fields}")
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
