"""SIGINT / SIGTERM during a run: finish the current step, checkpoint, exit cleanly.

:class:`Guard` (a context manager around the training loop) replaces the handlers of SIGINT
(Ctrl-C) and SIGTERM (what a preempted cloud TPU VM, ``kill`` or a batch scheduler sends) with
one that only records the signal. The loop polls :meth:`Guard.pending` after every step; on a
signal it writes a checkpoint and raises :class:`lightjax.errors.Interrupted`, which the command
line reports in one line with exit status 130 (SIGINT) or 143 (SIGTERM). A second Ctrl-C while
the checkpoint is being written is deferred too; the previous handlers are restored on exit.

With several processes (``jax.distributed``), :meth:`Guard.pending` agrees across processes (a
host all-gather, done every :data:`MULTI_PROCESS_EVERY` steps and at epoch ends — the same steps
on every process), so every process stops after the same step even when only one was signalled.
"""
from __future__ import annotations

import signal
import threading
from typing import Any

SIGNALS = (signal.SIGINT, signal.SIGTERM)
#: with several processes, poll (a host all-gather) only every this many steps
MULTI_PROCESS_EVERY = 20


class Guard:
    """Defer SIGINT/SIGTERM to the loop's next poll (a no-op outside the main thread)."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}

    def _handler(self, signum: int, frame: Any) -> None:
        if self.signum is None:
            self.signum = signum

    def __enter__(self) -> "Guard":
        if threading.current_thread() is threading.main_thread():
            for s in SIGNALS:
                self._previous[s] = signal.signal(s, self._handler)
        return self

    def __exit__(self, *exc: Any) -> None:
        for s, handler in self._previous.items():
            signal.signal(s, handler)
        self._previous.clear()

    def pending(self, step: int = 0, epoch_end: bool = False) -> int | None:
        """The signal received by this or (with several processes) any process, else ``None``
        (with several processes only polled every :data:`MULTI_PROCESS_EVERY` steps)."""
        import jax

        if jax.process_count() == 1:
            return self.signum
        if step % MULTI_PROCESS_EVERY and not epoch_end:
            return None
        import numpy as np
        from jax.experimental import multihost_utils

        seen = multihost_utils.process_allgather(np.int32(self.signum or 0))
        got = int(np.max(seen))
        return got or None
