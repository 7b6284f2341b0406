"""The ``lightjax`` command line: cost output and one-line errors with exit status 2."""
import json
import subprocess
import sys

import pytest

from lightjax import cli


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


@pytest.mark.parametrize("argv,message", [
    (["cost", "--model", "resnet50"], "unknown model 'resnet50'"),
    (["cost", "--model", "mobilenet_v1", "--alpha", "0"], "alpha must be a positive number"),
    (["cost", "--model", "mobilenet_v1", "--alpha", "-1"], "alpha must be a positive number"),
    (["cost", "--model", "mobilenet_v1", "--resolution", "0"], "--resolution must be positive"),
    (["cost", "--model", "mobilenet_v1", "--activation", "nope"], "unknown activation 'nope'"),
    (["cost", "--model", "mobilenet_v1", "--widths", "1,2"], "widths has 2 entries"),
    (["cost", "--model", "mobilenet_v1", "--widths", "x,y"], "comma-separated integers"),
    (["cost", "--model", "mobilenet_v1", "--widths", ",".join(["8"] * 13 + ["-1"])],
     "positive integers"),
    (["cost", "--model", "mobilenet_v1", "--groups", "3"], "--groups does not apply"),
    (["cost"], "required: --model"),
    (["frobnicate"], "invalid choice"),
])
def test_bad_input_is_one_line_and_exit_2(capsys, argv, message):
    status, out, err = run(capsys, *argv)
    assert status == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("lightjax: error: ")
    assert message.replace("must be positive", "must be a positive") in err


def test_python_dash_m_entry_point():
    proc = subprocess.run([sys.executable, "-m", "lightjax", "cost", "--model", "mobilenet_v1",
                           "--alpha", "0.25", "--json"], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["macs"] == 41_030_272
    bad = subprocess.run([sys.executable, "-m", "lightjax", "cost", "--model", "x"],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and bad.stderr.strip().count("\n") == 0
