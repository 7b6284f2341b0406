"""The second task end to end: the shapes segmentation config trains, evaluates (mIoU), resumes,
prunes with mIoU as the metric, and sweeps over alpha — all through the one training loop."""
import json
import re

import pytest

from lightjax import cli
from lightjax.sweep import Sweep, product, runner, spec
from lightjax.train import config as config_lib
from lightjax.train import run as run_lib

TINY = ["--config", "shapes_segmentation:tiny", "--no-progress"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    work = tmp_path_factory.mktemp("seg") / "run"
    assert cli.main(["train", "--workdir", str(work), *TINY, "--config.train.epochs=2"]) == 0
    return work


def test_segmentation_run_reports_miou_and_eval_reproduces_it(trained, capsys):
    summary = json.loads((trained / "summary.json").read_text())
    assert summary["task"] == "segmentation" and summary["metric"] == "miou"
    assert 0.0 <= summary["miou"] <= 1.0 and 0.0 <= summary["pixel_acc"] <= 1.0
    assert summary["count"] == 32 and summary["pixels"] > 0
    rows = [json.loads(line) for line in (trained / "metrics.jsonl").open()]
    assert [r["epoch"] for r in rows] == [1, 2] and "test_miou" in rows[-1]
    assert "train_pixel_acc" in rows[-1]
    capsys.readouterr()
    assert cli.main(["eval", "--workdir", str(trained)]) == 0
    out = capsys.readouterr().out
    assert "mIoU" in out
    assert json.loads(out.splitlines()[-1])["miou"] == pytest.approx(summary["miou"])


def test_segmentation_resume_equals_uninterrupted(trained, tmp_path):
    cfg = config_lib.override(config_lib.load("shapes_segmentation:tiny"),
                              ["--config.train.epochs=2"])
    first = run_lib.train(cfg, str(tmp_path / "r"), progress=False, max_steps=5)
    assert not first["finished"]
    second = run_lib.train(cfg, str(tmp_path / "r"), progress=False)
    full = json.loads((trained / "summary.json").read_text())
    assert second["miou"] == pytest.approx(full["miou"], abs=1e-6)
    assert second["loss"] == pytest.approx(full["loss"], rel=1e-5)


def test_pruning_a_segmentation_run_uses_miou(trained, tmp_path, capsys):
    out = tmp_path / "pruned"
    capsys.readouterr()
    status = cli.main(["prune", "--workdir", str(trained), "--ratio", "0.5", "--epochs", "0.5",
                       "--out", str(out), "--no-progress"])
    assert status == 0
    result = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert result["after"]["params"] < result["before"]["params"]
    assert "miou" in result["after"] and "miou" in result["before"]
    pruned = json.loads((out / "prune.json").read_text())
    assert pruned["metric"] == "miou"
    assert cli.main(["eval", "--workdir", str(out)]) == 0  # the compact model reloads


def test_alpha_sweep_on_segmentation(tmp_path):
    # the bundled alpha sweep: one group per alpha, the wider net costs more (counted abstractly;
    # the FCN is built at every alpha)
    plan = runner.describe_plan(spec.load("shapes_segmentation_alpha:tiny")).splitlines()
    assert plan[0].startswith("2 members in 2 groups, 2 compiled programs")
    costs = [[int(n.replace(",", "")) for n in re.findall(r"([\d,]+) (?:MACs|params)", line)]
             for line in plan[1:]]
    assert "model.alpha=0.5" in plan[1] and "model.alpha=0.25" in plan[2]
    assert costs[0][0] > costs[1][0] and costs[0][1] > costs[1][1]
    # trained: one group (one compiled program) of two vmapped members of the tiny config
    sweep = Sweep("shapes_segmentation:tiny", product({"train.seed": [0, 1]}))
    rows = runner.run(sweep, str(tmp_path / "sweep"), progress=False)
    assert [r["config"]["train.seed"] for r in rows] == [0, 1]
    assert all(r["metric"] == "miou" and r["status"] == "finished" for r in rows)
    assert all(0.0 <= r["miou"] <= 1.0 and 0.0 <= r["pixel_acc"] <= 1.0 for r in rows)
    assert rows[0]["group"] == rows[1]["group"] and rows[0]["members_in_group"] == 2
    assert "miou" in runner.format_table(rows).splitlines()[0]
