"""Claiming a directory for a run or a sweep without ever overwriting someone else's files."""
from __future__ import annotations

import json
import os
from lightjax.errors import ValidationError


def check_new(out: str) -> str:
    """``out`` if a new run may be written there (it does not exist, or is an empty directory);
    else a one-line ``ValidationError`` (nothing is ever written into a used directory)."""
    out = os.fspath(out)
    if os.path.exists(out) and (not os.path.isdir(out) or os.listdir(out)):
        raise ValidationError(f"{out} already exists and is not empty; choose a new --out "
                              f"directory (nothing is overwritten)")
    return out


def claim(workdir: str, filename: str, text: str, kind: str, mismatch: str) -> None:
    """Make ``workdir`` hold ``filename`` with the JSON ``text``, or accept it if it already does.

    ``ValueError`` (nothing written) when ``filename`` there holds different JSON (message
    ``mismatch``), or when ``workdir`` is a non-empty directory without ``filename`` (not a lightjax
    ``kind``).
    """
    path = os.path.join(workdir, filename)
    if os.path.isdir(workdir) and os.listdir(workdir) and not os.path.exists(path):
        raise ValidationError(f"{workdir} is not empty and holds no lightjax {kind} (no {filename}); "
                         f"refusing to write into it")
    if os.path.exists(path):
        with open(path) as f:
            if json.loads(f.read()) != json.loads(text):
                raise ValidationError(mismatch)
        return
    os.makedirs(workdir, exist_ok=True)
    # written beside the workdir and moved in: another process (jax.distributed) claiming the same
    # workdir sees an empty directory or the whole file, never a partial one
    tmp = f"{os.path.normpath(workdir)}.{filename}.{os.getpid()}.tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


class Lock:
    """An exclusive lock on ``<workdir>/.lock`` held while a process writes into the workdir.

    ``fcntl.flock`` on the file: the kernel releases it when the holder exits or is killed, so a
    lock file left behind by a killed process is stale and simply taken over (its previous
    owner is reported by :attr:`taken_over`). A second live process gets a
    :class:`~lightjax.errors.ValidationError` naming the holder. With several processes
    (``jax.distributed``) only process 0 locks (pass ``enabled=False`` elsewhere).
    """

    def __init__(self, workdir: str, enabled: bool = True):
        self.path = os.path.join(workdir, ".lock")
        self.enabled = enabled
        self._file = None
        self.taken_over: str | None = None

    def __enter__(self) -> "Lock":
        if not self.enabled:
            return self
        import fcntl
        import socket
        import time

        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        f = open(self.path, "a+")
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            f.seek(0)
            holder = f.read().strip() or "another process"
            f.close()
            raise ValidationError(f"{os.path.dirname(self.path)} is in use by {holder}; wait for "
                                  f"it to finish or stop it (Ctrl-C / kill: it checkpoints and "
                                  f"exits), then run the command again") from None
        f.seek(0)
        previous = f.read().strip()
        self.taken_over = previous or None
        f.seek(0)
        f.truncate()
        f.write(f"process {os.getpid()} on {socket.gethostname()} since "
                f"{time.strftime('%Y-%m-%d %H:%M:%S')}\n")
        f.flush()
        self._file = f
        return self

    def __exit__(self, *exc) -> None:
        if self._file is not None:
            import fcntl

            self._file.seek(0)
            self._file.truncate()
            fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)
            self._file.close()
            self._file = None
