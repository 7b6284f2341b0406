"""Warm start from another run (``train.init_from``): copy every tensor whose path and shape
match, keep the fresh initialisation of the rest, and report both.

Typical use: a detector's backbone from a classification run, e.g. ``yolov3_mobilenet_v1``
(parameters under ``backbone/...``) from a ``mobilenet_v1`` run (the same layers at the top
level). A tensor of the new model at path ``a/b/c`` takes the source tensor at ``a/b/c``, else the
one at the path without its first component (``b/c``); only ``params`` and ``batch_stats`` are
read (optimizer state, step and compression state start fresh). A tensor whose path matches but
whose shape differs (a different width or class count: the classifier) is not copied and is
reported; a run whose tensors match nothing is an error.
"""
from __future__ import annotations

import dataclasses
import os
from typing import Any

import jax
import numpy as np
from flax import traverse_util

from lightjax.errors import ValidationError
from lightjax.train import checkpoint

COLLECTIONS = ("params", "batch_stats")


@dataclasses.dataclass
class Report:
    """What a warm start copied: tensor paths (``collection/a/b``) loaded, with a different
    shape (skipped) and absent from the source (kept fresh), and the loaded parameter count."""

    loaded: list[str]
    shape_mismatch: list[str]
    missing: list[str]
    loaded_values: int

    def line(self, source: str) -> str:
        total = len(self.loaded) + len(self.shape_mismatch) + len(self.missing)
        parts = [f"init_from {source}: loaded {len(self.loaded)} of {total} tensors "
                 f"({self.loaded_values:,} values)"]
        if self.shape_mismatch:
            parts.append(f"{len(self.shape_mismatch)} with another shape kept fresh "
                         f"({', '.join(self.shape_mismatch[:4])}"
                         f"{', ...' if len(self.shape_mismatch) > 4 else ''})")
        if self.missing:
            parts.append(f"{len(self.missing)} not in the source kept fresh "
                         f"({', '.join(self.missing[:4])}{', ...' if len(self.missing) > 4 else ''})")
        return "; ".join(parts)


def _flat(tree: Any) -> dict[str, Any]:
    return {"/".join(map(str, k)): v for k, v in traverse_util.flatten_dict(tree).items()}


def source_tensors(workdir: str) -> dict[str, np.ndarray]:
    """``collection/path`` -> array of the latest checkpoint of the run in ``workdir``."""
    if not os.path.isfile(os.path.join(workdir, "config.json")):
        raise ValidationError(f"train.init_from={workdir} holds no lightjax run (no config.json)")
    ckpt = checkpoint.Checkpoints(workdir)
    try:
        raw = ckpt.restore_raw()
    finally:
        ckpt.close()
    out = {}
    for collection in COLLECTIONS:
        for path, value in _flat(raw.get(collection) or {}).items():
            out[f"{collection}/{path}"] = np.asarray(value)
    return out


def merge(state: Any, source: dict[str, np.ndarray]) -> tuple[Any, Report]:
    """``state`` (a :class:`~lightjax.train.step.TrainState`) with the matching tensors of
    ``source`` copied into ``params`` and ``batch_stats`` (module docstring)."""
    loaded, mismatch, missing, values = [], [], [], 0
    new = {}
    for collection in COLLECTIONS:
        tree = getattr(state, collection)
        flat = traverse_util.flatten_dict(jax.device_get(tree) if tree else {})
        for key, value in flat.items():
            path = "/".join(map(str, key))
            candidates = [f"{collection}/{path}"]
            if len(key) > 1:
                candidates.append(f"{collection}/{'/'.join(map(str, key[1:]))}")
            found = next((c for c in candidates if c in source), None)
            name = f"{collection}/{path}"
            if found is None:
                missing.append(name)
            elif source[found].shape != np.shape(value):
                mismatch.append(name)
            else:
                flat[key] = np.asarray(source[found], np.asarray(value).dtype)
                loaded.append(name)
                values += int(np.size(value))
        new[collection] = traverse_util.unflatten_dict(flat) if flat else tree
    if not loaded:
        raise ValidationError("train.init_from: no tensor of that run matches this model's "
                              "parameter paths and shapes")
    state = state.replace(params=new["params"], batch_stats=new["batch_stats"])
    return state, Report(loaded, mismatch, missing, values)
