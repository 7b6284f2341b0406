"""``lightjax train --coordinator`` as 2 ``jax.distributed`` processes on localhost writes one run
(each process loads half of every batch) whose results equal the single-process run's (float64
and few steps: training this net is chaotic, see tests/sweep/layout_sweep.py,
so the comparison is tight), and both processes share the one workdir without clashing."""
import json
import os
import socket
import subprocess
import sys

import pytest

ARGS = ["--config", "digits:tiny", "--config.train.epochs=1", "--config.data.resolution=8",
        "--config.train.dtype=float64", "--config.train.batch_size=256",
        "--config.train.warmup_epochs=0.0", "--no-progress"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_train_one_run_like_one_process(tmp_path):
    port = _free_port()
    two = ["--coordinator", f"127.0.0.1:{port}", "--num-processes", "2"]
    runs = {"one": (tmp_path / "one", []), "two0": (tmp_path / "two", [*two, "--process-id", "0"]),
            "two1": (tmp_path / "two", [*two, "--process-id", "1"])}
    env = dict(os.environ, JAX_PLATFORMS="cpu", JAX_ENABLE_X64="1",
               JAX_DEFAULT_MATMUL_PRECISION="highest")
    procs = {name: subprocess.Popen([sys.executable, "-m", "lightjax", "train", "--workdir",
                                     str(workdir), *ARGS, *extra], env=env,
                                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for name, (workdir, extra) in runs.items()}
    logs = {}
    for name, proc in procs.items():
        logs[name], _ = proc.communicate(timeout=600)
        assert proc.returncode == 0, f"{name} failed:\n{logs[name][-3000:]}"
    one, two = (json.loads((tmp_path / n / "summary.json").read_text()) for n in ("one", "two"))
    assert one["steps"] == two["steps"] > 0 and one["finished"] and two["finished"]
    assert two["top1"] == one["top1"] and two["top5"] == one["top5"]
    assert two["loss"] == pytest.approx(one["loss"], rel=1e-9, abs=0)
    rows = [json.loads(line) for line in (tmp_path / "two" / "metrics.jsonl").read_text()
            .splitlines()]
    assert len(rows) == len([line for line in (tmp_path / "one" / "metrics.jsonl").read_text()
                             .splitlines()])  # one writer (process 0), no duplicated rows
    assert not list(tmp_path.glob("*.tmp"))
