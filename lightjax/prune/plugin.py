"""Structured pruning as a compression plug-in (:mod:`lightjax.train.compression`).

- **state**: group masks ``{group: (channels,) 0/1 float32}`` in ``TrainState.compression['prune']``;
- **model transform**: :func:`lightjax.prune.masking.masked` (every layer multiplies its input
  channels by the ``masks`` collection derived from the group masks, in jit);
- **optax wrapper**: :func:`lightjax.prune.optim.masked_updates` (pruned weights and their
  optimizer state stay exactly zero), with the parameter masks as its ``update`` argument;
- **host action**: each member's schedule (:class:`Schedule`: one-shot before step 0, or Zhu &
  Gupta's cubic ramp every ``frequency`` steps) re-selects masks from the current weights.

A config's ``prune`` section (:func:`section`) describes it: ``init_from`` (a trained run to start
from; its weights replace the initialisation), ``ratio``, ``criterion``, ``ranking``,
``max_ratio``, ``round_to``, ``ramp_epochs``, ``frequency``. Every field but ``init_from`` only
changes mask values, so sweep members with different settings train in one vmapped program.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from lightjax import cost
from lightjax.errors import ValidationError
from lightjax.prune import compact as compact_lib
from lightjax.prune import criteria, masking, optim, ranking
from lightjax.prune import groups as groups_lib
from lightjax.train import compression
from lightjax.train.compression import Compression, StateAccess

#: Fields of the ``prune`` section that may differ between members of one vmapped group.
TRACED = ("ratio", "criterion", "ranking", "max_ratio", "round_to", "ramp_epochs", "frequency")


def section() -> ml_collections.ConfigDict:
    """The default ``prune`` section (no pruning)."""
    return ml_collections.ConfigDict(dict(
        init_from=None, ratio=0.0, criterion="l1", ranking="local", max_ratio=0.9, round_to=1,
        ramp_epochs=0.0, frequency=10))


def polynomial_sparsity(step: int, target: float, begin: int, end: int, initial: float = 0.0,
                        power: float = 3.0) -> float:
    """Zhu & Gupta's polynomial ramp from ``initial`` (at ``begin``) to ``target`` (at ``end``)."""
    if step <= begin:
        return initial
    if step >= end:
        return target
    return target + (initial - target) * (1.0 - (step - begin) / (end - begin)) ** power


@dataclasses.dataclass(frozen=True)
class Schedule:
    """One member's pruning schedule, in steps (``ratio`` 0: masks never change)."""

    ratio: float = 0.0
    criterion: str = "l1"
    ranking: str = "local"
    max_ratio: Any = 0.9
    round_to: int = 1
    ramp_steps: int = 0
    frequency: int = 10

    @classmethod
    def from_config(cls, p: ml_collections.ConfigDict, steps_per_epoch: int) -> "Schedule":
        ratio = ranking.check_ratio(p.ratio, "prune.ratio")
        criteria.get(p.criterion)  # unknown names raise with the allowed list
        if p.ranking not in ranking.RANKINGS:
            raise ValidationError(f"unknown prune.ranking {p.ranking!r}; allowed: "
                                  f"{', '.join(ranking.RANKINGS)}")
        if not p.ramp_epochs >= 0:
            raise ValidationError(f"prune.ramp_epochs must be >= 0, got {p.ramp_epochs!r}")
        if isinstance(p.frequency, bool) or not isinstance(p.frequency, int) or p.frequency < 1:
            raise ValidationError(f"prune.frequency must be an integer >= 1 (steps), got "
                                  f"{p.frequency!r}")
        return cls(ratio, p.criterion, p.ranking, float(p.max_ratio), int(p.round_to),
                   int(round(p.ramp_epochs * steps_per_epoch)), p.frequency)

    def target(self, step: int) -> float | None:
        """The sparsity to prune to before ``step``, or ``None`` (no mask update then)."""
        if self.ratio == 0:
            return None
        if self.ramp_steps == 0:
            return self.ratio if step == 0 else None
        if step > self.ramp_steps or (step % self.frequency and step != self.ramp_steps):
            return None
        return polynomial_sparsity(step, self.ratio, 0, self.ramp_steps)


def check(cfg: ml_collections.ConfigDict, steps_per_epoch: int = 1) -> Schedule | None:
    """Validate a config's ``prune`` section without building anything (a run named by
    ``init_from`` must have the config's model and data sections)."""
    p = cfg.get("prune")
    if p is None:
        return None
    schedule = Schedule.from_config(p, steps_per_epoch)
    compression.check_init_from(cfg, "prune")
    return schedule


