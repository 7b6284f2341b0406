"""The compression plug-in interface: what pruning (and binarization) add to a training run.

A plug-in names four things, and the train step, the loop and the sweep groups know nothing else
about it:

1. **state**: :meth:`Compression.init` gives its extra train state (a pytree, e.g. pruning masks
   ``{group: (channels,) 0/1}``), kept in ``TrainState.compression[plugin.name]`` — checkpointed,
   sharded and vmapped over sweep members like the parameters;
2. **model transform**: :meth:`Compression.transform` installs its hooks/rules into the model, and
   :meth:`Compression.collections` turns its state into the flax variable collections the
   transformed model reads (inside ``jit``);
3. **optax wrapper**: :meth:`Compression.wrap` wraps the optimizer; :meth:`Compression.update_args`
   gives the extra keyword arguments its ``update`` takes (inside ``jit``);
4. **host actions**: :meth:`Compression.before_step` runs on the host between steps (e.g. a
   pruning schedule recomputing masks); it reads and writes member-stacked state through a
   :class:`StateAccess`, so the same code serves one run and a vmapped sweep group.

Plug-ins are built from a run's config by :func:`from_config` (a ``prune`` section with a ratio,
a ``binary`` section with a method, or a run to start from), or passed explicitly to
:class:`lightjax.train.experiment.Experiment`. Each config section is served by one module
(:data:`SECTIONS`) with ``section()`` (the default section), ``TRACED`` (its fields that only change
state values, so sweep members differing in them share one vmapped group), ``check(cfg)`` and
``from_configs(cfgs, experiment)``.
"""
from __future__ import annotations

import importlib
import os
from typing import Any, Mapping, Protocol, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import optax

from lightjax.errors import ValidationError

#: config section -> the module serving it (imported only when used, so the training engine does
#: not depend on the compression packages).
SECTIONS = {"prune": "lightjax.prune.plugin", "binary": "lightjax.binary.plugin"}


def section_module(name: str) -> Any:
    """The module serving config section ``name`` (see :data:`SECTIONS`)."""
    return importlib.import_module(SECTIONS[name])


def traced_fields() -> tuple[str, ...]:
    """``'<section>.<field>'`` of every compression field that only changes state values."""
    return tuple(f"{name}.{field}" for name in SECTIONS for field in section_module(name).TRACED)


class StateAccess(Protocol):
    """Host access to member-stacked train state (a single run is one member)."""

    members: int

    def read(self, tree: Any) -> Any:
        """``tree`` (leaves with a leading member axis) as host numpy arrays."""

    def write(self, state: Any, name: str, value: Any) -> Any:
        """``state`` with ``compression[name]`` replaced by the host tree ``value`` (member axis
        first), the plug-in's :meth:`Compression.on_write` applied per member."""


class Compression:
    """Base class: every method is a no-op, so a plug-in overrides only what it uses."""

    name: str = ""

    def transform(self, model: nn.Module) -> nn.Module:
        return model

    def init(self, params: Any) -> Any:
        """Initial extra state of one member (traced; may depend on ``params``' shapes)."""
        return {}

    def on_start(self, state: Any, tx: optax.GradientTransformation) -> Any:
        """One member's initial train state, adjusted (traced), e.g. weights of a trained run
        (``tx``: the wrapped optimizer, to re-initialise its state)."""
        return state

    def collections(self, extra: Any) -> dict[str, Any]:
        """Flax collections for ``model.apply`` (besides params/batch_stats), in jit."""
        return {}

    def wrap(self, tx: optax.GradientTransformation) -> optax.GradientTransformation:
        return tx

    def update_args(self, extra: Any, params: Any) -> dict[str, Any]:
        """Extra keyword arguments of the wrapped optimizer's ``update``, in jit."""
        return {}

    def on_write(self, state: Any) -> Any:
        """One member's state after :meth:`StateAccess.write` changed its extra state (traced),
        e.g. zeroing newly pruned weights."""
        return state

    def before_step(self, access: StateAccess, state: Any, step: int) -> Any:
        """Host action before training step ``step`` (0-based); returns the (new) state."""
        return state

    def summary(self, extra: Any, member: int) -> dict[str, Any]:
        """Figures for a results row of ``member`` (host extra state of all members)."""
        return {}


