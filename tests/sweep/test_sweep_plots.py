"""Sweep figures on hand-made rows: what is drawn where (lines, points, error bars, order)."""
import numpy as np
import pytest
from matplotlib.figure import Figure
from matplotlib.image import imread

from lightjax.sweep import plots, table

MACS = {(1.0, 16): 4_000_000, (1.0, 8): 1_000_000, (0.5, 16): 1_100_000, (0.5, 8): 280_000}
PARAMS = {1.0: 800_000, 0.5: 215_000}
TOP1 = {(1.0, 16): (0.80, 0.84), (1.0, 8): (0.70, 0.70), (0.5, 16): (0.60, 0.66),
        (0.5, 8): (0.40, 0.50)}


def alpha_rho_rows():
    rows = []
    for (alpha, rho), accs in TOP1.items():
        for seed, top1 in enumerate(accs):
            rows.append({"member": len(rows), "top1": top1, "status": "finished",
                         "config": {"model.alpha": alpha, "data.resolution": rho,
                                    "train.seed": seed},
                         "macs": MACS[alpha, rho], "params": PARAMS[alpha], "latency_ms": 1.0})
    return rows


def named_lines(ax):
    return {line.get_label(): (list(line.get_xdata()), list(line.get_ydata()))
            for line in ax.get_lines() if not line.get_label().startswith("_")}


def test_alpha_rho_tradeoff_lines_points_and_error_bars(tmp_path):
    fig = plots.alpha_rho_tradeoff(alpha_rho_rows(), tmp_path / "ar.png")
    assert isinstance(fig, Figure)
    macs_ax, params_ax = fig.axes
    assert macs_ax.get_xscale() == params_ax.get_xscale() == "log"
    # one line per alpha, x = MACs in increasing order, y = mean top-1 over the seeds (%)
    lines = named_lines(macs_ax)
    fit = [label for label in lines if label.startswith("fit: ")]
    assert len(fit) == 1 and "pts/decade, R²" in fit[0]  # the log-linear fit over all points
    expected = table.log_linear_fit(table.average_seeds(alpha_rho_rows()))
    assert fit[0] == f"fit: {100 * expected['slope']:+.1f} pts/decade, R² {expected['r2']:.2f}"
    del lines[fit[0]]
    assert set(lines) == {"alpha 1", "alpha 0.5"}
    assert lines["alpha 1"][0] == [1_000_000, 4_000_000]
    assert lines["alpha 1"][1] == pytest.approx([70.0, 82.0])
    assert lines["alpha 0.5"][0] == [280_000, 1_100_000]
    assert lines["alpha 0.5"][1] == pytest.approx([45.0, 63.0])
    # one error-bar point per config on each panel; bar = sample std over the two seeds
    for ax, xs in ((macs_ax, MACS.values()), (params_ax, [PARAMS[a] for a, _ in MACS])):
        assert len(ax.containers) == 4
        assert sorted(c.lines[0].get_xdata()[0] for c in ax.containers) == sorted(xs)
    bars = {c.lines[0].get_xdata()[0]: c for c in macs_ax.containers}
    segment = bars[280_000].lines[2][0].get_segments()[0]
    assert segment[1][1] - segment[0][1] == pytest.approx(2 * 100 * np.std([0.4, 0.5], ddof=1))
    segment = bars[1_000_000].lines[2][0].get_segments()[0]
    assert segment[1][1] == segment[0][1] == pytest.approx(70.0)  # identical seeds: std 0
    # the right panel joins the alphas of each resolution (params do not depend on it): one
    # labelled line per resolution, in the panel's legend
    joined = {line.get_label(): list(line.get_xdata()) for line in params_ax.get_lines()
              if not line.get_label().startswith("_")}
    assert sorted(joined.values()) == [[215_000, 800_000]] * 2
    assert all(label.startswith("resolution ") for label in joined)
    legend = [t.get_text() for t in params_ax.get_legend().get_texts()]
    assert sorted(legend) == sorted(joined)
    assert imread(tmp_path / "ar.png").shape[1] == 11 * plots.DPI


def test_alpha_rho_tradeoff_one_seed_has_no_error_bars():
    rows = [r for r in alpha_rho_rows() if r["config"]["train.seed"] == 0]
    fig = plots.alpha_rho_tradeoff(rows)
    assert not any(c.has_yerr for c in fig.axes[0].containers)
    assert "mean of 1 seed;" in fig.get_suptitle()


def test_alpha_rho_tradeoff_refuses_rows_it_cannot_draw():
    rows = alpha_rho_rows()
    rows[0]["config"]["model.activation"] = "swish"  # two configs at one (alpha, rho) point
    with pytest.raises(ValueError, match="also differ on model.activation"):
        plots.alpha_rho_tradeoff(rows)
    diverged = [dict(r, status="diverged") for r in alpha_rho_rows()]
    with pytest.raises(ValueError, match="no finished members to plot"):
        plots.alpha_rho_tradeoff(diverged)


def test_activation_study_sorted_with_seed_spread(tmp_path):
    acts = {"relu": (0.5, 0.7), "swish": (0.8, 0.9), "relu6": (0.1, 0.2)}
    rows = [{"member": i, "top1": top1, "status": "finished", "macs": 1, "params": 1,
             "config": {"model.activation": act, "train.seed": seed}}
            for i, (act, seed, top1) in enumerate(
                (a, s, t) for a, ts in acts.items() for s, t in enumerate(ts))]
    fig = plots.activation_study(rows, tmp_path / "act.png")
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["swish", "relu", "relu6"]
    assert [c.lines[0].get_xdata()[0] for c in ax.containers] == pytest.approx([85, 60, 15])
    seeds = sorted(x for line in ax.get_lines() if line.get_label() == "_seed"
                   for x in line.get_xdata())
    assert seeds == pytest.approx(sorted(100 * t for ts in acts.values() for t in ts))
    assert (tmp_path / "act.png").stat().st_size > 0


def test_activation_study_labels_other_varying_axes():
    rows = [{"member": i, "top1": 0.5 + 0.1 * i, "status": "finished", "macs": 1, "params": 1,
             "config": {"model.activation": "relu", "data.resolution": rho}}
            for i, rho in enumerate((8, 16))]
    labels = [t.get_text() for t in plots.activation_study(rows).axes[0].get_yticklabels()]
    assert labels == ["relu (resolution=16)", "relu (resolution=8)"]


def test_sensitivity_curves_draw_one_curve_per_group_from_the_baseline(tmp_path):
    rows = [dict(group="(none)", ratio=0.0, kept=None, top1=0.9, top5=1.0, loss=0.3,
                 top1_drop=0.0)]
    rows += [dict(group=g, ratio=r, kept=4, top1=0.9 - r * k, top5=1.0, loss=0.4,
                  top1_drop=r * k) for g, k in (("unit1/pw", 0.1), ("unit13/pw", 0.5))
             for r in (0.5, 0.9)]
    fig = plots.sensitivity_curves(rows, tmp_path / "curves.png")
    lines = fig.axes[0].get_lines()
    assert [ln.get_label() for ln in lines] == ["unit1/pw", "unit13/pw"]
    np.testing.assert_allclose(lines[1].get_xdata(), [0.0, 0.5, 0.9])
    np.testing.assert_allclose(lines[1].get_ydata(), [90.0, 65.0, 45.0])
    assert imread(tmp_path / "curves.png").shape[2] in (3, 4)
    assert isinstance(plots.sensitivity_curves(rows), Figure)  # without a path too
