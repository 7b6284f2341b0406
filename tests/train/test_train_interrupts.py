"""Runs that survive interruption: SIGINT/SIGTERM mid-training and mid-sweep (subprocesses),
resume to the same result, the workdir lock, damaged and deleted checkpoints, no duplicate
epochs in metrics.jsonl, invalid numbers refused before anything is written."""
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import xla_cache
from lightjax import cli
from lightjax.train import config as config_lib
from lightjax.train import run as run_lib

# 8x8 digits, alpha 0.25, batch 32: 44 steps per epoch, a few ms each. Every run below but the
# lock test's is this config (or differs only in checkpointing), so they all run one compiled
# program (the epochs fix the learning-rate schedule), compiled once thanks to the compilation
# cache (tests/conftest.py), subprocesses included. 5 epochs: an interrupted run still has 4 to
# go when it is signalled.
EPOCHS = 5
STEPS = 44  # per epoch
SMALL = {"data.resolution": 8, "train.batch_size": 32, "train.epochs": EPOCHS,
         "train.checkpoint_every_epochs": 1, "train.warmup_epochs": 0.0}
RANDOM = random.Random(20261203)


def overrides(**extra):
    return [f"--config.{k}={v}" for k, v in {**SMALL, **extra}.items()]


def small_config(**extra):
    return config_lib.override(config_lib.load("digits:tiny"), overrides(**extra))


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The uninterrupted run of :data:`SMALL` (in this process): (workdir, summary)."""
    work = tmp_path_factory.mktemp("reference") / "run"
    return work, run_lib.train(small_config(), str(work), progress=False)


def lightjax(*argv):
    # this process compiles nothing while the subprocess runs: it may share the compilation cache
    env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONUNBUFFERED="1", **xla_cache.subprocess_env())
    return subprocess.Popen([sys.executable, "-m", "lightjax", *argv], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)


def wait_for(predicate, proc, timeout=240.0):
    end = time.time() + timeout
    while time.time() < end:
        if predicate():
            return True
        if proc.poll() is not None:
            return False
        time.sleep(0.05)
    raise AssertionError("timed out waiting for the subprocess")


def epochs_logged(workdir):
    path = os.path.join(workdir, "metrics.jsonl")
    if not os.path.exists(path):
        return 0
    with open(path) as f:
        return sum(1 for line in f if line.strip())


def logged_epochs(workdir):
    return [json.loads(line)["epoch"] for line in open(os.path.join(workdir, "metrics.jsonl"))]


def interrupt(argv, ready, signum):
    """Start ``lightjax argv``, send ``signum`` a random moment after ``ready()``; returns
    (returncode, stderr)."""
    proc = lightjax(*argv)
    assert wait_for(ready, proc), proc.communicate()
    time.sleep(RANDOM.uniform(0.0, 0.6))
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=240)
    return proc.returncode, err


def test_signal_during_training_checkpoints_and_resumes_to_the_same_result(tmp_path, reference):
    signum = signal.SIGINT  # SIGTERM: the sweep test below
    ref_work, ref_summary = reference
    work = str(tmp_path / "run")
    argv = ["train", "--config", "digits:tiny", "--workdir", work, *overrides()]
    code, err = interrupt(argv, lambda: epochs_logged(work) >= 1, signum)
    assert code == 128 + signum, err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("lightjax:")]
    assert len(lines) == 1 and "interrupted by SIG" in lines[0] and "to resume" in lines[0]
    assert not os.path.exists(os.path.join(work, "summary.json"))
    assert cli.main(argv + ["--no-progress"]) == 0
    with open(os.path.join(work, "summary.json")) as f:
        resumed = json.load(f)
    for key in ("top1", "top5", "loss"):
        assert resumed[key] == pytest.approx(ref_summary[key], rel=1e-5, abs=1e-6), key
    rows = [json.loads(line) for line in open(os.path.join(work, "metrics.jsonl"))]
    assert [r["epoch"] for r in rows] == list(range(1, EPOCHS + 1))
    ref_rows = [json.loads(line) for line in open(ref_work / "metrics.jsonl")]
    np.testing.assert_allclose([r["train_loss"] for r in rows],
                               [r["train_loss"] for r in ref_rows], rtol=1e-5)


def test_signal_during_a_sweep_resumes_to_the_same_table(tmp_path):
    # two groups of 2 members (one compiled program: the second group costs no compilation)
    sweep_file = tmp_path / "two_groups.py"
    sweep_file.write_text(
        "from lightjax.sweep import Sweep, product\n"
        "def get_sweep(arg=None):\n"
        "    return Sweep('digits:tiny', product({'train.seed': [0, 1, 2, 3]},\n"
        "                 {'data.resolution': [8]}, {'train.batch_size': [32]},\n"
        "                 {'train.epochs': [3]}, {'train.warmup_epochs': [0.0]}))\n")
    options = ["--no-progress", "--max-members-per-step", "2"]
    ref = str(tmp_path / "reference")
    assert cli.main(["sweep", str(sweep_file), "--workdir", ref, *options]) == 0
    work = str(tmp_path / "sweep")
    first = os.path.join(work, "groups", "group000", "checkpoints")
    argv = ["sweep", str(sweep_file), "--workdir", work, *options]
    code, err = interrupt(argv, lambda: os.path.isdir(first) and os.listdir(first),
                          signal.SIGTERM)
    assert code == 143, err
    assert "Traceback" not in err and "interrupted by SIGTERM" in err
    assert cli.main(argv) == 0
    rows = [json.loads(line) for line in open(os.path.join(work, "results.jsonl"))]
    ref_rows = [json.loads(line) for line in open(os.path.join(ref, "results.jsonl"))]
    assert sorted(r["member"] for r in rows) == [0, 1, 2, 3]  # nobody trained twice
    by_member = {r["member"]: r for r in rows}
    for r in ref_rows:
        assert by_member[r["member"]]["loss"] == pytest.approx(r["loss"], rel=1e-5)
        assert by_member[r["member"]]["top1"] == pytest.approx(r["top1"], abs=1e-9)


def test_a_second_process_is_refused_and_a_stale_lock_is_taken_over(tmp_path, capsys):
    work = str(tmp_path / "run")
    argv = ["train", "--config", "digits:tiny", "--workdir", work, *overrides()]
    proc = lightjax(*argv)
    try:
        assert wait_for(lambda: epochs_logged(work) >= 1, proc), proc.communicate()
        # frozen mid-training (SIGSTOP), however fast this machine: alive, holding the lock
        proc.send_signal(signal.SIGSTOP)
        assert cli.main(argv + ["--no-progress"]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and f"is in use by process {proc.pid}" in err
    finally:
        proc.kill()  # SIGKILL: no cleanup, the lock file stays behind
        proc.communicate()
    assert proc.returncode == -signal.SIGKILL  # it never finished
    with open(os.path.join(work, ".lock")) as f:
        assert f"process {proc.pid}" in f.read()
    # taken over: it resumes from the killed run's checkpoint, or starts over when the kill came
    # before that checkpoint was committed (orbax writes it in the background)
    assert cli.main(argv + ["--no-progress", "--max-steps", str(3 * STEPS)]) == 0
    with open(os.path.join(work, ".lock")) as f:
        assert f"process {proc.pid}" not in f.read()  # taken over, then released


def test_damaged_latest_checkpoint_falls_back_to_the_previous_one(tmp_path, capsys, reference):
    cfg = small_config()  # keeps 2 checkpoints
    work = tmp_path / "run"
    run_lib.train(cfg, str(work), progress=False, max_steps=2 * STEPS)  # checkpoints 44 and 88
    latest = work / "checkpoints" / str(2 * STEPS)
    for root, _, files in os.walk(latest):
        for name in files:
            path = os.path.join(root, name)
            if os.path.getsize(path) > 64:
                with open(path, "r+b") as f:
                    f.truncate(os.path.getsize(path) // 2)
    resumed = run_lib.train(cfg, str(work), progress=False)
    err = capsys.readouterr().err
    assert f"checkpoints/{2 * STEPS}" in err and f"resuming from checkpoint {STEPS}" in err
    assert (work / "checkpoints.damaged" / str(2 * STEPS)).is_dir()  # moved aside, not deleted
    _, summary = reference
    assert resumed["top1"] == pytest.approx(summary["top1"])
    assert resumed["loss"] == pytest.approx(summary["loss"], rel=1e-5)
    assert logged_epochs(work) == list(range(1, EPOCHS + 1))  # epoch 2, trained twice, logged once


def test_damaged_only_checkpoint_is_one_line_naming_it(tmp_path, capsys):
    work = tmp_path / "run"
    argv = ["train", "--config", "digits:tiny", "--workdir", str(work), "--no-progress",
            *overrides(), "--max-steps", str(STEPS)]
    assert cli.main(argv) == 0
    for root, _, files in os.walk(work / "checkpoints" / str(STEPS)):
        for name in files:
            with open(os.path.join(root, name), "wb"):
                pass
    capsys.readouterr()
    assert cli.main(argv[:-2]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"checkpoints/{STEPS}" in err and "no earlier checkpoint" in err


def test_finished_run_without_checkpoints_is_not_retrained(tmp_path, capsys, reference):
    work = tmp_path / "run"
    shutil.copytree(reference[0], work)  # a finished run of this very command
    argv = ["train", "--config", "digits:tiny", "--workdir", str(work), "--no-progress",
            *overrides()]
    summary = (work / "summary.json").read_text()
    shutil.rmtree(work / "checkpoints")
    capsys.readouterr()
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "checkpoints/ is missing" in err
    assert (work / "summary.json").read_text() == summary


def test_killed_before_its_first_checkpoint_starts_over(tmp_path, capsys, reference):
    """Metrics logged, no checkpoint committed (killed while orbax wrote the first one): the run
    starts over, logs every epoch once, and ends as the uninterrupted run."""
    ref_work, ref_summary = reference
    work = tmp_path / "run"
    shutil.copytree(ref_work, work)
    for name in ("checkpoints", "summary.json"):
        target = work / name
        shutil.rmtree(target) if target.is_dir() else target.unlink()
    lines = (work / "metrics.jsonl").read_text().splitlines()
    (work / "metrics.jsonl").write_text("\n".join(lines[:2]) + "\n")  # two epochs logged
    summary = run_lib.train(small_config(), str(work), progress=False)
    assert "starting over" in capsys.readouterr().err
    assert summary["top1"] == pytest.approx(ref_summary["top1"])
    assert logged_epochs(work) == list(range(1, EPOCHS + 1))


def test_resume_from_an_older_checkpoint_logs_every_epoch_once(tmp_path):
    cfg = small_config(**{"train.checkpoint_every_epochs": 2})
    work = tmp_path / "run"
    run_lib.train(cfg, str(work), progress=False, max_steps=3 * STEPS)  # 3 epochs logged
    shutil.rmtree(work / "checkpoints" / str(3 * STEPS))  # as if killed before checkpointing it
    run_lib.train(cfg, str(work), progress=False)  # from checkpoint 88
    assert logged_epochs(work) == list(range(1, EPOCHS + 1))


@pytest.mark.parametrize("field,value,message", [
    ("train.epochs", 0, "train.epochs must be an integer >= 1, got 0"),
    ("train.epochs", -3, "train.epochs must be an integer >= 1"),
    ("train.lr", 0, "train.lr must be a finite number > 0"),
    ("train.batch_size", 0, "train.batch_size must be an integer >= 1"),
])
def test_invalid_numbers_are_refused_before_anything_is_written(tmp_path, capsys, field, value,
                                                                message):
    work = tmp_path / "run"
    status = cli.main(["train", "--workdir", str(work), "--no-progress",
                       f"--config.{field}={value}"])
    err = capsys.readouterr().err
    assert status == 2 and err.count("\n") == 1 and message in err
    assert not work.exists()
