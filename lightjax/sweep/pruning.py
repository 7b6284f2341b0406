"""Pruning as traced sweep axes: per-member masks in the vmapped train state.

A sweep member's ``prune`` section (:func:`section`) describes structured filter pruning during
its training (:mod:`lightjax.prune`):

- ``init_from``: a trained run directory to start from (its latest checkpoint; the member's
  ``train`` section is then the fine-tuning recipe); ``None``: prune while training from scratch;
- ``ratio``: fraction of every prunable group's filters removed (0: no pruning);
- ``criterion`` (``l1``, ``l2``, ``l0``, ``fpgm``, ``bn_gamma``), ``ranking`` (``local``/``global``),
  ``max_ratio``, ``round_to``: as in ``lightjax prune``;
- ``ramp_epochs``: 0 prunes once before the first step (one-shot); > 0 follows Zhu & Gupta's cubic
  ramp from 0 to ``ratio`` over that many epochs, masks recomputed every ``frequency`` steps.

Masks live in ``state.masks`` with the member axis, so members with different ratios, criteria and
schedules train in one compiled, vmapped step; mask selection runs on the host between steps.
"""
from __future__ import annotations

import dataclasses
import os
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from lightjax import cost
from lightjax.prune import compact as compact_lib
from lightjax.prune import criteria, ranking
from lightjax.prune import groups as groups_lib
from lightjax.prune import masking, schedules
from lightjax.train import config as config_lib
from lightjax.train import run as run_lib
from lightjax.train import step as step_lib
from lightjax.errors import ValidationError

#: Fields of the ``prune`` section that may differ between members of one group.
TRACED = ("ratio", "criterion", "ranking", "max_ratio", "round_to", "ramp_epochs", "frequency")


def section() -> ml_collections.ConfigDict:
    """The default ``prune`` section of a sweep member's config (no pruning)."""
    return ml_collections.ConfigDict(dict(
        init_from=None, ratio=0.0, criterion="l1", ranking="local", max_ratio=0.9, round_to=1,
        ramp_epochs=0.0, frequency=10))


@dataclasses.dataclass(frozen=True)
class Settings:
    """One member's pruning schedule, in steps."""

    ratio: float
    criterion: str
    ranking: str
    max_ratio: float
    round_to: int
    ramp_steps: int
    frequency: int

    @classmethod
    def from_config(cls, p: ml_collections.ConfigDict, steps_per_epoch: int) -> "Settings":
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
        return schedules.polynomial_sparsity(step, self.ratio, 0, self.ramp_steps)


def check(cfg: ml_collections.ConfigDict, steps_per_epoch: int = 1) -> Settings | None:
    """Validate a member's ``prune`` section without building anything (a run named by
    ``init_from`` must have the member's model and data sections); its :class:`Settings`."""
    p = cfg.get("prune")
    if p is None:
        return None
    settings = Settings.from_config(p, steps_per_epoch)
    if p.init_from is not None:
        path = os.path.join(p.init_from, "config.json")
        if not os.path.isfile(path):
            raise ValidationError(f"prune.init_from={p.init_from} holds no lightjax run "
                             f"(no config.json)")
        with open(path) as f:
            run_cfg = config_lib.from_json(f.read())
        for name in ("model", "data"):
            if run_cfg[name].to_dict() != cfg[name].to_dict():
                raise ValidationError(f"prune.init_from={p.init_from}: that run's {name} section "
                                 f"{run_cfg[name].to_dict()} differs from the sweep member's "
                                 f"{cfg[name].to_dict()}; use the run's directory as the sweep "
                                 f"base")
    return settings


def _start_from(workdir: str) -> dict[str, Any]:
    """Parameters and BN statistics of the trained run ``workdir``."""
    _, _, state = run_lib.load_run(workdir)
    return jax.device_get({"params": state.params, "batch_stats": state.batch_stats})


