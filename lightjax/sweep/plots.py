"""Trade-off figures of sweep results (``matplotlib`` Figures without pyplot: safe headless).

- :func:`alpha_rho_tradeoff`: MobileNet paper Figures 4/5, top-1 against MACs and parameters.
- :func:`activation_study`: top-1 per activation with the spread over seeds.
- :func:`sensitivity_curves`: ``lightjax sensitivity``'s per-group pruning curves.

Every function takes result rows (:mod:`lightjax.sweep.table`), returns the Figure and, given
``path``, also writes it as a PNG. Seeds are averaged (:func:`table.average_seeds`); error bars are
the standard deviation over seeds (drawn when a config has more than one finished seed).
"""
from __future__ import annotations

import math
import os
from typing import Any, Sequence

from matplotlib import ticker
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from lightjax.sweep import table
from lightjax.errors import ValidationError

ALPHA = "model.alpha"
RESOLUTION = "data.resolution"
ACTIVATION = "model.activation"
#: axis wording of the tasks' primary metrics
METRIC_NAMES = {"top1": "top-1 accuracy", "miou": "mean IoU"}
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "<", ">")
DPI = 120


def _save(fig: Figure, path: str | os.PathLike | None) -> Figure:
    if path is not None:
        fig.savefig(path, dpi=DPI)
    return fig


def _name(value: Any, what: str) -> str:
    """Legend text for an axis value; ``None`` is the base config's value."""
    if value is None:
        return f"{what} (base)"
    return f"{what} {value:g}" if isinstance(value, float) else f"{what} {value}"


def _points(rows: Sequence[table.Row], what: str) -> list[table.Row]:
    """Seed-averaged configs with at least one finished member; ``ValueError`` when none."""
    points = [p for p in table.average_seeds(rows) if p["n"]]
    if not points:
        raise ValidationError(f"{what}: no finished members to plot ({len(rows)} rows)")
    return points


