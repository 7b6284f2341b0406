"""``lightjax prune`` / ``lightjax sensitivity`` on a trained digits run: schedules, compact
checkpoints that reload without masks, sensitivity tables, and bad input."""
import json
import os

import numpy as np
import pytest

from lightjax import cli
from lightjax.prune import schedules, sensitivity
from lightjax.prune.session import PruningSession
from lightjax.train import config as config_lib, run as run_lib


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """MobileNetV1 alpha 0.25 on 16x16 digits, 8 epochs (~95% test top-1)."""
    workdir = str(tmp_path_factory.mktemp("prune") / "base")
    cfg = config_lib.override(config_lib.load("digits:tiny"),
                              ["--config.train.epochs=8", "--config.train.batch_size=64"])
    summary = run_lib.train(cfg, workdir, progress=False)
    assert summary["top1"] > 0.85
    return workdir, summary


def run(capsys, *argv):
    status = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return status, out, err


def test_oneshot_cli_writes_a_compact_run_that_reloads(trained, capsys, tmp_path):
    workdir, base = trained
    out = tmp_path / "pruned"
    status, stdout, err = run(capsys, "prune", "--workdir", workdir, "--ratio", 0.5, "--epochs",
                              4, "--lr-scale", 0.5, "--out", out, "--no-progress")
    assert status == 0, err
    result = json.loads(stdout.strip().splitlines()[-1])
    assert "params 215,498 -> 58,818" in stdout  # every pointwise layer at half width
    assert result["after"]["params"] == 58_818 and result["after"]["macs"] < 0.35 * 797_824
    with open(out / "config.json") as f:
        widths = json.load(f)["model"]["widths"]
    assert widths == [8, 8, 16, 16, 32, 32, 64, 64, 64, 64, 64, 64, 128, 128]
    # the compact run reloads without any mask and evaluates to the reported accuracy
    metrics = run_lib.evaluate(str(out))
    assert metrics["top1"] == pytest.approx(result["after"]["top1"])
    # test-sized run (16x16, 8 + 4 epochs): within 10 points; the full-size figure (within 2
    # points) is in benchmarks/RESULTS.md
    assert result["after"]["top1"] >= base["top1"] - 0.10
    record = json.load(open(out / "prune.json"))
    assert [r["stage"] for r in record["history"]] == ["pruned", "fine-tuned"]
    assert record["kept"]["unit13/pw"] == 128


def test_schedules_reach_their_targets(trained):
    workdir, _ = trained
    session = PruningSession.open(workdir)
    rows = schedules.iterative(session, 0.4, rounds=2, epochs=0.2, bn_batches=2,
                               log=lambda r: None)
    assert [r["sparsity"] for r in rows] == pytest.approx([0.2, 0.4], abs=0.02)
    assert rows[1]["params"] < rows[0]["params"]

    session = PruningSession.open(workdir)
    rows = schedules.gradual(session, 0.5, epochs=1.0, frequency=5, ramp=0.5,
                             log=lambda r: None)
    assert rows[-1]["sparsity"] == pytest.approx(0.5, abs=0.02)
    assert schedules.polynomial_sparsity(0, 0.5, 0, 10) == 0.0
    assert schedules.polynomial_sparsity(5, 0.5, 0, 10) == pytest.approx(0.5 * (1 - 0.5 ** 3))
    assert schedules.polynomial_sparsity(12, 0.5, 0, 10) == 0.5


def test_pointwise_procedure(trained):
    workdir, _ = trained
    session = PruningSession.open(workdir)
    rows = schedules.pointwise(session, tolerance=100.0, max_n=2, epochs=0.1, max_layers=2,
                               bn_batches=0, log=lambda r: None)
    trials = [(r["layer"], r["removed"]) for r in rows[1:]]
    assert trials == [("unit13/pw", 2), ("unit13/pw", 4), ("unit12/pw", 2), ("unit12/pw", 4)]
    kept = session.masks
    assert kept["unit13/pw"].sum() == 256 - 4 and kept["unit12/pw"].sum() == 256 - 4
    assert rows[1]["params"] - rows[2]["params"] == 2 * (256 + 2 + 10)  # 2 more pw13 filters
    # a strict tolerance rejects the first trial and restores the weights
    session = PruningSession.open(workdir)
    params = session.state.params
    rows = schedules.pointwise(session, tolerance=-1.0, max_n=3, epochs=0.1, bn_batches=0,
                               log=lambda r: None)
    assert [r["accepted"] for r in rows[1:]] == [False]
    assert session.masks["unit13/pw"].all() and session.state.params is params


