"""The sweep planner: static axes select a compiled group, traced axes are vmapped members.

*Traced* fields (:data:`TRACED`) only change values in the train state (seed: parameter init,
dropout and data order; learning rate and weight decay: injected into the optimizer state;
activation init: start values of trainable activation parameters; pruning ratio, criterion and
schedule: per-member masks; binarization ratios and selection: per-member selections), so members that agree on everything else train together in one
compiled, vmapped step. Every other field (alpha, resolution,
model, widths, activation type, batch size, epochs, ...) is *static*: it changes shapes or code, and
its members form their own group. Groups larger than ``max_members`` are split into chunks.
"""
from __future__ import annotations

import dataclasses
import json
from typing import Sequence

import ml_collections

from lightjax.train import compression
from lightjax.sweep.spec import Sweep
from lightjax.errors import ValidationError

#: Config fields that may differ between the members of one vmapped group.
TRACED = ("train.seed", "train.lr", "train.weight_decay", "train.activation_init",
          *compression.traced_fields())


def _without_traced(cfg: ml_collections.ConfigDict) -> str:
    d = cfg.to_dict()
    for key in TRACED:
        section, field = key.split(".")
        d.get(section, {}).pop(field, None)
    return json.dumps(d, sort_keys=True, default=list)


@dataclasses.dataclass(frozen=True)
class Group:
    """Members trained together (indices into the sweep), sharing every static field."""

    index: int
    members: tuple[int, ...]
    static: dict
    program: int  # groups with the same program id share one compilation (same static config
    # and chunk size)

    @property
    def name(self) -> str:
        return f"group{self.index:03d}"


def plan(sweep: Sweep, max_members: int | None = None,
         configs: Sequence[ml_collections.ConfigDict] | None = None) -> list[Group]:
    """Groups of members, in order of first appearance."""
    if max_members is not None and (isinstance(max_members, bool) or max_members < 1):
        raise ValidationError(f"max members per step must be >= 1, got {max_members}")
    configs = configs if configs is not None else sweep.configs()
    by_static: dict[str, list[int]] = {}
    for i, cfg in enumerate(configs):
        by_static.setdefault(_without_traced(cfg), []).append(i)
    groups, programs = [], {}
    for key, members in by_static.items():
        size = max_members or len(members)
        for start in range(0, len(members), size):
            chunk = tuple(members[start:start + size])
            program = programs.setdefault((key, len(chunk)), len(programs))
            static = {k: v for k, v in sweep.members[chunk[0]].items() if k not in TRACED}
            groups.append(Group(len(groups), chunk, static, program))
    return groups


def check(groups: Sequence[Group], configs: Sequence[ml_collections.ConfigDict]) -> None:
    """Validate every member's traced settings (``ValueError``), cheaply, before a sweep runs."""
    from lightjax.sweep import group as group_lib

    for g in groups:
        members = [configs[m] for m in g.members]
        group_lib.activation_inits(members)
        for cfg in members:
            if cfg.train.get("plateau_patience"):
                raise ValueError(f"train.plateau_patience={cfg.train.plateau_patience} stops one "
                                 f"run early; sweep members train their full epochs (set it to "
                                 f"0 in the sweep)")
            if cfg.train.get("init_from"):
                raise ValueError(f"train.init_from={cfg.train.init_from}: sweep members start "
                                 f"from their own initialisation (warm-start with "
                                 f"`lightjax train`, or prune/binarize init_from in a sweep)")
            for name in compression.SECTIONS:
                compression.section_module(name).check(cfg)
