"""A sweep run: results table, kill-and-resume without training a member twice, refusal of a
workdir that holds another sweep."""
import json

import pytest

from lightjax.sweep import Sweep, product, runner


def _sweep(lrs=(0.1, 0.05)):
    return Sweep("digits:tiny", product({"train.seed": [0, 1]}, {"train.lr": list(lrs)},
                                        {"train.epochs": [1], "data.resolution": [8]}))


def test_kill_and_resume(tmp_path):
    workdir = str(tmp_path / "s")
    sweep = _sweep()
    partial = runner.run(sweep, workdir, max_members=2, progress=False, max_steps=5)
    assert partial == []  # every group stopped early (checkpointed)
    rows = runner.run(sweep, workdir, max_members=2, progress=False)
    assert [r["member"] for r in rows] == [0, 1, 2, 3]
    assert all(r["status"] == "finished" and 0 <= r["top1"] <= 1 for r in rows)
    assert rows[0]["params"] == 215_498 and rows[0]["latency_ms"] > 0
    assert rows[0]["config"] == {"train.seed": 0, "train.lr": 0.1, "train.epochs": 1,
                                 "data.resolution": 8}
    lines = (tmp_path / "s" / "results.jsonl").read_text().splitlines()
    assert len(lines) == 4
    # running again trains nothing and returns the same table
    again = runner.run(sweep, workdir, max_members=2, progress=False)
    assert again == rows
    assert len((tmp_path / "s" / "results.jsonl").read_text().splitlines()) == 4
    # a different sweep in the same workdir is refused, nothing is touched
    before = (tmp_path / "s" / "sweep.json").read_text()
    with pytest.raises(ValueError, match="holds another sweep"):
        runner.run(_sweep((0.2,)), workdir, progress=False)
    assert (tmp_path / "s" / "sweep.json").read_text() == before
    assert json.loads(lines[0])["member"] == 0
