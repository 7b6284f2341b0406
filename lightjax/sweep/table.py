"""Read a sweep's results table (``results.jsonl``) for the figures.

A sweep row (see :mod:`lightjax.sweep.runner`) is ``{member, config, group, loss, top1, top5,
status, params, macs, latency_ms, seconds, members_in_group}``; ``config`` holds the member's axis
overrides (``{"model.alpha": 0.5, "data.resolution": 16, "train.seed": 0}``), ``top1``/``top5`` are
fractions (0..1), ``macs`` multiply-accumulates per image, ``latency_ms`` milliseconds.
"""
from __future__ import annotations

import json
import math
import os
from typing import Any, Hashable, Sequence

import numpy as np
from lightjax.errors import ValidationError

Row = dict[str, Any]
SEED = "train.seed"


def load_rows(source: str | os.PathLike) -> list[Row]:
    """The rows of ``<workdir>/results.jsonl`` (``source`` a sweep workdir or the ``.jsonl`` file),
    in member order. ``ValueError`` when the file is missing, empty or not JSON lines."""
    path = os.fspath(source)
    if os.path.isdir(path):
        path = os.path.join(path, "results.jsonl")
    if not os.path.isfile(path):
        raise ValidationError(f"no sweep results at {path}: run `lightjax sweep SWEEP.py --workdir DIR` "
                         f"and pass DIR (or DIR/results.jsonl)")
    rows = []
    with open(path) as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise ValidationError(f"{path}:{number} is not a JSON row: {err}") from None
            if not isinstance(row, dict) or "config" not in row or \
                    row.get("metric", "top1") not in row:
                raise ValidationError(f"{path}:{number} is not a sweep results row (needs config "
                                      f"and its metric, e.g. top1)")
            rows.append(row)
    if not rows:
        raise ValidationError(f"{path} holds no results yet (no member has finished)")
    return sorted(rows, key=lambda r: r.get("member", 0))


def _order(value: Any) -> tuple:
    return (value is not None, value)


def axis_values(rows: Sequence[Row], key: str) -> list[Any]:
    """Distinct values of the axis ``key`` (e.g. ``"model.alpha"``) over ``rows``, sorted; ``None``
    (first) stands for rows whose config does not set ``key`` (the base config's value)."""
    return sorted({row["config"].get(key) for row in rows}, key=_order)


def group_by(rows: Sequence[Row], key: str) -> dict[Any, list[Row]]:
    """``rows`` split by their value of the axis ``key``, in :func:`axis_values` order."""
    groups: dict[Any, list[Row]] = {value: [] for value in axis_values(rows, key)}
    for row in rows:
        groups[row["config"].get(key)].append(row)
    return groups


def _config_key(config: dict[str, Any]) -> Hashable:
    return json.dumps({k: v for k, v in config.items() if k != SEED}, sort_keys=True, default=list)


def metric_of(rows: Sequence[Row]) -> str:
    """The task's primary metric of the rows (``'top1'`` for classification and old tables)."""
    return str(rows[0].get("metric") or "top1") if rows else "top1"


def log_linear_fit(points: Sequence[Row], x: str = "macs") -> dict[str, float]:
    """Least-squares fit of the seed-averaged metric against log10 of ``x`` (``'macs'`` or
    ``'params'``) over ``points`` (:func:`average_seeds` rows with a finite mean): MobileNet's
    Figure 4 trend. ``slope`` is metric units per decade (x10) of ``x``, ``intercept`` the value
    at 1, ``r2`` the coefficient of determination, ``n`` the points used."""
    used = [(math.log10(p[x]), p["mean"]) for p in points
            if p.get(x) and p.get("mean") is not None and math.isfinite(p["mean"])]
    if len(used) < 2 or len({u for u, _ in used}) < 2:
        return {"slope": math.nan, "intercept": math.nan, "r2": math.nan, "n": len(used)}
    u, v = np.array(used, np.float64).T
    slope, intercept = np.polyfit(u, v, 1)
    residual = float(((v - (slope * u + intercept)) ** 2).sum())
    total = float(((v - v.mean()) ** 2).sum())
    r2 = 1.0 - residual / total if total > 0 else math.nan
    return {"slope": float(slope), "intercept": float(intercept), "r2": r2, "n": len(used)}


def average_seeds(rows: Sequence[Row], metric: str | None = None) -> list[Row]:
    """One row per config, over members that differ only by ``train.seed``, in first-member order.

    Each row: ``config`` (without the seed), ``seeds``, ``values`` (``metric`` of each finished
    member), ``n`` (finished members), ``diverged`` (count), ``mean`` and ``std`` of ``metric``
    (sample std, ddof=1; 0 for one seed; NaN mean when no member finished), ``params``, ``macs``,
    ``latency_ms`` (mean, ms) and ``members``.
    """
    metric = metric or metric_of(rows)
    by_config: dict[Hashable, list[Row]] = {}
    for row in rows:
        by_config.setdefault(_config_key(row["config"]), []).append(row)
    out = []
    for members in by_config.values():
        finished = [r for r in members if r.get("status", "finished") == "finished"
                    and r.get(metric) is not None and math.isfinite(r[metric])]
        values = np.array([r[metric] for r in finished], np.float64)
        first = members[0]
        out.append({
            "config": {k: v for k, v in first["config"].items() if k != SEED},
            "seeds": [r["config"].get(SEED) for r in members],
            "values": values.tolist(),
            "n": len(finished),
            "diverged": len(members) - len(finished),
            "mean": float(values.mean()) if len(values) else math.nan,
            "std": float(values.std(ddof=1)) if len(values) > 1 else 0.0,
            "params": first.get("params"),
            "macs": first.get("macs"),
            "latency_ms": float(np.mean([r.get("latency_ms", math.nan) for r in members])),
            "members": [r.get("member") for r in members],
        })
    return out
