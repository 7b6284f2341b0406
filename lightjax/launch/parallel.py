"""Run several commands at once, each one's output (stdout and stderr) appended to its log file.

Each process gets its own session (process group), so a Ctrl-C in the terminal reaches only the
launcher, which decides how to stop them (:meth:`Processes.terminate` signals each group). One
process's output may also be echoed live to a text stream (the launcher's stdout).
"""
from __future__ import annotations

import codecs
import os
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import BinaryIO, Sequence, TextIO


class Processes:
    """``commands[i]`` started now, its output appended to ``logs[i]`` while it runs (the log's
    directory is created); ``echo=i`` also copies command i's output to ``stream``."""

    def __init__(self, commands: Sequence[Sequence[str]], logs: Sequence[str | os.PathLike],
                 echo: int | None = None, stream: TextIO | None = None) -> None:
        if len(commands) != len(logs):
            raise ValueError(f"{len(commands)} commands but {len(logs)} log files")
        self.logs = [Path(p) for p in logs]
        self.procs: list[subprocess.Popen] = []
        self.readers: list[threading.Thread] = []
        try:
            for i, (argv, log) in enumerate(zip(commands, self.logs)):
                log.parent.mkdir(parents=True, exist_ok=True)
                proc = subprocess.Popen(list(argv), stdin=subprocess.DEVNULL,
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                        start_new_session=True)
                self.procs.append(proc)
                reader = threading.Thread(target=_copy, args=(proc.stdout, log,
                                          stream if i == echo else None), daemon=True)
                reader.start()
                self.readers.append(reader)
        except BaseException:
            self.terminate()
            raise

    def poll(self) -> list[int | None]:
        """Exit statuses so far (None: still running)."""
        return [p.poll() for p in self.procs]

    def wait(self, timeout: float | None = None) -> list[int | None]:
        """Wait for every process (at most ``timeout`` seconds in all) and for its log to be
        complete; returns the exit statuses (None: still running at the timeout)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for proc, reader in zip(self.procs, self.readers):
            left = None if deadline is None else max(deadline - time.monotonic(), 0.0)
            try:
                proc.wait(left)
            except subprocess.TimeoutExpired:
                continue
            reader.join(None if deadline is None else max(deadline - time.monotonic(), 0.0))
        return self.poll()

    def terminate(self, grace: float = 5.0) -> list[int | None]:
        """SIGTERM to every running process group, SIGKILL after ``grace`` seconds."""
        for sig in (signal.SIGTERM, signal.SIGKILL):
            running = [p for p in self.procs if p.poll() is None]
            for proc in running:
                try:
                    os.killpg(proc.pid, sig)
                except ProcessLookupError:
                    pass
            if running and sig == signal.SIGTERM:
                self.wait(grace)
        return self.wait(grace)


def _copy(source: BinaryIO, log: Path, stream: TextIO | None) -> None:
    """Append everything ``source`` yields to ``log`` (and decoded to ``stream``) until EOF."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    with source, open(log, "ab", buffering=0) as out:
        while chunk := source.read1(65536):
            out.write(chunk)
            if stream is not None:
                try:
                    stream.write(decoder.decode(chunk))
                    stream.flush()
                except (OSError, ValueError):  # closed console: keep draining into the log
                    stream = None


def last_line(path: str | os.PathLike, limit: int = 65536) -> str:
    """The last non-empty line of a text file ('' when there is none or it cannot be read)."""
    try:
        with open(path, "rb") as f:
            f.seek(max(os.path.getsize(path) - limit, 0))
            text = f.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    lines = [line.strip() for line in text.replace("\r", "\n").splitlines() if line.strip()]
    return lines[-1] if lines else ""
