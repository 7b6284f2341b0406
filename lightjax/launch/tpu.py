"""The gcloud commands running one lightjax command on every worker of a Cloud TPU VM slice.

Nothing here starts a process: :func:`plan` returns :class:`Step` s, each a tuple of argv lists
(one per worker, meant to run in parallel, each with its own log file), that
:mod:`lightjax.launch.parallel` runs and ``lightjax launch-tpu --dry-run`` prints. The steps:

1. ``copy`` (only when the install spec is a local ``.whl``)::

       gcloud compute tpus tpu-vm scp WHEEL NAME:WHEEL_NAME --zone=Z [--project=P] --worker=N \\
           --quiet

2. ``install``: ``PYTHON -m pip install -U SPEC 'jax[tpu]'`` (a wheel, path or URL is then
   reinstalled with ``--no-deps --force-reinstall``, so a rebuilt wheel of the same version wins);
3. ``run``: ``echo $$ > .lightjax-launch-N.pid && exec PYTHON -m lightjax COMMAND ...
   --distributed``, each through ``gcloud compute tpus tpu-vm ssh NAME --zone=Z [--project=P]
   --worker=N --command=... --quiet``.

:func:`stop_step` signals the run on every worker (SIGTERM: lightjax finishes its step, writes a
checkpoint and exits 143). One ``ssh --worker=N`` per worker rather than one ``--worker=all``:
gcloud runs ``--worker=all`` in threads whose exit statuses older releases drop, and prints every
worker's output interleaved; per-worker processes give each worker's exact exit status and its
own log, streamed to the local disk while it runs (nothing left to fetch from a failed slice).
"""
from __future__ import annotations

import dataclasses
import json
import os
import re
import shlex
from typing import Sequence

from lightjax.errors import ValidationError

GCLOUD = ("gcloud", "compute", "tpus", "tpu-vm")
#: gcloud never prompts (several run at once, none reads the terminal): ``--quiet``.
QUIET = "--quiet"
DEFAULT_JAX = "jax[tpu]"
DEFAULT_PYTHON = "python3"
#: The run's process id on worker N (in its home directory; one name per worker, should homes be
#: shared), read by the stop command.
PID_FILE = ".lightjax-launch-{}.pid"
DISTRIBUTED = "--distributed"
#: Flags of the explicit multi-process setup, which ``--distributed`` replaces.
MANUAL_FLAGS = ("--coordinator", "--num-processes", "--process-id")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclasses.dataclass(frozen=True)
class Target:
    """A TPU VM slice: its name, zone and (optional, else gcloud's default) project."""

    name: str
    zone: str
    project: str | None = None

    def flags(self) -> list[str]:
        return [f"--zone={self.zone}"] + ([f"--project={self.project}"] if self.project else [])


@dataclasses.dataclass(frozen=True)
class Install:
    """What ``pip`` installs on every worker: ``spec`` (a requirement such as
    ``lightjax==0.1.0``, a URL, or a local ``.whl`` copied over first) plus ``jax``."""

    spec: str
    jax: str = DEFAULT_JAX

    @property
    def local_wheel(self) -> str | None:
        """The local wheel file to copy, or None."""
        return self.spec if is_local_wheel(self.spec) else None

    def remote_spec(self) -> str:
        """The spec as the workers see it (a copied wheel lies in the home directory)."""
        wheel = self.local_wheel
        return f"./{os.path.basename(wheel)}" if wheel else self.spec


@dataclasses.dataclass(frozen=True)
class Step:
    """Commands to run together, one per worker; ``log.format(i)`` is the log file name of
    ``commands[i]`` (inside the logs directory)."""

    title: str
    commands: tuple[tuple[str, ...], ...]
    log: str = "worker-{}.log"

    @property
    def logs(self) -> tuple[str, ...]:
        return tuple(self.log.format(i) for i in range(len(self.commands)))


def is_local_wheel(spec: str) -> bool:
    return spec.endswith(".whl") and "://" not in spec


def check_install(spec: str) -> str:
    """``spec`` if pip can use it on the workers; a local wheel must exist, a local directory
    must be built into a wheel first."""
    if not spec.strip():
        raise ValidationError("--install must not be empty: give a pip requirement, a URL or a "
                              "local .whl file")
    if is_local_wheel(spec) and not os.path.isfile(spec):
        raise ValidationError(f"--install: no such wheel file {spec!r} (build one with "
                              f"'python -m pip wheel --no-deps -w dist .')")
    if (os.sep in spec or spec.startswith(".")) and os.path.isdir(spec):
        raise ValidationError(f"--install: {spec!r} is a local directory, which the workers do "
                              f"not have; build a wheel ('python -m pip wheel --no-deps -w dist "
                              f"{spec}') and pass the .whl")
    return spec


def check_env(items: Sequence[str]) -> tuple[str, ...]:
    """``KEY=VALUE`` items for the workers' environment."""
    for item in items:
        key, sep, _ = item.partition("=")
        if not sep or not _ENV_NAME.fullmatch(key):
            raise ValidationError(f"--env must be KEY=VALUE with KEY a shell variable name, got "
                                  f"{item!r}")
    return tuple(items)


def distributed_argv(argv: Sequence[str]) -> list[str]:
    """The lightjax command with ``--distributed`` added unless present; the explicit
    ``--coordinator`` setup is refused (each worker would need its own process id)."""
    for arg in argv:
        if arg.split("=", 1)[0] in MANUAL_FLAGS:
            raise ValidationError(f"launch-tpu runs the command with --distributed on every "
                                  f"worker; drop {arg.split('=', 1)[0]} (and "
                                  f"{'/'.join(MANUAL_FLAGS)})")
    argv = list(argv)
    return argv if DISTRIBUTED in argv else argv + [DISTRIBUTED]


