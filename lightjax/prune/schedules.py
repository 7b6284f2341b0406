"""Pruning schedules on a :class:`~lightjax.prune.session.PruningSession`.

- ``oneshot``: prune to the target once, re-estimate BN, fine-tune.
- ``iterative``: ``rounds`` times: prune a further step (target * i / rounds), fine-tune.
- ``gradual`` (Zhu & Gupta 2017): during fine-tuning, every ``frequency`` steps the sparsity
  follows ``s_t = s_f + (s_0 - s_f) (1 - (t - t_0) / (t_1 - t_0))^3``; masks are recomputed from the
  current weights (pruned channels stay pruned), masked updates keep them at zero.
- ``pointwise``: the MobileNet-rhs procedure (the pointwise-kernel removal of the MobileNet-rhs
  paper): starting at the last pointwise layer, remove 2^n kernels (n = 1, 2, ...), fine-tune,
  keep the step while the loss of the task's primary metric (top-1 for classification, mIoU for
  segmentation) against the unpruned model stays within ``tolerance`` points, then move one layer
  up; stop at the first layer where even 2 kernels cost too much (further removal no longer pays).

Every schedule returns a list of history rows (round/trial, sparsity, params, MACs, the task's
metrics) and leaves the session holding the final masks and weights.
"""
from __future__ import annotations

import copy
from typing import Any, Callable

from lightjax.prune import ranking
from lightjax.prune.plugin import Schedule, polynomial_sparsity  # noqa: F401 (re-exported)
from lightjax.errors import ValidationError

METHODS = ("oneshot", "iterative", "gradual", "pointwise")


def _row(session, **extra) -> dict[str, Any]:
    report = session.cost()
    metrics = session.evaluate()
    scalars = {k: v for k, v in metrics.items() if isinstance(v, float)}
    return {**extra, "sparsity": round(ranking.sparsity(session.groups, session.masks), 4),
            "params": report.params, "macs": report.macs, **scalars}


def oneshot(session, ratio: float, criterion: str = "l1", ranking_mode: str = "local",
            round_to: int = 1, max_ratio: float = 0.9, epochs: float = 1.0,
            lr_scale: float = 0.1, bn_batches: int = 10, log: Callable = print) -> list[dict]:
    session.prune(ratio, criterion, ranking_mode, round_to, max_ratio)
    session.reestimate_bn(bn_batches)
    rows = [_row(session, round=1, stage="pruned")]
    log(rows[-1])
    session.finetune(epochs, lr_scale)
    rows.append(_row(session, round=1, stage="fine-tuned"))
    log(rows[-1])
    return rows


def iterative(session, ratio: float, rounds: int = 3, criterion: str = "l1",
              ranking_mode: str = "local", round_to: int = 1, max_ratio: float = 0.9,
              epochs: float = 1.0, lr_scale: float = 0.1, bn_batches: int = 10,
              log: Callable = print) -> list[dict]:
    if rounds < 1:
        raise ValidationError(f"rounds must be >= 1, got {rounds}")
    rows = []
    for i in range(1, rounds + 1):
        session.prune(ratio * i / rounds, criterion, ranking_mode, round_to, max_ratio)
        session.reestimate_bn(bn_batches)
        session.finetune(epochs, lr_scale)
        rows.append(_row(session, round=i, stage="fine-tuned"))
        log(rows[-1])
    return rows


def gradual(session, ratio: float, criterion: str = "l1", ranking_mode: str = "local",
            round_to: int = 1, max_ratio: float = 0.9, epochs: float = 2.0,
            lr_scale: float = 0.1, frequency: int = 10, ramp: float = 0.75,
            log: Callable = print) -> list[dict]:
    """The ramp covers the first ``ramp`` fraction of the ``epochs`` of fine-tuning."""
    if frequency < 1:
        raise ValidationError(f"frequency must be >= 1 steps, got {frequency}")
    if not 0 < ramp <= 1:
        raise ValidationError(f"ramp must be in (0, 1], got {ramp}")
    steps = int(round(epochs * session.experiment.steps_per_epoch))
    end = max(1, int(steps * ramp))
    rows: list[dict] = []
    schedule = Schedule(ratio, criterion, ranking_mode, max_ratio, round_to, end, frequency)
    session.finetune(epochs, lr_scale, schedule=schedule)
    rows.append(_row(session, round=1, stage="fine-tuned"))
    log(rows[-1])
    return rows


def pointwise(session, tolerance: float = 1.0, max_n: int = 10, epochs: float = 1.0,
              lr_scale: float = 0.1, criterion: str = "l1", max_layers: int | None = None,
              bn_batches: int = 10, log: Callable = print) -> list[dict]:
    """``tolerance``: accepted loss of the task's primary metric in percentage points against the
    unpruned model."""
    groups = [g for g in session.groups.prunable
              if all(session.groups.kinds[p] == "pointwise" for p in g.producers)]
    if not groups:
        raise ValidationError("the pointwise procedure needs prunable pointwise convolutions")
    primary = session.task.primary
    baseline = session.evaluate()[primary]
    rows = [{"layer": None, "removed": 0, "accepted": True, **_row(session, stage="baseline")}]
    log(rows[-1])
    for g in list(reversed(groups))[:max_layers]:
        accepted_any = False
        for n in range(1, max_n + 1):
            remove = 2 ** n  # kernels removed from this layer in total
            if remove >= g.size:
                break
            saved = copy.copy(session.state)
            session.prune({g.name: remove / g.size}, criterion, "local", 1, 0.999)
            session.reestimate_bn(bn_batches)
            session.finetune(epochs, lr_scale)
            row = _row(session, layer=g.name, removed=remove, stage="trial")
            row["accepted"] = session.task.drop(baseline, row[primary]) * 100 <= tolerance
            rows.append(row)
            log(row)
            if not row["accepted"]:
                session.state = saved
                break
            accepted_any = True
        if not accepted_any:
            break
    return rows
