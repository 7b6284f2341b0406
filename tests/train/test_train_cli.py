"""``lightjax train`` / ``lightjax eval`` from the command line, including bad input."""
import json
import os
import shutil

import pytest

from lightjax import cli
from lightjax.train import config as config_lib, run as run_lib

TINY = ["--config", "digits:tiny", "--no-progress", "--config.train.epochs=1",
        "--config.data.resolution=8"]
SHAPES = ["--config", "shapes_segmentation:tiny", "--no-progress"]


def run(capsys, *argv):
    status = cli.main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def snapshot(path):
    return sorted((root, tuple(sorted(files))) for root, _, files in os.walk(path))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A finished tiny run (alpha 0.25) and the workdir of one of another architecture (its
    config.json, as ``lightjax train`` writes it first; nothing trained)."""
    base = tmp_path_factory.mktemp("runs")
    assert cli.main(["train", "--workdir", str(base / "a"), *TINY]) == 0
    other = config_lib.override(config_lib.load("digits:tiny"),
                                TINY[3:] + ["--config.model.alpha=0.5"])
    run_lib.claim(other, str(base / "b"))
    return base


def test_train_prints_summary_and_eval_reads_the_workdir(trained, capsys):
    summary = json.loads((trained / "a" / "summary.json").read_text())
    status, out, _ = run(capsys, "eval", "--workdir", str(trained / "a"))
    assert status == 0
    assert json.loads(out.splitlines()[-1])["top1"] == pytest.approx(summary["top1"])
    assert "top-1" in out


def test_checkpoint_from_another_architecture(trained, tmp_path, capsys):
    work = tmp_path / "mixed"
    shutil.copytree(trained / "b", work)
    shutil.copytree(trained / "a" / "checkpoints", work / "checkpoints")
    before = snapshot(work)
    status, out, err = run(capsys, "eval", "--workdir", str(work))
    assert status == 2 and err.count("\n") == 1
    assert "does not fit this model" in err
    assert snapshot(work) == before


def test_corrupted_checkpoint(trained, tmp_path, capsys):
    work = tmp_path / "corrupt"
    shutil.copytree(trained / "a", work)
    step_dir = work / "checkpoints" / sorted(os.listdir(work / "checkpoints"))[-1]
    for root, _, files in os.walk(step_dir):
        for name in files:
            with open(os.path.join(root, name), "wb") as f:
                f.write(b"garbage")
    before = snapshot(work)
    status, _, err = run(capsys, "eval", "--workdir", str(work))
    assert status == 2 and err.count("\n") == 1 and "checkpoint" in err
    assert snapshot(work) == before


@pytest.mark.parametrize("argv,message", [
    (["eval", "--workdir", "/nonexistent/run"], "holds no lightjax run"),
    (["train", "--config", "no_such_config"], "not found"),
    (["train", *TINY, "--config.train.batch_size=5000"], "larger than the 1437 examples"),
    (["train", *TINY, "--config.data.name=no_such_dataset"], "unknown dataset"),
    (["train", *TINY, "--config.data.name=cifar100", "--config.data.data_dir=DATA"],
     "is not prepared"),
    (["train", *TINY, "--config.model.alpah=1"], "no field 'alpah'"),
    (["train", *TINY, "--frobnicate"], "unrecognized argument"),
    (["train", *TINY, "--config.train.ema_decay=1.5"], "train.ema_decay must be a number in (0, 1)"),
    (["train", *TINY, "--config.train.ema_decay=-0.1"], "train.ema_decay must be a number in (0, 1)"),
    (["train", *SHAPES, "--config.data.mode=bogus"], "shapes: mode must be one of fixed, stream"),
    (["train", *SHAPES, "--config.data.train_size=64"],  # the tiny config streams
     "shapes: mode='stream' draws epoch_size fresh scenes every epoch, so train_size"),
    (["train", *SHAPES, "--config.data.mode=fixed"],  # ... with an epoch_size
     "shapes: epoch_size is for mode='stream'"),
])
def test_bad_input_exits_2_and_writes_nothing(tmp_path, capsys, argv, message):
    workdir = tmp_path / "w"
    argv = [a.replace("DATA", str(tmp_path / "data")) for a in argv]
    if argv[0] == "train":
        argv += ["--workdir", str(workdir)]
    status, out, err = run(capsys, *argv)
    assert status == 2, err
    assert err.startswith("lightjax: error: ") and message in err
    assert not workdir.exists() and not (tmp_path / "data").exists()


def test_broken_config_file(tmp_path, capsys):
    bad = tmp_path / "bad.py"
    bad.write_text("def get_config(:\n")
    status, _, err = run(capsys, "train", "--config", str(bad), "--workdir", str(tmp_path / "w"))
    assert status == 2 and "could not be loaded" in err
    nofn = tmp_path / "nofn.py"
    nofn.write_text("x = 1\n")
    status, _, err = run(capsys, "train", "--config", str(nofn), "--workdir", str(tmp_path / "w"))
    assert status == 2 and "defines no get_config" in err


def test_non_image_folder_data(tmp_path, capsys):
    for split in ("train", "test"):
        (tmp_path / "d" / split / "cat").mkdir(parents=True)
        (tmp_path / "d" / split / "cat" / "notes.png").write_text("not an image")
    status, _, err = run(capsys, "train", *TINY, "--config.data.name=folder",
                         f"--config.data.root={tmp_path / 'd'}", "--workdir",
                         str(tmp_path / "w"))
    assert status == 2 and "notes.png" in err
    assert not (tmp_path / "w").exists()


def test_divergence_from_the_start_exits_1_with_a_message(tmp_path, capsys):
    status, _, err = run(capsys, "train", *TINY, "--config.train.lr=1e30",
                         "--config.train.warmup_epochs=0", "--workdir", str(tmp_path / "w"))
    assert status == 1
    assert "loss became" in err and "No checkpoint had been saved yet" in err