def alpha_rho_tradeoff(rows: Sequence[table.Row], path: str | os.PathLike | None = None) -> Figure:
    """The task's metric (top-1, mIoU, mAP@0.5; %) against MACs (left) and parameters (right), both on
    log x axes.

    Left: one line per width multiplier alpha (``model.alpha``) through its resolutions
    (``data.resolution``, one marker each), as in MobileNet Figure 4 (accuracy vs multiply-adds,
    log-linear), with the least-squares log-linear fit over all points (dotted; slope in points
    per decade of MACs and R² in the legend, :func:`table.log_linear_fit`). Right: the same
    points against parameter count (Figure 5); parameters do not
    depend on the resolution, so the lines there join the alphas of one resolution (one labelled,
    dashed line per resolution, drawn with that resolution's marker).
    """
    points = _points(rows, "alpha_rho_tradeoff")
    metric = METRIC_NAMES.get(table.metric_of(rows), table.metric_of(rows))
    others = sorted(k for k in {k for p in points for k in p["config"]} - {ALPHA, RESOLUTION}
                    if len({str(p["config"].get(k)) for p in points}) > 1)
    if others:
        raise ValidationError(f"alpha_rho_tradeoff: the rows also differ on {', '.join(others)}; "
                         f"plot one value of each at a time")
    alphas = table.axis_values([{"config": p["config"]} for p in points], ALPHA)
    rhos = table.axis_values([{"config": p["config"]} for p in points], RESOLUTION)
    marker = {rho: MARKERS[i % len(MARKERS)] for i, rho in enumerate(rhos)}
    colors = {a: f"C{i % 10}" for i, a in enumerate(alphas)}
    seeds = max((p["n"] for p in points), default=0)

    fig = Figure(figsize=(11, 4.5))
    ax_macs, ax_params = fig.subplots(1, 2, sharey=True)
    for alpha in alphas:
        line = sorted((p for p in points if p["config"].get(ALPHA) == alpha),
                      key=lambda p: p["macs"])
        ax_macs.plot([p["macs"] for p in line], [100 * p["mean"] for p in line], "-",
                     color=colors[alpha], label=_name(alpha, "alpha"))
    styles = ("--", ":", "-.", (0, (5, 1)), (0, (3, 1, 1, 1)))
    for i, rho in enumerate(rhos):
        line = sorted((p for p in points if p["config"].get(RESOLUTION) == rho),
                      key=lambda p: p["params"])
        ax_params.plot([p["params"] for p in line], [100 * p["mean"] for p in line],
                       linestyle=styles[i % len(styles)], marker=marker[rho], mfc="none",
                       color="0.45", lw=1, label=_name(rho, "resolution"))
    for p in points:
        alpha, rho = p["config"].get(ALPHA), p["config"].get(RESOLUTION)
        err = 100 * p["std"] if p["n"] > 1 else None
        for ax, x in ((ax_macs, p["macs"]), (ax_params, p["params"])):
            ax.errorbar(x, 100 * p["mean"], yerr=err, fmt=marker[rho], color=colors[alpha],
                        capsize=3, label="_point")
    fit = table.log_linear_fit(points, "macs")
    if fit["n"] > 2 and math.isfinite(fit["slope"]):
        lo, hi = min(p["macs"] for p in points), max(p["macs"] for p in points)
        xs = [lo, hi]
        ax_macs.plot(xs, [100 * (fit["slope"] * math.log10(v) + fit["intercept"]) for v in xs],
                     color="0.6", lw=1, ls=(0, (1, 2)),
                     label=f"fit: {100 * fit['slope']:+.1f} pts/decade, R² {fit['r2']:.2f}")
    for ax, what in ((ax_macs, "multiply-accumulates per image"), (ax_params, "parameters")):
        ax.set_xscale("log")
        ax.xaxis.set_major_locator(ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_major_formatter(ticker.EngFormatter(sep=""))  # 200k, 1M, ...
        ax.xaxis.set_minor_formatter(ticker.NullFormatter())
        ax.set_xlabel(f"{what} (log scale)")
        ax.grid(alpha=0.3, which="both")
    ax_macs.set_ylabel(f"{metric} (%)")
    ax_macs.set_title(f"{metric} vs MACs: one line per alpha")
    ax_params.set_title(f"{metric} vs parameters: one line per resolution")
    ax_params.legend(fontsize=8, title="lines (grey)", title_fontsize=8)
    rho_handles = [Line2D([], [], ls="", marker=marker[r], color="0.3", label=_name(r, "rho"))
                   for r in rhos]
    ax_macs.legend(handles=ax_macs.get_legend_handles_labels()[0] + rho_handles, fontsize=8)
    fig.suptitle(f"Width multiplier x resolution trade-off (mean of {seeds} seed"
                 f"{'s' if seeds != 1 else ''}; bars: std)")
    fig.tight_layout()
    return _save(fig, path)


def activation_study(rows: Sequence[table.Row], path: str | os.PathLike | None = None) -> Figure:
    """Top-1 (%) per activation (``model.activation``), best first: the seed mean (large dot, bar:
    std over seeds) and each seed (small grey dots). Configs that also differ on other axes are
    labelled with those axes' values."""
    points = _points(rows, "activation_study")
    points.sort(key=lambda p: -p["mean"])
    varying = [k for k in dict.fromkeys(k for p in points for k in p["config"])
               if k != ACTIVATION and len({str(p["config"].get(k)) for p in points}) > 1]

    def label(p: table.Row) -> str:
        extra = ", ".join(f"{k.split('.')[-1]}={p['config'].get(k)}" for k in varying)
        name = str(p["config"].get(ACTIVATION, "(base)"))
        return f"{name} ({extra})" if extra else name

    fig = Figure(figsize=(7, 0.9 + 0.45 * max(len(points), 1)))
    ax = fig.subplots()
    ys = list(range(len(points)))[::-1]  # best on top
    for y, p in zip(ys, points):
        ax.plot([100 * v for v in p["values"]], [y] * len(p["values"]), ".", color="0.6",
                label="_seed")
        ax.errorbar(100 * p["mean"], y, xerr=100 * p["std"] if p["n"] > 1 else None, fmt="o",
                    color="C0", capsize=3, label="_mean")
    ax.set_yticks(ys, [label(p) for p in points])
    ax.set_xlabel("top-1 accuracy (%)")
    ax.set_ylim(-0.7, len(points) - 0.3)
    ax.grid(alpha=0.3, axis="x")
    seeds = max((p["n"] for p in points), default=0)
    ax.set_title(f"Activation study: top-1, mean of {seeds} seed{'s' if seeds != 1 else ''} "
                 f"(grey: each seed)")
    fig.tight_layout()
    return _save(fig, path)


def sensitivity_curves(rows: Sequence[table.Row],
                       path: str | os.PathLike | None = None) -> Figure:
    """Top-1 (%) against the fraction of a group's filters pruned (no retraining), one curve per
    group from the baseline: ``lightjax sensitivity``'s figure
    (:func:`lightjax.prune.sensitivity.plot`). The top-1 drop at a ratio is the curve's fall from
    its start."""
    from lightjax.prune import sensitivity

    return sensitivity.plot(rows, path)
