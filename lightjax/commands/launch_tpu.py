"""``lightjax launch-tpu``: run one lightjax command on every worker of a Cloud TPU VM slice.

Examples::

    lightjax launch-tpu --name my-tpu --zone us-central2-b -- \\
        sweep mobilenet_v1_alpha_rho:cifar100 --workdir /mnt/shared/alpha-rho
    lightjax launch-tpu --name my-tpu --zone us-central2-b --workers 4 --dry-run -- sweep ...
    lightjax launch-tpu --name my-tpu --zone us-central2-b --python '~/venv/bin/python' \\
        --install dist/lightjax-0.1.0-py3-none-any.whl -- sweep ...

Needs the Google Cloud CLI (gcloud), logged in. Installs lightjax (--install: a pip requirement,
a URL, or a local .whl copied to every worker; default: this version from PyPI) and jax[tpu]
on every worker, then starts the command with --distributed on all workers at once, through one
'gcloud compute tpus tpu-vm ssh NAME --worker=N' each. Worker N's output is written to
LOGS/worker-N.log while it runs (worker 0's also to the console); the exit status is the first
failing worker's. Ctrl-C (or SIGTERM) sends SIGTERM to the command on every worker, which writes
a checkpoint and exits; the same launch resumes. --dry-run prints the gcloud commands instead.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from typing import Iterator, Mapping, Sequence

from lightjax import __version__
from lightjax.errors import ValidationError
from lightjax.launch import parallel, tpu

NAME = "launch-tpu"
#: How long the stop commands may take, and then the run's checkpoint and exit (seconds).
STOP_TIMEOUT_S = 120.0
EXIT_GRACE_S = 300.0
DESCRIBE_TIMEOUT_S = 120.0


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(NAME, help="run a command on every worker of a Cloud TPU VM slice",
                              description=__doc__.replace("``", ""))
    p.add_argument("--name", required=True, help="TPU VM name (gcloud compute tpus tpu-vm list)")
    p.add_argument("--zone", required=True, help="its zone, e.g. us-central2-b")
    p.add_argument("--project", metavar="P",
                   help="its project (default: gcloud's configured project)")
    p.add_argument("--workers", type=int, metavar="N",
                   help="number of workers (hosts); default: asked from 'gcloud compute tpus "
                        "tpu-vm describe'")
    p.add_argument("--install", metavar="SPEC",
                   help=f"what pip installs on the workers: a requirement, a URL or a local .whl "
                        f"file (default: lightjax=={__version__})")
    p.add_argument("--no-install", action="store_true",
                   help="lightjax and jax are already installed on the workers")
    p.add_argument("--jax", default=tpu.DEFAULT_JAX, metavar="SPEC",
                   help=f"the jax requirement installed with it (default: {tpu.DEFAULT_JAX})")
    p.add_argument("--python", default=tpu.DEFAULT_PYTHON, metavar="PATH",
                   help="Python >= 3.11 on the workers, e.g. '~/venv/bin/python' (default: "
                        f"{tpu.DEFAULT_PYTHON})")
    p.add_argument("--env", action="append", default=[], metavar="KEY=VALUE",
                   help="environment variable for the command on the workers (repeatable)")
    p.add_argument("--logs", metavar="DIR", help="local directory for the workers' logs "
                                  "(default: tpu-logs/NAME-<time>)")
    p.add_argument("--dry-run", action="store_true",
                   help="print the gcloud commands (needs --workers) and run nothing")
    p.add_argument("command", nargs=argparse.REMAINDER, metavar="-- COMMAND ...",
                   help="the lightjax command and its arguments (--distributed is added)")
    p.set_defaults(run=run, command_parsers=subparsers.choices)


def distributed_commands(parsers: Mapping[str, argparse.ArgumentParser]) -> list[str]:
    """The lightjax commands that take ``--distributed``."""
    return sorted(name for name, parser in parsers.items()
                  if parser.get_default("distributed") is not None)


def lightjax_command(words: Sequence[str],
                     parsers: Mapping[str, argparse.ArgumentParser]) -> list[str]:
    """The command after ``--`` (an optional leading ``lightjax`` dropped); it must take
    ``--distributed``."""
    words = list(words)
    if words[:1] == ["--"]:
        words = words[1:]
    if words[:1] == ["lightjax"]:
        words = words[1:]
    capable = ", ".join(distributed_commands(parsers))
    if not words:
        raise ValidationError(f"give the lightjax command to run after --, e.g. '-- sweep NAME "
                              f"--workdir DIR'; commands that run on many hosts: {capable}")
    name = words[0]
    if name not in parsers or name == NAME:
        raise ValidationError(f"unknown lightjax command {name!r} for {NAME}; commands that run "
                              f"on many hosts: {capable}")
    if name not in distributed_commands(parsers):
        raise ValidationError(f"lightjax {name} does not take --distributed (it runs on one "
                              f"host); {NAME} runs: {capable}")
    return words


def run(args: argparse.Namespace) -> int:
    argv = lightjax_command(args.command, args.command_parsers)
    target = tpu.Target(args.name, args.zone, args.project)
    install = None
    if args.no_install:
        if args.install is not None:
            raise ValidationError("give either --install SPEC or --no-install, not both")
    else:
        install = tpu.Install(tpu.check_install(args.install or f"lightjax=={__version__}"),
                              args.jax)
    env = tpu.check_env(args.env)
    logs = args.logs or os.path.join("tpu-logs", f"{args.name}-{time.strftime('%Y%m%d-%H%M%S')}")
    if args.workers is not None and args.workers < 1:
        raise ValidationError(f"--workers must be a positive integer, got {args.workers}")
    if args.dry_run:
        if args.workers is None:
            raise ValidationError("--dry-run needs --workers N (finding the worker count would "
                                  "run gcloud)")
        print(tpu.format_plan(tpu.plan(target, args.workers, argv, install, args.python, env),
                              logs))
        return 0
    tpu.plan(target, args.workers or 1, argv, install, args.python, env)  # check before gcloud
    if shutil.which(tpu.GCLOUD[0]) is None:
        raise ValidationError("gcloud not found on PATH: install the Google Cloud CLI "
                              "(https://cloud.google.com/sdk/docs/install), or use --dry-run to "
                              "print the commands")
    workers = args.workers if args.workers is not None else discover_workers(target)
    steps = tpu.plan(target, workers, argv, install, args.python, env)
    with _signals_as_interrupt():
        for step in steps:
            last = step is steps[-1]
            status = run_step(step, logs, echo=last,
                              stop=tpu.stop_step(target, workers) if last else None)
            if status:
                return status
    print(f"{NAME}: finished on {workers} workers; logs in {logs}", file=sys.stderr)
    return 0


def discover_workers(target: tpu.Target) -> int:
    """The slice's worker count from ``gcloud compute tpus tpu-vm describe``."""
    try:
        proc = subprocess.run(tpu.describe_command(target), capture_output=True, text=True,
                              stdin=subprocess.DEVNULL, timeout=DESCRIBE_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise ValidationError(f"gcloud describe of TPU {target.name} gave no answer within "
                              f"{DESCRIBE_TIMEOUT_S:.0f} s; give --workers N") from None
    if proc.returncode != 0:
        reason = [line for line in proc.stderr.splitlines() if line.strip()][-1:] or [
            f"exit status {proc.returncode}"]
        raise ValidationError(f"gcloud could not describe TPU {target.name} in zone "
                              f"{target.zone}: {reason[0].strip()}")
    return tpu.worker_count(proc.stdout, target.name)


class _Signal(KeyboardInterrupt):
    """SIGTERM, handled like Ctrl-C."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


@contextlib.contextmanager
def _signals_as_interrupt() -> Iterator[None]:
    """SIGTERM raises :class:`_Signal` (a KeyboardInterrupt) in the main thread meanwhile."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise _Signal(signum)

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_step(step: tpu.Step, logs: str, echo: bool = False, stop: tpu.Step | None = None) -> int:
    """Run one step's commands together; 0, or the first failing worker's exit status (after
    one line per failing worker); 128 + signal number when interrupted."""
    paths = [os.path.join(logs, name) for name in step.logs]
    print(f"{NAME}: {step.title} on {len(paths)} workers (logs: "
          f"{os.path.join(logs, step.log.format('N'))})", file=sys.stderr)
    procs = parallel.Processes(step.commands, paths, echo=0 if echo else None, stream=sys.stdout)
    try:
        statuses = procs.wait()
    except KeyboardInterrupt as err:
        return _interrupted(procs, stop, logs, getattr(err, "signum", signal.SIGINT))
    failed = [(i, s) for i, s in enumerate(statuses) if s != 0]
    for i, status in failed:
        detail = parallel.last_line(paths[i])
        print(f"{NAME}: worker {i}: {step.title.split()[0]} failed with exit status {status} "
              f"({paths[i]}){': ' + detail if detail else ''}", file=sys.stderr)
    return failed[0][1] if failed else 0


def _interrupted(procs: parallel.Processes, stop: tpu.Step | None, logs: str,
                 signum: int) -> int:
    """Stop the workers' commands (SIGTERM through ``stop``, then wait for their checkpoint),
    then the local processes; 128 + ``signum``."""
    stopper = None
    try:
        if stop is not None:
            print(f"{NAME}: interrupted: sending SIGTERM to the command on every worker (it "
                  f"writes a checkpoint and exits); interrupt again to stop waiting",
                  file=sys.stderr)
            stopper = parallel.Processes(stop.commands,
                                         [os.path.join(logs, name) for name in stop.logs])
            stopper.wait(STOP_TIMEOUT_S)
            procs.wait(EXIT_GRACE_S)
    except KeyboardInterrupt:
        pass
    finally:
        if stopper is not None:
            stopper.terminate()
        statuses = procs.terminate()
    print(f"{NAME}: stopped (worker exit statuses: "
          f"{', '.join('-' if s is None else str(s) for s in statuses)}); logs in {logs}",
          file=sys.stderr)
    return 128 + int(signum)
