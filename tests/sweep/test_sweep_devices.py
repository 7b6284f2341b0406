"""The same sweep on 1 device, on 4 host devices and as 2 ``jax.distributed`` processes on
localhost (``lightjax sweep ... --coordinator``) gives the same results table (float64, so the
comparison is tight; see layout_sweep.py). All layouts run at once, each in its own interpreter
(device count and process group are fixed when JAX starts)."""
import json
import os
import socket
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
SWEEP = os.path.join(HERE, "layout_sweep.py")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rows(workdir):
    with open(os.path.join(workdir, "results.jsonl")) as f:
        return sorted((json.loads(line) for line in f), key=lambda r: r["member"])


@pytest.fixture(scope="module")
def tables(tmp_path_factory):
    root = tmp_path_factory.mktemp("layouts")
    port = _free_port()
    two = ["--coordinator", f"127.0.0.1:{port}", "--num-processes", "2"]
    runs = {"one": (1, []), "four": (4, []),
            "two": (1, two + ["--process-id", "0"]), "two_1": (1, two + ["--process-id", "1"])}
    procs = {}
    for name, (devices, extra) in runs.items():
        env = dict(os.environ, JAX_PLATFORMS="cpu", JAX_ENABLE_X64="1",
                   JAX_DEFAULT_MATMUL_PRECISION="highest",
                   XLA_FLAGS=f"{os.environ.get('XLA_FLAGS', '')} "
                             f"--xla_force_host_platform_device_count={devices}".strip())
        workdir = root / name.split("_")[0]
        procs[name] = subprocess.Popen(
            [sys.executable, "-m", "lightjax", "sweep", SWEEP, "--workdir", str(workdir),
             "--no-progress", *extra], env=env, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True)
    logs = {}
    for name, proc in procs.items():
        logs[name], _ = proc.communicate(timeout=900)
        assert proc.returncode == 0, f"{name} failed:\n{logs[name][-3000:]}"
    return {"root": root, "logs": logs,
            **{name: _rows(root / name) for name in ("one", "four", "two")}}


def _compare(rows, reference):
    assert [r["member"] for r in rows] == [r["member"] for r in reference] == [0, 1, 2]
    for row, ref in zip(rows, reference):
        assert row["config"] == ref["config"] and row["status"] == ref["status"] == "finished"
        assert (row["params"], row["macs"]) == (ref["params"], ref["macs"])
        assert row["top1"] == ref["top1"] and row["top5"] == ref["top5"]
        assert row["loss"] == pytest.approx(ref["loss"], rel=1e-9, abs=0)


def test_members_are_distinguishable(tables):
    """The comparisons below could fail: every member ends with its own loss."""
    losses = [r["loss"] for r in tables["one"]]
    assert min(abs(a - b) for i, a in enumerate(losses) for b in losses[i + 1:]) > 1e-5


def _layouts(rows):
    return [(r["processes"], r["mesh"]["sweep"], r["mesh"]["data"]) for r in rows]


def test_four_host_devices_match_one_device(tables):
    assert _layouts(tables["one"]) == [(1, 1, 1)] * 3
    # the 2-member group: members over 2 devices x batch over 2; the single member: batch over 4
    assert _layouts(tables["four"]) == [(1, 2, 2)] * 2 + [(1, 1, 4)]
    _compare(tables["four"], tables["one"])


def test_two_processes_match_one_device(tables):
    # members split over the processes; the single member's batch split over them
    assert _layouts(tables["two"]) == [(2, 2, 1)] * 2 + [(2, 1, 2)]
    _compare(tables["two"], tables["one"])
    # one results table, written once (by process 0), printed once
    assert len((tables["root"] / "two" / "results.jsonl").read_text().splitlines()) == 3
    assert "member  status" in tables["logs"]["two"]
    assert "member  status" not in tables["logs"]["two_1"]
