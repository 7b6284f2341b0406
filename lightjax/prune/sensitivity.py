"""Sensitivity analysis (YOLOv3-Mobile paper): prune one group at a time, measure the metric loss.

For each prunable group and each ratio (0.1 ... 0.9 by default) the group alone is pruned by the
criterion's rank (L1 by default), optionally BN statistics are re-estimated on a few batches, and
the model is evaluated without retraining. :func:`choose_ratios` then picks, per group, the largest
ratio whose loss of the task's primary metric (top-1, mIoU, ...) stays within a tolerance, capped. Results are a table (CSV and JSON) and a
plot with one curve per group.
"""
from __future__ import annotations

import csv
import json
import os
from typing import Any, Sequence

from lightjax.prune import ranking
from lightjax.errors import ValidationError

DEFAULT_RATIOS = tuple(round(0.1 * i, 1) for i in range(1, 10))
#: leading columns; the task's metrics (e.g. top1, top5, loss; miou, pixel_acc) follow, then the
#: drop of the primary metric (``drop``, positive = worse) also under ``<metric>_drop``.
FIELDS = ("group", "ratio", "kept", "metric")


def analyze(session, ratios: Sequence[float] = DEFAULT_RATIOS, criterion: str = "l1",
            groups: Sequence[str] | None = None, bn_batches: int = 0, split: str = "test",
            log=None) -> list[dict[str, Any]]:
    """Rows ``{group, ratio, kept, metric, <the task's metrics>, drop, <metric>_drop}``; ratio 0 is
    the baseline row; ``metric`` names the task's primary metric and ``drop`` its loss against the
    baseline (positive = worse, whatever the metric's direction). The session is left as it was."""
    ratios = [ranking.check_ratio(r) for r in ratios]
    if groups:  # names, layers or module-path prefixes; a prefix skips what cannot be pruned
        names = []
        for g in session.groups.select(groups):
            if g.prunable:
                names.append(g.name)
            elif g.name in groups or any(layer in groups for layer in g.layers):
                raise ValidationError(f"group {g.name} cannot be pruned: {g.reason}")
        if not names:
            raise ValidationError(f"groups {', '.join(groups)} select no prunable group")
    else:
        names = [g.name for g in session.groups.prunable]
    start_state, start_masks = session.state, session.masks
    base = session.evaluate(split)
    task = session.task
    primary = task.primary

    def row(group, ratio, kept, m):
        drop = task.drop(base[primary], m[primary])
        scalars = {k: v for k, v in m.items() if isinstance(v, float)}
        return dict(group=group, ratio=ratio, kept=kept, metric=primary, **scalars, drop=drop,
                    **{f"{primary}_drop": drop})

    rows = [row("(none)", 0.0, None, base)]
    scores = session.scores(criterion)
    for name in names:
        for r in ratios:
            session.state = start_state
            new = ranking.select(session.groups, start_masks, scores, {name: r}, "local", 1,
                                 0.999)
            session.set_masks(new)
            session.reestimate_bn(bn_batches)
            m = session.evaluate(split)
            rows.append(row(name, r, int(new[name].sum()), m))
            if log:
                log(rows[-1])
    session.state = start_state
    return rows


def _drop(row: dict[str, Any]) -> float:
    """The primary metric's drop of a row (rows written before ``drop`` existed: ``top1_drop``)."""
    return float(row["drop"] if "drop" in row else row["top1_drop"])


def metric_of(rows: Sequence[dict[str, Any]]) -> str:
    """The primary metric the rows were measured with (``top1`` for old files)."""
    return str(rows[0].get("metric") or "top1") if rows else "top1"


