"""Reading sweep results and sensitivity tables; seed averaging (hand-made rows)."""
import json
import math

import pytest

from lightjax.sweep import table


def row(member, top1, status="finished", **config):
    config = {k.replace("__", "."): v for k, v in config.items()}
    return {"member": member, "config": config, "group": "group000", "loss": 1.0, "top1": top1,
            "top5": 1.0, "status": status, "params": 1000, "macs": 5000, "latency_ms": 0.5,
            "seconds": 1.0, "members_in_group": 2}


ROWS = [row(0, 0.50, model__alpha=0.5, train__seed=0),
        row(1, 0.60, model__alpha=0.5, train__seed=1),
        row(2, 0.30, model__alpha=0.25, train__seed=0),
        row(3, math.nan, "diverged", model__alpha=0.25, train__seed=1),
        row(4, 0.20, model__alpha=0.25, data__resolution=8, train__seed=0)]


def test_load_rows_from_workdir_or_file_in_member_order(tmp_path):
    lines = [json.dumps(r) for r in ROWS[::-1]]
    (tmp_path / "results.jsonl").write_text("\n\n".join(lines) + "\n")  # blank lines skipped
    assert [r["member"] for r in table.load_rows(tmp_path)] == [0, 1, 2, 3, 4]
    assert table.load_rows(str(tmp_path / "results.jsonl"))[1]["top1"] == 0.60


def test_load_rows_errors(tmp_path):
    with pytest.raises(ValueError, match="no sweep results at .*results.jsonl"):
        table.load_rows(tmp_path)
    (tmp_path / "results.jsonl").write_text("\n")
    with pytest.raises(ValueError, match="no results yet"):
        table.load_rows(tmp_path)
    (tmp_path / "results.jsonl").write_text(json.dumps(ROWS[0]) + "\n{oops\n")
    with pytest.raises(ValueError, match=r"results.jsonl:2 is not a JSON row"):
        table.load_rows(tmp_path)
    (tmp_path / "results.jsonl").write_text('{"member": 0}\n')
    with pytest.raises(ValueError, match="not a sweep results row"):
        table.load_rows(tmp_path)


def test_axis_values_and_group_by():
    assert table.axis_values(ROWS, "model.alpha") == [0.25, 0.5]
    assert table.axis_values(ROWS, "data.resolution") == [None, 8]  # None: the base value
    groups = table.group_by(ROWS, "data.resolution")
    assert list(groups) == [None, 8]
    assert [r["member"] for r in groups[None]] == [0, 1, 2, 3] and len(groups[8]) == 1


def test_average_seeds_mean_std_and_diverged():
    points = table.average_seeds(ROWS)
    assert [p["config"] for p in points] == [{"model.alpha": 0.5}, {"model.alpha": 0.25},
                                            {"model.alpha": 0.25, "data.resolution": 8}]
    a, b, c = points
    assert a["mean"] == pytest.approx(0.55) and a["std"] == pytest.approx(0.0707107, rel=1e-5)
    assert a["seeds"] == [0, 1] and a["n"] == 2 and a["members"] == [0, 1]
    assert b["mean"] == 0.30 and b["std"] == 0.0 and b["n"] == 1 and b["diverged"] == 1
    assert c["mean"] == 0.20 and c["values"] == [0.20]
    assert a["macs"] == 5000 and a["params"] == 1000 and a["latency_ms"] == 0.5
    everything_diverged = table.average_seeds([ROWS[3]])[0]
    assert math.isnan(everything_diverged["mean"]) and everything_diverged["n"] == 0


def test_log_linear_fit_of_the_metric_against_log_macs():
    points = [{"macs": 1e6, "params": 10, "mean": 0.50}, {"macs": 1e7, "params": 20, "mean": 0.60},
              {"macs": 1e8, "params": 40, "mean": 0.70}, {"macs": 1e5, "mean": float("nan")}]
    fit = table.log_linear_fit(points)
    assert fit["n"] == 3 and fit["slope"] == pytest.approx(0.10)  # per decade of MACs
    assert fit["intercept"] == pytest.approx(-0.10) and fit["r2"] == pytest.approx(1.0)
    bent = table.log_linear_fit(points[:2] + [{"macs": 1e8, "mean": 0.62}])
    # least squares by hand: u = 6, 7, 8; v = .50, .60, .62 -> slope 0.06, R^2 = 0.0072/0.0083
    assert bent["slope"] == pytest.approx(0.06) and bent["r2"] == pytest.approx(0.0072 / 0.00827,
                                                                                rel=1e-3)
    assert math.isnan(table.log_linear_fit(points[:1])["slope"])
