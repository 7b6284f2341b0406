"""The ``lightjax`` command line: cost output, help, config lookup and one-line errors (exit 2)."""
import json
import os
import re
import subprocess
import sys

import pytest

from lightjax import cli
from lightjax.sweep import spec
from lightjax.train import config as config_lib


def run(capsys, *argv):
    status = cli.main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def test_cost_json_has_integer_totals_and_layers(capsys):
    status, out, err = run(capsys, "cost", "--model", "mobilenet_v1", "--json")
    assert status == 0 and err == ""
    data = json.loads(out)
    assert data["params"] == 4_231_976 and data["macs"] == 568_740_352
    assert isinstance(data["layers"], list) and len(data["layers"]) == 55
    assert data["by_type"]["pointwise"]["layers"] == 13


def test_cost_rhs_cifar_flags(capsys):
    status, out, _ = run(capsys, "cost", "--model", "mobilenet_v1", "--variant", "rhs",
                         "--pointwise-bias", "--num-classes", "100", "--resolution", "32",
                         "--stem-stride", "1", "--json")
    assert status == 0 and json.loads(out)["params"] == 3_315_428


def test_cost_table_shows_type_shares(capsys):
    status, out, _ = run(capsys, "cost", "--model", "mobilenet_v1", "--alpha", "0.5",
                         "--resolution", "160")
    assert status == 0
    assert "1,331,592 params" in out and "pointwise" in out and "%" in out


def test_cost_widths_flag(capsys):
    widths = ",".join(["8"] * 14)
    status, out, _ = run(capsys, "cost", "--model", "mobilenet_v1", "--widths", widths,
                         "--num-classes", "10", "--json")
    assert status == 0
    # stem 27*8 + 13 units (9*8 + 64 + 32) + BN 2*8 + FC 8*10 + 10
    assert json.loads(out)["params"] == 27 * 8 + 16 + 13 * (72 + 64 + 32) + 90


MV1 = ["cost", "--model", "mobilenet_v1"]


@pytest.mark.parametrize("argv,message", [
    (["cost", "--model", "resnet50"], "--model: unknown model 'resnet50'"),
    (MV1 + ["--alpha", "0"], "--alpha must be a finite number > 0, got 0"),
    (MV1 + ["--alpha", "-1"], "--alpha must be a finite number > 0, got -1"),
    (MV1 + ["--alpha", "nan"], "--alpha must be a finite number > 0, got nan"),
    (MV1 + ["--alpha", "inf"], "--alpha must be a finite number > 0, got inf"),
    (MV1 + ["--alpha", "big"], "--alpha must be a finite number > 0, got big"),
    (MV1 + ["--resolution", "0"], "--resolution must be a positive integer, got 0"),
    (MV1 + ["--resolution", "nan"], "--resolution must be a positive integer, got nan"),
    (MV1 + ["--num-classes", "0"], "--num-classes must be a positive integer, got 0"),
    (MV1 + ["--num-classes", "2.5"], "--num-classes must be a positive integer, got 2.5"),
    (MV1 + ["--stem-stride", "3"], "--stem-stride: mobilenet_v1: stem_stride must be 1 or 2"),
    (MV1 + ["--activation", "nope"], "--activation: unknown activation 'nope'"),
    (MV1 + ["--variant", "x"], "--variant: mobilenet_v1: unknown variant 'x'"),
    (MV1 + ["--widths", "1,2"], "--widths: mobilenet_v1: widths has 2 entries"),
    (MV1 + ["--widths", "x,y"], "--widths must be comma-separated positive integers"),
    (MV1 + ["--widths", ",".join(["8"] * 13 + ["-1"])],
     "--widths must be comma-separated positive integers"),
    (MV1 + ["--groups", "3"], "--groups does not apply"),
    (["cost", "--model", "shufflenet_v1", "--groups", "0"],
     "--groups must be a positive integer, got 0"),
    (["cost", "--model", "shufflenet_v1", "--groups", "5"],
     "--groups: shufflenet_v1: groups must be one of 1, 2, 3, 4, 8, got 5"),
    (["cost", "--model", "shufflenet_v2", "--scale", "nan"],
     "--scale must be a finite number > 0, got nan"),
    (["cost", "--model", "shufflenet_v2", "--scale", "0.7"],
     "--scale: shufflenet_v2: unknown scale 0.7"),
    (["cost"], "give one of --model NAME (with its flags) or --workdir RUN"),
    (["frobnicate"], "invalid choice"),
])
def test_bad_input_is_one_line_and_exit_2(capsys, argv, message):
    status, out, err = run(capsys, *argv)
    assert status == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("lightjax: error: ")
    assert message in err


# --- help ----------------------------------------------------------------------------------------
def test_no_arguments_prints_the_help_with_the_commands(capsys):
    status, out, err = run(capsys)
    assert status == 2 and out == "" and "Traceback" not in err
    assert err.startswith("usage: lightjax")
    for command in ("train", "eval", "cost", "prune", "sensitivity", "sweep"):
        assert f"\n    {command}" in err


def test_help_lists_bundled_configs_sweeps_and_the_override_syntax(capsys):
    status, out, err = run(capsys, "--help")
    assert status == 0 and err == ""
    assert "--config.SECTION.FIELD=VALUE" in out and "--config.train.epochs=10" in out
    for name in config_lib.bundled_names() + spec.bundled_names():
        assert name in out
    assert {"digits", "mobilenet_v1_cifar100"} <= set(config_lib.bundled_names())
    assert {"activations", "mobilenet_v1_alpha_rho"} <= set(spec.bundled_names())


