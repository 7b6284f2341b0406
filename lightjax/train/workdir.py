"""Claiming a directory for a run or a sweep without ever overwriting someone else's files."""
from __future__ import annotations

import json
import os
from lightjax.errors import ValidationError


def claim(workdir: str, filename: str, text: str, kind: str, mismatch: str) -> None:
    """Make ``workdir`` hold ``filename`` with the JSON ``text``, or accept it if it already does.

    ``ValueError`` (nothing written) when ``filename`` there holds different JSON (message
    ``mismatch``), or when ``workdir`` is a non-empty directory without ``filename`` (not a lightjax
    ``kind``).
    """
    path = os.path.join(workdir, filename)
    if os.path.exists(path):
        with open(path) as f:
            if json.loads(f.read()) != json.loads(text):
                raise ValidationError(mismatch)
        return
    if os.path.isdir(workdir) and os.listdir(workdir):
        raise ValidationError(f"{workdir} is not empty and holds no lightjax {kind} (no {filename}); "
                         f"refusing to write into it")
    os.makedirs(workdir, exist_ok=True)
    with open(path, "w") as f:
        f.write(text)