@dataclasses.dataclass
class MemberPruning:
    """Channel groups, the masked model and every member's schedule."""

    groups: groups_lib.ChannelGroups
    model: Any
    base_model: Any
    settings: tuple[Settings, ...]
    start: dict[str, Any] | None
    input_shape: tuple[int, ...]  # NHWC, batch 1

    @classmethod
    def build(cls, cfgs: Sequence[ml_collections.ConfigDict],
              setup: Any) -> "MemberPruning | None":
        """``None`` when no member prunes or starts from a trained run."""
        sections = [c.get("prune") for c in cfgs]
        if all(p is None or (not p.ratio and p.init_from is None) for p in sections):
            return None
        settings = tuple(check(c, setup.steps_per_epoch) or Settings.from_config(
            section(), setup.steps_per_epoch) for c in cfgs)
        if not hasattr(setup.model, "prunable_layers"):
            raise ValidationError(f"{type(setup.model).__name__} lists no prunable layers")
        groups = groups_lib.derive(setup.model, (1, 8, 8, setup.dataset.image_shape[-1]))
        if not groups.prunable:
            raise ValidationError(f"{type(setup.model).__name__}: no channel group can be pruned:\n"
                             + groups.describe())
        start = None
        if sections[0] is not None and sections[0].init_from is not None:
            start = _start_from(sections[0].init_from)
        return cls(groups, masking.masked(setup.model), setup.model, settings, start,
                   setup.input_shape)

    def init_member(self, state: step_lib.TrainState, tx: Any) -> step_lib.TrainState:
        """A member's initial state (inside ``vmap``): all-ones masks; the trained run's weights
        and a fresh optimizer state when starting from one."""
        masks = jax.tree.map(jnp.asarray, self.groups.ones())
        if self.start is not None:
            params = jax.tree.map(jnp.asarray, self.start["params"])
            state = state.replace(params=params, opt_state=tx.init(params),
                                  batch_stats=jax.tree.map(jnp.asarray,
                                                           self.start["batch_stats"]))
        return state.replace(masks=masks)

    def update(self, trainer: Any, state: step_lib.TrainState, step: int) -> step_lib.TrainState:
        """Recompute the masks of members whose schedule prunes before ``step``."""
        targets = [s.target(step) for s in self.settings]
        if all(t is None for t in targets):
            return state
        host = trainer.host({"params": state.params, "batch_stats": state.batch_stats,
                             "masks": state.masks})  # one read for every member
        stacked = {k: np.array(v) for k, v in host["masks"].items()}
        for m, (target, s) in enumerate(zip(targets, self.settings)):
            if target is None:
                continue
            current = {k: v[m] for k, v in stacked.items()}
            variables = jax.tree.map(lambda a: a[m], {"params": host["params"],
                                                      "batch_stats": host["batch_stats"]})
            scores = ranking.scores(self.groups, variables, s.criterion)
            new = ranking.select(self.groups, current, scores, target, s.ranking, s.round_to,
                                 s.max_ratio)
            for k in stacked:
                stacked[k][m] = new[k]
        return trainer._install_masks(state, stacked)

    def zero_pruned(self, state: step_lib.TrainState) -> step_lib.TrainState:
        """One member's state with its pruned parameters set to 0 (traced)."""
        pm = masking.param_masks(self.groups, state.masks, state.params)
        return state.replace(params=jax.tree.map(lambda p, m: p * m.astype(p.dtype),
                                                 state.params, pm))

    def summary(self, member: step_lib.TrainState) -> dict[str, Any]:
        """Params, MACs (of the compact model) and sparsity of a member (host state)."""
        masks = {k: np.asarray(v) for k, v in member.masks.items()}
        widths = compact_lib.compact_widths(self.base_model, self.groups, masks)
        report = cost.count(self.base_model.clone(widths=widths), self.input_shape)
        return {"params": report.params, "macs": report.macs,
                "sparsity": round(ranking.sparsity(self.groups, masks), 4)}
