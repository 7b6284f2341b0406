"""Sweep definitions: a base config and a list of members (field overrides).

A sweep file (``sweeps/NAME.py``) defines ``get_sweep(arg=None) -> Sweep``::

    from lightjax.sweep import Sweep, product, zip_axes

    def get_sweep(arg=None):
        return Sweep("digits", product({"model.alpha": [1.0, 0.5]},
                                       {"data.resolution": [32, 24]},
                                       {"train.seed": [0, 1]}))

Axes are dotted config fields; :func:`product` takes the Cartesian product of axis groups and
:func:`zip_axes` pairs equally long axes. Every field must exist in the base config, or be a
hyper-parameter of its model (checked by :func:`load` before anything runs).

``load('NAME[:ARG]')`` finds ``./sweeps/NAME.py`` if the current directory has one, else the sweep
of that name bundled with lightjax (the checkout's top-level ``sweeps/`` folder, installed as the
package ``lightjax.sweeps``; see :func:`bundled_names`); ``load('path/FILE.py[:ARG]')`` any file.
"""
from __future__ import annotations

import dataclasses
import itertools
import json
import os
from typing import Any, Mapping, Sequence

import ml_collections

from lightjax.train import config as config_lib
from lightjax.errors import ValidationError

Member = dict[str, Any]


def zip_axes(axes: Mapping[str, Sequence[Any]]) -> list[Member]:
    """Members pairing the i-th values of every axis (all axes equally long)."""
    lengths = {k: len(v) for k, v in axes.items()}
    if len(set(lengths.values())) > 1:
        raise ValidationError(f"zip_axes: axes have different lengths {lengths}")
    return [dict(zip(axes, values)) for values in zip(*axes.values())]


def product(*parts: Mapping[str, Sequence[Any]] | Sequence[Member]) -> list[Member]:
    """Cartesian product of parts; a dict part is one axis per key (itself a product), a list part
    is a list of members (e.g. from :func:`zip_axes`)."""
    lists = []
    for part in parts:
        if isinstance(part, Mapping):
            keys = list(part)
            lists.append([dict(zip(keys, vals)) for vals in itertools.product(*part.values())])
        else:
            lists.append(list(part))
    return [{k: v for m in combo for k, v in m.items()} for combo in itertools.product(*lists)]


def base_config(spec: str) -> ml_collections.ConfigDict:
    """A config spec (``'digits'``, ``'configs/x.py:arg'``) or a run directory's config, with a
    compression section (``prune``, ``binary``) it lacks, at its defaults."""
    run_config = os.path.join(spec, "config.json")
    if os.path.isdir(spec) and os.path.isfile(run_config):
        with open(run_config) as f:
            cfg = config_lib.from_json(f.read())
    else:
        cfg = config_lib.load(spec)
    from lightjax.train import compression

    for name in compression.SECTIONS:
        if name not in cfg:
            cfg[name] = compression.section_module(name).section()
    return cfg


@dataclasses.dataclass(frozen=True)
class Sweep:
    """``base``: a config spec (``'digits'``, ``'configs/x.py:arg'``); ``members``: overrides."""

    base: str
    members: tuple[Member, ...]

    def __init__(self, base: str, members: Sequence[Member]):
        object.__setattr__(self, "base", base)
        object.__setattr__(self, "members", tuple(dict(m) for m in members))

    def configs(self) -> list[ml_collections.ConfigDict]:
        """Each member's full config (validates every axis name).

        The base config gains the compression sections it lacks (``prune``, ``binary``: their
        defaults compress nothing); a base that is a run directory uses that run's ``config.json``.
        """
        base = base_config(self.base)
        out = []
        for i, member in enumerate(self.members):
            cfg = ml_collections.ConfigDict(base.to_dict())
            for key, value in member.items():
                config_lib.set_field(cfg, key, value,
                                     f"sweep member {i}: axis {key!r} is not a config field;")
            out.append(cfg)
        return out

    def to_json(self) -> str:
        return json.dumps({"base": self.base, "members": list(self.members)}, sort_keys=True,
                          default=list)


#: The package the sweeps are installed as (the checkout's top-level ``sweeps/`` folder).
PACKAGE = "lightjax.sweeps"


def bundled_names() -> tuple[str, ...]:
    """The sweeps that ship with lightjax, by the bare name ``lightjax sweep NAME`` takes."""
    return config_lib.bundled_file_names(PACKAGE, "sweeps")


def resolve_path(spec: str) -> tuple[str, str | None]:
    """(file path, argument) for ``FILE.py[:ARG]`` or ``NAME[:ARG]``.

    A name is ``./sweeps/NAME.py`` when that exists, else the bundled sweep ``NAME``.
    """
    return config_lib.resolve_file(spec, PACKAGE, "sweeps", "sweep")


def load(spec: str) -> Sweep:
    """Load ``FILE.py[:ARG]`` or ``NAME[:ARG]`` (``./sweeps/NAME.py`` or a bundled sweep) and
    validate it: every member's axes must be fields of the base config."""
    path, arg = resolve_path(spec)
    module = config_lib.load_module(path, "sweep", "lightjax_user_sweep")
    if not callable(getattr(module, "get_sweep", None)):
        raise ValidationError(f"sweep {path} defines no get_sweep(arg) function returning a Sweep")
    sweep = config_lib.call_user(module.get_sweep, (arg,), "sweep", path)
    if not isinstance(sweep, Sweep):
        raise ValidationError(f"sweep {path}: get_sweep must return a lightjax.sweep.Sweep, got "
                              f"{type(sweep).__name__}")
    if not sweep.members:
        raise ValidationError(f"sweep {path} defines an empty grid (no members)")
    sweep.configs()  # every axis must be a config field
    return sweep
