"""``lightjax launch-tpu`` against a fake ``gcloud`` (a script on PATH that records its argv and
plays a TPU slice): the printed dry-run commands, discovery, install, per-worker runs and logs,
exit statuses, refused input, and Ctrl-C stopping every worker."""
from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from lightjax import cli
from lightjax.launch import tpu

FAKE_GCLOUD = textwrap.dedent("""\
    #!{python}
    # a fake gcloud: records its argv, answers describe, runs nothing remote
    import json, os, sys, time
    argv = sys.argv[1:]
    line = (json.dumps(["gcloud"] + argv) + "\\n").encode()
    fd = os.open(os.environ["FAKE_GCLOUD_LOG"], os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    os.write(fd, line)
    os.close(fd)
    env = os.environ.get
    if argv[3] == "describe":
        if env("FAKE_DESCRIBE_FAIL"):
            sys.stderr.write("ERROR: (gcloud.compute.tpus.tpu-vm.describe) NOT_FOUND: "
                             "no such TPU\\n")
            sys.exit(1)
        print(json.dumps({{"state": "READY", "networkEndpoints": [
            {{"ipAddress": f"10.0.0.{{i}}"}} for i in range(int(env("FAKE_WORKERS", "4")))]}}))
        sys.exit(0)
    worker = next(a.split("=", 1)[1] for a in argv if a.startswith("--worker="))
    if argv[3] == "scp":
        print(f"copied to worker {{worker}}")
        sys.exit(0)
    command = next(a.split("=", 1)[1] for a in argv if a.startswith("--command="))
    print(f"worker {{worker}}: {{command}}", flush=True)
    if "kill -TERM" in command:
        open(env("FAKE_STOPPED"), "w").close()
    elif "pip install" in command and env("FAKE_FAIL_INSTALL") == worker:
        print("ERROR: No matching distribution found for lightjax")
        sys.exit(1)
    elif "-m lightjax" in command:
        if env("FAKE_FAIL_WORKER") == worker:
            print("Traceback (most recent call last):\\nRuntimeError: boom")
            sys.exit(3)
        if env("FAKE_HANG"):
            deadline = time.monotonic() + 600  # the test stops it long before
            while not os.path.exists(env("FAKE_STOPPED")) and time.monotonic() < deadline:
                time.sleep(0.05)
            print("checkpoint written", flush=True)
            sys.exit(143)
    """)

BASE = ["launch-tpu", "--name", "my-tpu", "--zone", "us-central2-b"]
SWEEP = ["sweep", "mobilenet_v1_alpha_rho", "--workdir", "/mnt/shared/a b"]