@pytest.mark.parametrize("command,needles", [
    ("train", ["--config.SECTION.FIELD=VALUE", "digits, mobilenet_v1_cifar100"]),
    ("sweep", ["activations, binarization_ratios, mobilenet_v1_alpha_rho", "NAME[:ARG]"]),
    ("cost", ["--alpha ALPHA", "lightjax cost --model shufflenet_v1 --groups 3"]),
])
def test_command_help(capsys, command, needles):
    status, out, _ = run(capsys, command, "--help")
    assert status == 0
    for needle in needles:
        assert needle in out


# --- configs: bundled names, local files, errors in the user's code ------------------------------
def test_bundled_config_by_name_from_any_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path, arg = config_lib.resolve_path("mobilenet_v1_cifar100:rhs")
    assert os.path.basename(path) == "mobilenet_v1_cifar100.py" and arg == "rhs"
    assert config_lib.load("mobilenet_v1_cifar100:rhs").model.variant == "rhs"
    with pytest.raises(ValueError, match="config 'nope' not found.*bundled config: digits"):
        config_lib.load("nope")
    with pytest.raises(ValueError, match="config file configs/nope.py does not exist"):
        config_lib.load("configs/nope.py")


def test_detection_demo_config_has_a_medium_variant():
    easy, medium = (config_lib.load(n) for n in ("yolov3_mobilenet_v1_shapes",
                                                   "yolov3_mobilenet_v1_shapes:medium"))
    assert (easy.data.difficulty, medium.data.difficulty) == ("easy", "medium")
    assert medium.train.to_dict() == easy.train.to_dict()
    with pytest.raises(ValueError, match=r"unknown argument 'hard' \(allowed: medium, tiny\)"):
        config_lib.load("yolov3_mobilenet_v1_shapes:hard")


def test_local_config_and_paths_win_over_bundled(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "digits.py").write_text(
        "import ml_collections\n"
        "def get_config(arg=None):\n"
        "    return ml_collections.ConfigDict({'local': True, 'arg': arg})\n")
    assert config_lib.load("digits").to_dict() == {"local": True, "arg": None}
    assert config_lib.load("configs/digits.py:x").to_dict() == {"local": True, "arg": "x"}


@pytest.mark.parametrize("body,message", [
    ("def get_config(arg=None):\n    return {}['foo']\n", "get_config raised KeyError: 'foo'"),
    ("def get_config(arg=None):\n    raise ValueError('bad\\nline')\n",
     "get_config raised ValueError: bad line"),
    ("import no_such_module_xyz\n", "could not be loaded: ModuleNotFoundError: No module named"),
    ("def get_config(:\n", "could not be loaded: SyntaxError"),
    ("get_config = 3\n", "defines no get_config"),
    ("def get_config(arg=None):\n    return 1\n", "must return an ml_collections.ConfigDict"),
])
def test_errors_in_a_config_file_are_one_line_naming_it(tmp_path, monkeypatch, capsys, body,
                                                        message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "x.py").write_text(body)
    with pytest.raises(ValueError, match=re.escape(message)):
        config_lib.load("configs/x.py")
    status, out, err = run(capsys, "train", "--config", "configs/x.py", "--workdir", "w")
    assert status == 2 and out == "" and err.count("\n") == 1
    assert err.startswith("lightjax: error: config configs/x.py") and message in err
    assert not (tmp_path / "w").exists()


def test_model_hyperparameters_the_config_leaves_at_default_can_be_overridden():
    cfg = config_lib.load("digits")
    assert "pointwise_bias" not in cfg.model
    config_lib.override(cfg, ["--config.model.pointwise_bias=True", "--config.model.widths",
                              "[8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8]"])
    assert cfg.model.pointwise_bias is True and cfg.model.widths == (8,) * 14
    with pytest.raises(ValueError, match="no field 'pointwise_bias'"):
        config_lib.override(config_lib.load("digits"), ["--config.train.pointwise_bias=True"])
    with pytest.raises(ValueError, match="no field 'layers'.*hyper-parameter of mobilenet_v1"):
        config_lib.override(config_lib.load("digits"), ["--config.model.layers=1"])


def test_task_options_the_config_leaves_at_default_can_be_overridden():
    cfg = config_lib.load("yolov3_mobilenet_v1_shapes:tiny")
    assert "score_threshold" not in cfg.task
    config_lib.override(cfg, ["--config.task.score_threshold=0.2",
                              "--config.task.max_detections=10"])
    assert cfg.task.score_threshold == 0.2 and cfg.task.max_detections == 10
    with pytest.raises(ValueError, match="no field 'nms'.*an option of detection: .*"
                                         "score_threshold"):
        config_lib.override(cfg, ["--config.task.nms=0.5"])


def test_python_dash_m_entry_point():
    proc = subprocess.run([sys.executable, "-m", "lightjax", "cost", "--model", "mobilenet_v1",
                           "--alpha", "0.25", "--json"], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["macs"] == 41_030_272
    bad = subprocess.run([sys.executable, "-m", "lightjax", "cost", "--model", "x"],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and bad.stderr.strip().count("\n") == 0
