"""Filter scores per channel group and the selection of channels to prune (local or global).

A group's score for each slot is the sum of the criterion over the group's producers (for
``bn_gamma``: |scale| summed over the BNs of the slot). Pruned slots are never re-selected and
never count as new pruning (:func:`lightjax.prune.criteria.select`).

- ``local`` ranking: every prunable group loses ``ratio`` of its channels (per-group ratios
  allowed).
- ``global`` ranking: one threshold over all groups' scores, each divided by its group's mean
  active score so that layers with larger weights are not spared by scale alone; ``ratio`` is then
  the fraction of all prunable channels removed.

Both honour per-group caps (``max_ratio``) and round kept channels up to a multiple of
``round_to`` (and of the group's width step).
"""
from __future__ import annotations

import math
from typing import Any, Mapping

import flax
import jax.numpy as jnp
import numpy as np

from lightjax.prune import criteria
from lightjax.prune.groups import ChannelGroups
from lightjax.errors import ValidationError

RANKINGS = ("local", "global")


def scores(groups: ChannelGroups, variables: Mapping[str, Any],
           criterion: str = "l1") -> dict[str, np.ndarray]:
    """``{group name: (size,) float32}`` for every prunable group (higher = more important)."""
    fn = criteria.get(criterion)
    params = flax.traverse_util.flatten_dict(flax.core.unfreeze(variables["params"]), sep="/")
    out = {}
    for g in groups.prunable:
        offset = groups.slots(g.name).start
        total = np.zeros(g.size, np.float32)
        if criterion == "bn_gamma":
            sources = [(m, params[f"{m}/scale"]) for m, slots in groups.inputs.items()
                       if f"{m}/scale" in params and _in_group(slots, offset, g.size)]
            if not sources:
                raise ValidationError(f"bn_gamma: group {g.name} has no BatchNorm scale")
            for module, scale in sources:
                _scatter(total, groups.inputs[module], offset, g.size, np.asarray(fn(scale)))
        else:
            for path in g.producers:
                kernel = params[f"{path}/kernel"]
                _scatter(total, groups.outputs[path], offset, g.size, np.asarray(fn(kernel)))
        out[g.name] = total
    return out


def _in_group(slots: np.ndarray, offset: int, size: int) -> bool:
    return bool(np.any((slots >= offset) & (slots < offset + size)))


def _scatter(total: np.ndarray, slots: np.ndarray, offset: int, size: int,
             values: np.ndarray) -> None:
    local = slots - offset
    ok = (local >= 0) & (local < size)
    np.add.at(total, local[ok], values[ok])


def _ratio_for(name: str, layers: tuple[str, ...], ratio: float | Mapping[str, float]) -> float:
    """A group's entry of ``ratio`` (by group or layer name; ``'*'``: everything else; else 0)."""
    if isinstance(ratio, Mapping):
        for key in (name, *layers, "*"):
            if key in ratio:
                return float(ratio[key])
        return 0.0
    return float(ratio)


def check_ratio(ratio: Any, what: str = "ratio") -> float:
    if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not 0 <= ratio < 1:
        raise ValidationError(f"{what} must be a number in [0, 1), got {ratio!r}")
    return float(ratio)


def _round(groups: ChannelGroups, name: str, round_to: int) -> int:
    step = groups[name].step
    return step * round_to // math.gcd(step, round_to)


def _check_names(groups: ChannelGroups, names: Any) -> None:
    for name in names:
        if name == "*":
            continue
        g = groups.check_name(name)
        if not g.prunable:
            raise ValidationError(f"group {g.name} cannot be pruned: {g.reason}")


def select(groups: ChannelGroups, group_masks: Mapping[str, Any], group_scores: Mapping[str, Any],
           ratio: float | Mapping[str, float], ranking: str = "local", round_to: int = 1,
           max_ratio: float | Mapping[str, float] = 0.9) -> dict[str, np.ndarray]:
    """New group masks pruning ``ratio`` (of each group's channels, or for ``ranking='global'``
    of all prunable channels); a dict ``ratio`` gives per-group ratios (local ranking only).

    ``max_ratio`` caps the fraction of any group's channels pruned (default 0.9; a dict gives
    per-group caps, ``'*'`` the default for the others). Pruning that
    would leave a group with no channels is impossible: at least one multiple of ``round_to``
    stays.
    """
    if ranking not in RANKINGS:
        raise ValidationError(f"unknown ranking {ranking!r}; allowed: {', '.join(RANKINGS)}")
    if isinstance(round_to, bool) or not isinstance(round_to, int) or round_to < 1:
        raise ValidationError(f"round_to must be a positive integer, got {round_to!r}")
    if isinstance(ratio, Mapping):
        if ranking == "global":
            raise ValidationError("per-group ratios need ranking='local'")
        _check_names(groups, ratio)
        for k, v in ratio.items():
            check_ratio(v, f"ratio of {k}")
    else:
        check_ratio(ratio)
    if isinstance(max_ratio, Mapping):
        max_ratio = {"*": 0.9, **max_ratio}
        for k, v in max_ratio.items():
            if k != "*":
                groups.check_name(k)
            check_ratio(v, f"max_ratio of {k}")
    else:
        check_ratio(max_ratio, "max_ratio")
    new = {k: np.asarray(v, np.float32).copy() for k, v in group_masks.items()}
    targets: dict[str, int] = {}  # kept channels per group
    prunable = groups.prunable
    if ranking == "local":
        for g in prunable:
            r = min(_ratio_for(g.name, g.layers, ratio), _ratio_for(g.name, g.layers, max_ratio))
            targets[g.name] = criteria.kept_count(g.size, r, _round(groups, g.name, round_to))
    else:
        normalized = []
        for g in prunable:
            s = np.asarray(group_scores[g.name], np.float64)
            active = new[g.name] > 0
            mean = s[active].mean() if active.any() else 1.0
            normalized += [(v / mean if mean > 0 else v, g.name)
                           for v, a in zip(s, active) if a]
        total = sum(g.size for g in prunable)
        n_prune = int(ratio * total) - sum(int(g.size - new[g.name].sum()) for g in prunable)
        pruned = {g.name: int(g.size - new[g.name].sum()) for g in prunable}
        for _, name in sorted(normalized)[:max(n_prune, 0)]:
            pruned[name] += 1
        for g in prunable:
            cap = _ratio_for(g.name, g.layers, max_ratio)
            r = min(pruned[g.name] / g.size, cap)
            targets[g.name] = criteria.kept_count(g.size, r, _round(groups, g.name, round_to))
    for g in prunable:
        keep = min(targets[g.name], int(new[g.name].sum()))
        new[g.name] = np.asarray(criteria.select(jnp.asarray(group_scores[g.name]),
                                                 jnp.asarray(new[g.name]), keep))
    return new


def sparsity(groups: ChannelGroups, group_masks: Mapping[str, Any]) -> float:
    """Fraction of prunable channels pruned."""
    total = sum(g.size for g in groups.prunable)
    kept = sum(float(np.sum(group_masks[g.name])) for g in groups.prunable)
    return 1.0 - kept / total if total else 0.0