@pytest.fixture
def fake(tmp_path, monkeypatch):
    """Environment with the fake gcloud first on PATH; returns a function listing its calls."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    script = bindir / "gcloud"
    script.write_text(FAKE_GCLOUD.format(python=sys.executable))
    script.chmod(0o755)
    log = tmp_path / "gcloud-calls.jsonl"
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_GCLOUD_LOG", str(log))
    monkeypatch.setenv("FAKE_STOPPED", str(tmp_path / "stopped"))
    monkeypatch.chdir(tmp_path)

    def calls() -> list[list[str]]:
        return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []

    return calls


def _remote(argv: list[str]) -> str:
    return next(a.split("=", 1)[1] for a in argv if a.startswith("--command="))


def _worker(argv: list[str]) -> int:
    return int(next(a.split("=", 1)[1] for a in argv if a.startswith("--worker=")))


def test_dry_run_prints_every_command_shell_quoted_and_runs_nothing(fake, capsys):
    rc = cli.main(BASE + ["--project", "proj", "--workers", "4", "--dry-run", "--logs", "L",
                          "--", *SWEEP])
    out = capsys.readouterr().out
    assert rc == 0 and fake() == []
    lines = out.splitlines()
    assert lines[0].startswith("# 1/2 install lightjax==")
    commands = [shlex.split(line) for line in lines if not line.startswith("#")]
    assert len(commands) == 8 and [_worker(c) for c in commands] == [0, 1, 2, 3] * 2
    assert lines[-4] == (
        "gcloud compute tpus tpu-vm ssh my-tpu --zone=us-central2-b --project=proj --worker=0 "
        "'--command=echo $$ > .lightjax-launch-0.pid && exec python3 -m lightjax sweep "
        "mobilenet_v1_alpha_rho --workdir \"/mnt/shared/a b\" --distributed' --quiet")
    assert "# 2/2 run lightjax sweep" in out and "logs: L/worker-N.log" in out
    # what the worker's shell executes: exactly the lightjax argv with --distributed added
    remote = _remote(commands[-1])
    assert shlex.split(remote.split("&& exec ", 1)[1]) == [
        "python3", "-m", "lightjax", *SWEEP, "--distributed"]
    assert shlex.split(_remote(commands[0])) == [
        "python3", "-m", "pip", "install", "-U", f"lightjax=={cli_version()}", "jax[tpu]"]


def cli_version() -> str:
    import lightjax
    return lightjax.__version__


def test_discovers_workers_installs_then_runs_on_each_with_per_worker_logs(fake, capsys,
                                                                         monkeypatch):
    monkeypatch.setenv("FAKE_WORKERS", "4")
    rc = cli.main(BASE + ["--logs", "logs", "--env", "XLA_FLAGS=--xla_foo=1", "--",
                          "lightjax", *SWEEP, "--distributed"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    calls = fake()
    assert calls[0] == [*tpu.GCLOUD, "describe", "my-tpu", "--zone=us-central2-b",
                        "--format=json"]
    install, run = calls[1:5], calls[5:]
    assert len(run) == 4 and sorted(map(_worker, install)) == sorted(map(_worker, run)) == [
        0, 1, 2, 3]
    assert all("pip install -U" in _remote(c) for c in install)
    for argv in run:  # the user's --distributed is kept once; the environment is set
        words = shlex.split(_remote(argv).split("&& exec ", 1)[1])
        assert words[:2] == ["env", "XLA_FLAGS=--xla_foo=1"]
        assert words[2:] == ["python3", "-m", "lightjax", *SWEEP, "--distributed"]
    for i in range(4):
        assert f"worker {i}: echo $$" in Path(f"logs/worker-{i}.log").read_text()
        assert f"worker {i}: python3 -m pip" in Path(f"logs/worker-{i}.install.log").read_text()
    # worker 0's output is echoed on the console, the others' only in their logs
    assert "worker 0: echo $$" in captured.out and "worker 1:" not in captured.out


def test_local_wheel_is_copied_to_each_worker_and_force_installed(fake, tmp_path):
    wheel = tmp_path / "dist" / "lightjax-0.1.0-py3-none-any.whl"
    wheel.parent.mkdir()
    wheel.write_bytes(b"PK")
    rc = cli.main(BASE + ["--workers", "2", "--install", str(wheel), "--python",
                          "~/venv/bin/python", "--", *SWEEP])
    assert rc == 0
    calls = fake()
    copies = [c for c in calls if c[4] == "scp"]
    assert sorted(map(_worker, copies)) == [0, 1]
    assert all(c[5:7] == [str(wheel), "my-tpu:lightjax-0.1.0-py3-none-any.whl"] for c in copies)
    installs = [_remote(c) for c in calls if "pip install" in " ".join(c)]
    assert installs[0] == ("~/venv/bin/python -m pip install -U "
                           "./lightjax-0.1.0-py3-none-any.whl \"jax[tpu]\" && ~/venv/bin/python "
                           "-m pip install --no-deps --force-reinstall "
                           "./lightjax-0.1.0-py3-none-any.whl")
    assert calls.index(copies[-1]) < min(calls.index(c) for c in calls if "-m lightjax" in
                                         " ".join(c))


def test_failing_worker_gives_its_exit_status_and_names_its_log(fake, capsys, monkeypatch):
    monkeypatch.setenv("FAKE_FAIL_WORKER", "2")
    rc = cli.main(BASE + ["--workers", "3", "--logs", "logs", "--no-install", "--", *SWEEP])
    err = capsys.readouterr().err
    assert rc == 3
    assert "worker 2: run failed with exit status 3 (logs/worker-2.log): RuntimeError: boom" in err
    assert "worker 0" not in err and "worker 1" not in err
    assert all("pip" not in " ".join(c) for c in fake())  # --no-install


def test_install_failure_stops_before_anything_runs(fake, capsys, monkeypatch):
    monkeypatch.setenv("FAKE_FAIL_INSTALL", "1")
    rc = cli.main(BASE + ["--workers", "2", "--logs", "logs", "--", *SWEEP])
    assert rc == 1
    assert "worker 1: install failed with exit status 1" in capsys.readouterr().err
    assert not any("-m lightjax" in " ".join(c) for c in fake())


@pytest.mark.parametrize("args, message", [
    (["--workers", "2", "--", "cost", "--model", "mobilenet_v1"],
     "lightjax cost does not take --distributed (it runs on one host); launch-tpu runs: sweep"),
    (["--workers", "2", "--", "frobnicate"], "unknown lightjax command 'frobnicate'"),
    (["--workers", "2"], "give the lightjax command to run after --"),
    (["--workers", "2", "--", *SWEEP, "--coordinator", "h:1"], "drop --coordinator"),
    (["--dry-run", "--", *SWEEP], "--dry-run needs --workers N"),
    (["--workers", "0", "--", *SWEEP], "--workers must be a positive integer"),
    (["--install", "dist/missing.whl", "--", *SWEEP], "no such wheel file 'dist/missing.whl'"),
    (["--install", "./", "--", *SWEEP], "is a local directory"),
    (["--env", "1X=2", "--", *SWEEP], "--env must be KEY=VALUE"),
])
def test_bad_input_is_one_line_and_runs_no_gcloud(fake, capsys, args, message):
    rc = cli.main(BASE + args)
    err = capsys.readouterr().err
    assert rc == 2 and fake() == []
    assert message in err and len(err.strip().splitlines()) == 1


def test_describe_failure_and_missing_gcloud_are_one_line(fake, capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("FAKE_DESCRIBE_FAIL", "1")
    assert cli.main(BASE + ["--", *SWEEP]) == 2
    err = capsys.readouterr().err.strip()
    assert err == ("lightjax: error: gcloud could not describe TPU my-tpu in zone us-central2-b: "
                   "ERROR: (gcloud.compute.tpus.tpu-vm.describe) NOT_FOUND: no such TPU")
    monkeypatch.setenv("PATH", str(tmp_path / "nothing"))
    assert cli.main(BASE + ["--workers", "2", "--", *SWEEP]) == 2
    assert "gcloud not found on PATH" in capsys.readouterr().err


def test_ctrl_c_sends_sigterm_to_every_worker_and_waits_for_their_checkpoint(fake, tmp_path):
    env = {**os.environ, "FAKE_HANG": "1", "JAX_PLATFORMS": "cpu"}
    proc = subprocess.Popen([sys.executable, "-m", "lightjax", *BASE, "--workers", "3",
                             "--no-install", "--logs", "logs", "--", *SWEEP], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            # a suite started in the background (`cmd &`) ignores SIGINT, and an
                            # ignored SIGINT is inherited: Python would never raise Ctrl-C
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + 300
        logs = [tmp_path / "logs" / f"worker-{i}.log" for i in range(3)]
        while not all(p.exists() and "echo $$" in p.read_text() for p in logs):
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=300)  # slow when the suite loads both cores
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    stops = [c for c in fake() if "kill -TERM" in " ".join(c)]
    assert sorted(map(_worker, stops)) == [0, 1, 2]
    assert all(f".lightjax-launch-{_worker(c)}.pid" in _remote(c) for c in stops)
    assert all("checkpoint written" in p.read_text() for p in logs)  # waited for their exit
    assert "stopped (worker exit statuses: 143, 143, 143)" in err