def derive_groups(model: Any, channels: int, skip: Sequence[str] = (),
                  skip_first: bool = True) -> groups_lib.ChannelGroups:
    """The model's channel groups; ``ValidationError`` when nothing can be pruned."""
    if not hasattr(model, "prunable_layers"):
        raise ValidationError(f"{type(model).__name__} lists no prunable layers")
    size = max(8, model.min_input_size()) if hasattr(model, "min_input_size") else 8
    groups = groups_lib.derive(model, (1, size, size, channels), skip=skip,
                               skip_first=skip_first)
    if not groups.prunable:
        raise ValidationError(f"{type(model).__name__}: no channel group can be pruned:\n"
                              + groups.describe())
    return groups


class Pruning(Compression):
    """Masked structured pruning with one :class:`Schedule` per member.

    Attributes:
      groups: the base model's channel groups.
      base_model: the model without masks (compaction, cost).
      schedules: one per member (a run has one).
      start: ``{'params', 'batch_stats'}`` of a trained run every member starts from, or ``None``.
      input_shape: NHWC, batch 1 (cost of compact models).
    """

    name = "prune"

    def __init__(self, groups: groups_lib.ChannelGroups, base_model: Any,
                 schedules: Sequence[Schedule], start: dict[str, Any] | None,
                 input_shape: tuple[int, ...]):
        self.groups = groups
        self.base_model = base_model
        self.schedules = tuple(schedules)
        self.start = start
        self.input_shape = input_shape

    # --- the interface ------------------------------------------------------------------------
    def transform(self, model):
        return masking.masked(model)

    def init(self, params):
        return jax.tree.map(jnp.asarray, self.groups.ones())

    def on_start(self, state, tx: optax.GradientTransformation):
        return compression.start_state(state, tx, self.start)

    def collections(self, extra):
        return {"masks": masking.layer_masks(self.groups, extra)}

    def wrap(self, tx):
        return optim.masked_updates(tx)

    def update_args(self, extra, params):
        return {"param_masks": masking.param_masks(self.groups, extra, params)}

    def on_write(self, state):
        pm = masking.param_masks(self.groups, state.compression[self.name], state.params)
        return state.replace(params=jax.tree.map(lambda p, m: p * m.astype(p.dtype),
                                                 state.params, pm))

    def before_step(self, access: StateAccess, state, step: int):
        targets = [s.target(step) for s in self.schedules]
        if all(t is None for t in targets):
            return state
        host = access.read({"params": state.params, "batch_stats": state.batch_stats,
                            "masks": state.compression[self.name]})  # one read for all members
        stacked = {k: np.array(v) for k, v in host["masks"].items()}
        for m, (target, s) in enumerate(zip(targets, self.schedules)):
            if target is None:
                continue
            current = {k: v[m] for k, v in stacked.items()}
            variables = jax.tree.map(lambda a: a[m], {"params": host["params"],
                                                      "batch_stats": host["batch_stats"]})
            new = ranking.select(self.groups, current, ranking.scores(self.groups, variables,
                                                                      s.criterion),
                                 target, s.ranking, s.round_to, s.max_ratio)
            for k in stacked:
                stacked[k][m] = new[k]
        return access.write(state, self.name, stacked)

    def summary(self, extra, member: int) -> dict[str, Any]:
        """Params, MACs (of the compact model) and sparsity of ``member``."""
        masks = {k: np.asarray(v)[member] for k, v in extra.items()}
        widths = compact_lib.compact_widths(self.base_model, self.groups, masks)
        report = cost.count(self.base_model.clone(widths=widths), self.input_shape)
        return {"params": report.params, "macs": report.macs,
                "sparsity": round(ranking.sparsity(self.groups, masks), 4)}


def from_configs(cfgs: Sequence[ml_collections.ConfigDict], experiment: Any) -> Pruning | None:
    """The plug-in the members' ``prune`` sections ask for (``None`` when none prunes or starts
    from a trained run)."""
    sections = [c.get("prune") for c in cfgs]
    if all(p is None or (not p.ratio and p.init_from is None) for p in sections):
        return None
    spe = experiment.steps_per_epoch
    schedules = [check(c, spe) or Schedule() for c in cfgs]
    start_dir = compression.single_start(sections, "prune")
    groups = derive_groups(experiment.base_model, experiment.dataset.image_shape[-1])
    return Pruning(groups, experiment.base_model, schedules,
                   compression.start_from(start_dir) if start_dir is not None else None,
                   experiment.input_shape)