def from_config(cfgs: Sequence[ml_collections.ConfigDict], experiment: Any
                ) -> list[Compression]:
    """The plug-ins the members' configs ask for (each section's builder decides; ``None`` from
    a builder means the section asks for nothing)."""
    out = []
    for section in SECTIONS:
        if all(c.get(section) is None for c in cfgs):
            continue
        built = section_module(section).from_configs(cfgs, experiment)
        if built is not None:
            out.append(built)
    return out


def check_init_from(cfg: ml_collections.ConfigDict, section: str) -> None:
    """``ValidationError`` unless ``cfg[section].init_from`` (if set) is a run directory whose
    ``model`` and ``data`` sections equal ``cfg``'s."""
    from lightjax.train import config as config_lib

    path = cfg[section].get("init_from")
    if path is None:
        return
    config_path = os.path.join(path, "config.json")
    if not os.path.isfile(config_path):
        raise ValidationError(f"{section}.init_from={path} holds no lightjax run (no config.json)")
    with open(config_path) as f:
        run_cfg = config_lib.from_json(f.read())
    for name in ("model", "data"):
        if run_cfg[name].to_dict() != cfg[name].to_dict():
            raise ValidationError(
                f"{section}.init_from={path}: that run's {name} section "
                f"{run_cfg[name].to_dict()} differs from this config's {cfg[name].to_dict()}; "
                f"use the run's directory as the base config")


def start_from(workdir: str) -> dict[str, Any]:
    """Parameters (the moving average, if the run keeps one) and BN statistics of the trained
    run ``workdir`` (host arrays)."""
    from lightjax.train import run as run_lib

    from lightjax.train import step as step_lib

    _, _, state = run_lib.load_run(workdir)
    return jax.device_get({"params": step_lib.eval_params(state),
                           "batch_stats": state.batch_stats})


def start_state(state: Any, tx: optax.GradientTransformation,
                start: dict[str, Any] | None) -> Any:
    """``state`` with the ``start`` variables (from :func:`start_from`), a fresh optimizer state
    and (when the state keeps one) a moving average starting there; ``state`` itself when
    ``start`` is ``None``."""
    if start is None:
        return state
    params = jax.tree.map(jnp.asarray, start["params"])
    state = state.replace(params=params, opt_state=tx.init(params),
                          batch_stats=jax.tree.map(jnp.asarray, start["batch_stats"]))
    if state.ema is not None:  # the moving average starts at the start, not at the random init
        state = state.replace(ema=jax.tree.map(jnp.copy, params))
    return state


def single_start(sections: Sequence[Any], section: str) -> str | None:
    """The one ``init_from`` of the members' sections (``ValidationError`` if they differ)."""
    init = {p.get("init_from") for p in sections if p is not None}
    init.discard(None)
    if len(init) > 1:
        raise ValidationError(f"members of one group start from different runs "
                              f"({section}.init_from: {sorted(map(str, init))}); use one sweep "
                              f"per run")
    return next(iter(init), None)


def merged(plugins: Sequence[Compression], method: str, extras: Mapping[str, Any],
           *args: Any) -> dict[str, Any]:
    """The union of ``plugin.<method>(extras[plugin.name], *args)`` dicts over ``plugins``."""
    out: dict[str, Any] = {}
    for p in plugins:
        out.update(getattr(p, method)(extras[p.name], *args))
    return out


def chain_transforms(plugins: Sequence[Compression], model: nn.Module) -> nn.Module:
    for p in plugins:
        model = p.transform(model)
    return model


def wrap_optimizer(plugins: Sequence[Compression],
                   tx: optax.GradientTransformation) -> optax.GradientTransformation:
    for p in plugins:
        tx = p.wrap(tx)
    return tx