def describe_command(target: Target) -> list[str]:
    """``gcloud compute tpus tpu-vm describe`` as JSON (its ``networkEndpoints``: the workers)."""
    return [*GCLOUD, "describe", target.name, *target.flags(), "--format=json"]


def worker_count(describe_json: str, name: str) -> int:
    """The number of workers (hosts) in ``describe`` output; the slice must be READY."""
    try:
        node = json.loads(describe_json)
    except json.JSONDecodeError:
        node = None
    if not isinstance(node, dict):
        raise ValidationError(f"gcloud describe of TPU {name} did not print a JSON object; give "
                              f"the worker count with --workers N")
    state = node.get("state")
    if state is not None and state != "READY":
        raise ValidationError(f"TPU {name} is {state}, not READY")
    endpoints = node.get("networkEndpoints")
    if not isinstance(endpoints, list) or not endpoints:
        raise ValidationError(f"TPU {name} lists no networkEndpoints (is it a TPU VM?); give the "
                              f"worker count with --workers N")
    return len(endpoints)


def ssh(target: Target, worker: int, command: str) -> tuple[str, ...]:
    """Run a shell command on one worker."""
    return (*GCLOUD, "ssh", target.name, *target.flags(), f"--worker={worker}",
            f"--command={command}", QUIET)


def scp(target: Target, worker: int, local: str, remote: str) -> tuple[str, ...]:
    """Copy a local file to one worker (``remote`` relative to its home directory)."""
    return (*GCLOUD, "scp", local, f"{target.name}:{remote}", *target.flags(),
            f"--worker={worker}", QUIET)


def quote(word: str) -> str:
    """``word`` for the remote shell: bare when safe, else in double quotes when nothing in it
    is special there (readable inside ``--command='...'``), else ``shlex.quote``."""
    if shlex.quote(word) == word:
        return word
    if not any(c in word for c in '$`"\\!\n'):
        return f'"{word}"'
    return shlex.quote(word)


def join(words: Sequence[str]) -> str:
    return " ".join(quote(w) for w in words)


def quote_path(path: str) -> str:
    """``path`` for the remote shell: quoted, but a leading ``~/`` still expands."""
    if path.startswith("~/"):
        return "~/" + quote(path[2:])
    return quote(path)


def install_command(install: Install, python: str = DEFAULT_PYTHON) -> str:
    """The remote shell command installing lightjax and jax."""
    pip = f"{quote_path(python)} -m pip install"
    spec = install.remote_spec()
    command = f"{pip} -U {join([spec, install.jax])}"
    if "/" in spec or spec.endswith(".whl"):  # same version number, new build: reinstall
        command += f" && {pip} --no-deps --force-reinstall {quote(spec)}"
    return command


def run_command(argv: Sequence[str], python: str = DEFAULT_PYTHON, env: Sequence[str] = (),
                worker: int = 0) -> str:
    """Worker ``worker``'s shell command: record the process id, then become ``lightjax ARGV``."""
    prefix = f"env {join(env)} " if env else ""
    return (f"echo $$ > {PID_FILE.format(worker)} && exec {prefix}{quote_path(python)} "
            f"-m lightjax {join(argv)}")


def stop_command(worker: int = 0) -> str:
    """Worker ``worker``'s shell command sending SIGTERM to the run (nothing if none is
    recorded)."""
    pid = PID_FILE.format(worker)
    return f'test -f {pid} && kill -TERM "$(cat {pid})" 2>/dev/null; rm -f {pid}'


def _per_worker(title: str, workers: int, log: str, build) -> Step:
    return Step(title, tuple(build(i) for i in range(workers)), log)


def plan(target: Target, workers: int, argv: Sequence[str], install: Install | None,
         python: str = DEFAULT_PYTHON, env: Sequence[str] = ()) -> tuple[Step, ...]:
    """The steps running ``lightjax ARGV --distributed`` on ``workers`` workers (copy the wheel
    and install first unless ``install`` is None)."""
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValidationError(f"--workers must be a positive integer, got {workers!r}")
    argv = distributed_argv(argv)
    steps = []
    if install is not None:
        wheel = install.local_wheel
        if wheel:
            name = os.path.basename(wheel)
            steps.append(_per_worker(f"copy {name}", workers, "worker-{}.copy.log",
                                     lambda i: scp(target, i, wheel, name)))
        command = install_command(install, python)
        steps.append(_per_worker(f"install {install.remote_spec()} {install.jax}", workers,
                                 "worker-{}.install.log", lambda i: ssh(target, i, command)))
    steps.append(_per_worker(f"run lightjax {shlex.join(argv)}", workers, "worker-{}.log",
                             lambda i: ssh(target, i, run_command(argv, python, env, i))))
    return tuple(steps)


def stop_step(target: Target, workers: int) -> Step:
    """SIGTERM to the run on every worker (lightjax writes a checkpoint and exits 143)."""
    return _per_worker("stop", workers, "worker-{}.stop.log",
                       lambda i: ssh(target, i, stop_command(i)))


def format_plan(steps: Sequence[Step], logs_dir: str) -> str:
    """The steps as shell lines (``shlex``-quoted), each step headed by a comment."""
    lines = []
    for n, step in enumerate(steps, 1):
        lines.append(f"# {n}/{len(steps)} {step.title} ({len(step.commands)} in parallel; logs: "
                     f"{os.path.join(logs_dir, step.log.format('N'))})")
        lines += [shlex.join(argv) for argv in step.commands]
    return "\n".join(lines)
