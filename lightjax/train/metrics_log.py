"""``metrics.jsonl``: one JSON row per finished epoch, never duplicated across resumes.

A run resumes from its last checkpoint, which may be older than the last logged epoch (checkpoints
are kept every ``checkpoint_every_epochs``; a killed process may have logged an epoch and died
before the next checkpoint). :meth:`MetricsLog.rewind` drops the rows of epochs the resumed run
will train again, rewriting the file atomically, so every epoch appears once.
"""
from __future__ import annotations

import json
import os
from typing import Any


class MetricsLog:
    """Append-only per-epoch log with rewind (only process 0 writes)."""

    def __init__(self, path: str, writer: bool = True):
        self.path = path
        self.writer = writer

    def rows(self) -> list[dict[str, Any]]:
        if not os.path.exists(self.path):
            return []
        out = []
        with open(self.path) as f:
            for line in f:
                line = line.strip()
                if not line:
                    continue
                try:
                    out.append(json.loads(line))
                except json.JSONDecodeError:  # a line cut short by a killed process
                    continue
        return out

    def rewind(self, epochs_done: int) -> None:
        """Keep only rows of epochs ``<= epochs_done`` (the resumed run logs the rest again)."""
        if not self.writer or not os.path.exists(self.path):
            return
        rows = self.rows()
        keep = [r for r in rows if int(r.get("epoch", 0)) <= epochs_done]
        with open(self.path) as f:
            intact = f.read().endswith("\n") or not rows
        if len(keep) == len(rows) and intact:
            return
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            f.writelines(json.dumps(r) + "\n" for r in keep)
        os.replace(tmp, self.path)

    def append(self, row: dict[str, Any]) -> None:
        if self.writer:
            with open(self.path, "a") as f:
                f.write(json.dumps(row) + "\n")