def test_sensitivity_cli_and_ratio_choice(trained, capsys, tmp_path):
    workdir, _ = trained
    out = tmp_path / "sens"
    status, stdout, err = run(capsys, "sensitivity", "--workdir", workdir, "--ratios",
                              "0.25,0.5,0.75", "--groups", "unit12/pw,unit13/pw", "--out", out,
                              "--tolerance", 2, "--cap", 0.7, "--no-progress")
    assert status == 0, err
    for name in ("sensitivity.csv", "sensitivity.json", "sensitivity.png", "ratios.json"):
        assert (out / name).stat().st_size > 0
    rows = json.load(open(out / "sensitivity.json"))
    assert len(rows) == 1 + 2 * 3 and rows[0]["group"] == "(none)"
    assert [r["kept"] for r in rows[1:4]] == [192, 128, 64]
    chosen = json.load(open(out / "ratios.json"))
    assert set(chosen) == {"unit12/pw", "unit13/pw"} and all(0 <= v <= 0.7 for v in chosen.values())
    # the same command again refuses to overwrite
    before = (out / "sensitivity.csv").read_bytes()
    status, _, err = run(capsys, "sensitivity", "--workdir", workdir, "--out", out)
    assert status == 2 and "already holds results" in err and len(err.splitlines()) == 1
    assert (out / "sensitivity.csv").read_bytes() == before
    # prune with the chosen ratios
    status, stdout, err = run(capsys, "prune", "--workdir", workdir, "--ratios",
                              out / "ratios.json", "--epochs", 0.2, "--out", tmp_path / "p2",
                              "--no-progress")
    assert status == 0, err


def test_choose_ratios_takes_the_largest_ratio_within_tolerance():
    rows = [dict(group="a", ratio=r, drop=d) for r, d in
            ((0.1, 0.0), (0.2, 0.004), (0.3, 0.02), (0.4, 0.001))] + \
           [dict(group="b", ratio=r, drop=0.0) for r in (0.1, 0.5, 0.8)] + \
           [dict(group="c", ratio=0.1, top1_drop=0.5)]  # a row written before ``drop`` existed
    assert sensitivity.choose_ratios(rows, 0.01, cap=0.7) == {"a": 0.2, "b": 0.5, "c": 0.0}


@pytest.mark.parametrize("args,message", [
    (["--ratio", "1.0"], "--ratio must be a number in [0, 1)"),
    (["--ratio", "-0.2"], "--ratio must be a number in [0, 1)"),
    (["--skip", "unit99/pw"], "no prunable layer, group or module path prefix named 'unit99/pw'"),
    (["--ratios", "RATIOS"], "cannot be pruned"),
    (["--max-ratio", "0.5,unit99/pw=0.2"], "no channel group or prunable layer named 'unit99/pw'"),
    (["--max-ratio", "1.5"], "--max-ratio must be a number in [0, 1)"),
    (["--max-ratio", "half"], "--max-ratio must be a number and/or GROUP=NUMBER pairs"),
])
def test_prune_bad_input_writes_nothing(trained, capsys, tmp_path, args, message):
    workdir, _ = trained
    ratios = tmp_path / "r.json"
    ratios.write_text(json.dumps({"stem": 0.5}))
    args = [str(ratios) if a == "RATIOS" else a for a in args]
    out = tmp_path / "never"
    listing = sorted(os.listdir(workdir))
    status, _, err = run(capsys, "prune", "--workdir", workdir, "--out", out, *args)
    assert status == 2 and message in err
    assert len(err.strip().splitlines()) == 1
    assert not out.exists() and sorted(os.listdir(workdir)) == listing


def test_prune_refuses_existing_out_and_foreign_masks(trained, capsys, tmp_path):
    workdir, _ = trained
    out = tmp_path / "full"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    status, _, err = run(capsys, "prune", "--workdir", workdir, "--out", out)
    assert status == 2 and "already exists and is not empty" in err
    assert (out / "keep.txt").read_text() == "mine"
    status, _, err = run(capsys, "prune", "--workdir", tmp_path / "nothing")
    assert status == 2 and "holds no lightjax run" in err
    # masks of another architecture
    session = PruningSession.open(workdir)
    with pytest.raises(ValueError, match="another architecture"):
        session.set_masks({"block1/project": np.ones(8)})