def choose_ratios(rows: Sequence[dict[str, Any]], tolerance: float,
                  cap: float = 0.7) -> dict[str, float]:
    """Per group, the largest ratio (<= ``cap``) whose metric drop is <= ``tolerance`` (a fraction,
    e.g. 0.01 = 1 point) at that ratio *and every smaller one*; 0.0 when none qualifies."""
    if tolerance < 0:
        raise ValidationError(f"tolerance must be >= 0, got {tolerance}")
    ranking.check_ratio(cap, "cap")
    by_group: dict[str, list[dict]] = {}
    for row in rows:
        if row["group"] != "(none)":
            by_group.setdefault(row["group"], []).append(row)
    chosen = {}
    for name, group_rows in by_group.items():
        best = 0.0
        for row in sorted(group_rows, key=lambda r: r["ratio"]):
            if row["ratio"] > cap or _drop(row) > tolerance:
                break
            best = row["ratio"]
        chosen[name] = best
    return chosen


def save(rows: Sequence[dict[str, Any]], out_dir: str) -> list[str]:
    """Write ``sensitivity.csv``, ``sensitivity.json`` and ``sensitivity.png`` into ``out_dir``."""
    os.makedirs(out_dir, exist_ok=True)
    paths = [os.path.join(out_dir, f"sensitivity.{ext}") for ext in ("csv", "json", "png")]
    with open(paths[0], "w", newline="") as f:
        fields = list(FIELDS) + [k for k in rows[0] if k not in FIELDS] if rows else list(FIELDS)
        writer = csv.DictWriter(f, fields)
        writer.writeheader()
        writer.writerows(rows)
    with open(paths[1], "w") as f:
        json.dump(list(rows), f, indent=1)
    plot(rows, paths[2])
    return paths


def plot(rows: Sequence[dict[str, Any]], path: str | os.PathLike | None = None):
    """One curve per group: the primary metric (percent; top-1, mIoU, ...) against the fraction of the group's filters pruned
    (no retraining), each starting at the unpruned baseline. Returns the matplotlib Figure (no
    pyplot: safe headless and in notebooks) and writes it as a PNG when ``path`` is given."""
    from matplotlib import colormaps
    from matplotlib.figure import Figure

    base = next((r for r in rows if r["group"] == "(none)"), None)
    metric = metric_of(rows)
    fig = Figure(figsize=(7, 4.5))
    ax = fig.add_subplot()
    groups = []
    for r in rows:
        if r["group"] != "(none)" and r["group"] not in groups:
            groups.append(r["group"])
    colors = colormaps["tab20" if len(groups) > 10 else "tab10"].colors
    for i, name in enumerate(groups):
        pts = sorted((r["ratio"], 100 * r[metric]) for r in rows if r["group"] == name)
        if base is not None:
            pts = [(0.0, 100 * base[metric])] + pts
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", ms=3, label=name,
                color=colors[i % len(colors)], linestyle="-" if i < 20 else "--")
    ax.set_xlabel("fraction of the group's filters pruned (no retraining)")
    ax.set_ylabel({"top1": "top-1 accuracy", "miou": "mean IoU"}.get(metric, metric) + " (%)")
    ax.set_title("Pruning sensitivity per layer")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=6, ncol=2)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=120)
    return fig


def _number(text: str) -> Any:
    if text == "":
        return None
    try:
        return int(text)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            return text


def load(source: str | os.PathLike) -> list[dict[str, Any]]:
    """Rows ``{group, ratio, kept, metric, <metrics>, drop}`` written by :func:`save`
    (``source``: its output directory, ``sensitivity.json`` or ``sensitivity.csv``); ``ratio`` is
    the fraction of a group's filters pruned, accuracies are fractions (0..1)."""
    path = os.fspath(source)
    if os.path.isdir(path):
        path = os.path.join(path, "sensitivity.json")
    if not os.path.isfile(path):
        raise ValidationError(f"no sensitivity results at {path}: run `lightjax sensitivity --workdir "
                         f"RUN` and pass RUN/sensitivity")
    with open(path, newline="") as f:
        if path.endswith(".csv"):
            rows = [{k: (v if k == "group" else _number(v)) for k, v in r.items()}
                    for r in csv.DictReader(f)]
        else:
            rows = json.load(f)
    if not rows:
        raise ValidationError(f"{path} holds no sensitivity rows")
    return rows
