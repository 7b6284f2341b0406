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

Plug-ins are built from a run's config by :func:`from_config` (a ``prune`` section with a ratio, or
a run to start from), or passed explicitly to :class:`lightjax.train.experiment.Experiment`.
"""
from __future__ import annotations

import importlib
from typing import Any, Mapping, Protocol, Sequence

import flax.linen as nn
import ml_collections
import optax

#: config section -> "module:function" building the plug-in (imported only when used, so the
#: training engine does not depend on the compression packages).
BUILDERS = {"prune": "lightjax.prune.plugin:from_configs"}


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
    for section, target in BUILDERS.items():
        if all(c.get(section) is None for c in cfgs):
            continue
        module, _, fn = target.partition(":")
        built = getattr(importlib.import_module(module), fn)(cfgs, experiment)
        if built is not None:
            out.append(built)
    return out


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
