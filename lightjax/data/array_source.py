"""Sources: one split of random-access examples, and :class:`ArraySource`, the in-memory one.

A source's ``load(indices, crop_boxes=None)`` returns one example dict of numpy arrays (fields in
:mod:`lightjax.data.fields`): ``'image'`` float32 (n, H, W, C) in [0, 1] plus the fields named by
its ``fields`` attribute.
"""
from __future__ import annotations

import dataclasses
from typing import Protocol

import numpy as np

from lightjax.data import boxes as box_lib
from lightjax.data import fields as fields_lib
from lightjax.data import images as image_lib
from lightjax.errors import ValidationError


class Source(Protocol):
    """One split: ``len`` examples, loaded by index as a dict of numpy arrays."""

    fields: tuple[str, ...]  # what ``load`` returns besides 'image' (see lightjax.data.fields)
    crops_at_decode: bool    # True: ``load`` cuts inception crops itself (from the full image)

    def __len__(self) -> int: ...

    def load(self, indices: np.ndarray, crop_boxes: np.ndarray | None = None
             ) -> dict[str, np.ndarray]: ...


@dataclasses.dataclass
class ArraySource:
    """An in-memory split of N examples.

    ``images`` (N, H, W, C) uint8 0..255 or float32 0..1; optional ``labels`` (N,), ``masks``
    (N, H, W) integer class ids (uint8 keeps memory low), and ``boxes`` (N, M, 4) with
    ``box_classes`` (N, M) in the layout of :mod:`lightjax.data.boxes` (real boxes first, class -1
    after them), optionally with ``box_difficult`` (N, M) bool (False on padding). ``dropped_boxes``
    counts boxes the builder could not fit into M (reported, never silently lost).
    """

    images: np.ndarray
    labels: np.ndarray | None = None
    masks: np.ndarray | None = None
    boxes: np.ndarray | None = None
    box_classes: np.ndarray | None = None
    dropped_boxes: int = 0
    box_difficult: np.ndarray | None = None
    crops_at_decode = False

    def __post_init__(self):
        n = len(self.images)
        if self.images.ndim != 4:
            raise ValidationError(f"ArraySource: images must be (N, H, W, C), got "
                                  f"{self.images.shape}")
        if self.labels is not None:
            self.labels = np.asarray(self.labels, dtype=np.int32)
            if self.labels.shape != (n,):
                raise ValidationError(f"ArraySource: images must be (N, H, W, C) with N = "
                                      f"len(labels); got {self.images.shape} and "
                                      f"{self.labels.shape}")
        if self.masks is not None and self.masks.shape != self.images.shape[:3]:
            raise ValidationError(f"ArraySource: masks must be (N, H, W) = "
                                  f"{self.images.shape[:3]}, got {self.masks.shape}")
        if (self.boxes is None) != (self.box_classes is None):
            raise ValidationError("ArraySource: boxes and box_classes come together")
        if self.boxes is not None:
            self.boxes = np.asarray(self.boxes, np.float32)
            self.box_classes = np.asarray(self.box_classes, np.int32)
            m = self.box_classes.shape[1] if self.box_classes.ndim == 2 else -1
            if self.boxes.shape != (n, m, 4) or self.box_classes.shape != (n, m):
                raise ValidationError(f"ArraySource: boxes must be (N, M, 4) and box_classes "
                                      f"(N, M) with N = {n}, got {self.boxes.shape} and "
                                      f"{self.box_classes.shape}")
            count = (self.box_classes >= 0).sum(axis=1)
            if not np.array_equal(self.box_classes >= 0, box_lib.real(self.box_classes, count)):
                raise ValidationError("ArraySource: real boxes must come first in every row "
                                      "(box_classes >= 0, then -1 padding)")
        if self.box_difficult is not None:
            if self.boxes is None:
                raise ValidationError("ArraySource: box_difficult needs boxes and box_classes")
            self.box_difficult = np.asarray(self.box_difficult, bool)
            if self.box_difficult.shape != self.box_classes.shape:
                raise ValidationError(f"ArraySource: box_difficult must be (N, M) = "
                                      f"{self.box_classes.shape}, got {self.box_difficult.shape}")
            if (self.box_difficult & (self.box_classes < 0)).any():
                raise ValidationError("ArraySource: box_difficult must be False on padding "
                                      "entries (box_classes -1)")

    @property
    def fields(self) -> tuple[str, ...]:
        out = ("label",) if self.labels is not None else ()
        out += ("mask",) if self.masks is not None else ()
        out += fields_lib.BOX_FIELDS if self.boxes is not None else ()
        return out + (("box_difficult",) if self.box_difficult is not None else ())

    @property
    def max_boxes(self) -> int | None:
        return None if self.boxes is None else int(self.boxes.shape[1])

    def __len__(self) -> int:
        return len(self.images)

    def load(self, indices: np.ndarray, crop_boxes: np.ndarray | None = None
             ) -> dict[str, np.ndarray]:
        out = {"image": image_lib.to_float(self.images[indices])}
        if self.labels is not None:
            out["label"] = self.labels[indices]
        if self.masks is not None:
            out["mask"] = self.masks[indices].astype(np.int32)
        if self.boxes is not None:
            out["boxes"] = self.boxes[indices]
            out["box_classes"] = self.box_classes[indices]
            out["box_count"] = (out["box_classes"] >= 0).sum(axis=1).astype(np.int32)
        if self.box_difficult is not None:
            out["box_difficult"] = self.box_difficult[indices]
        return out


def channel_stats(source: Source, max_examples: int = 2048) -> tuple[tuple[float, ...],
                                                                      tuple[float, ...]]:
    """Per-channel mean/std of a split in [0, 1] pixel space (all examples of an in-memory split,
    else ``max_examples`` evenly spaced ones)."""
    n = len(source)
    if isinstance(source, ArraySource) and source.images.dtype == np.uint8:
        return _uint8_stats(source.images)
    if isinstance(source, ArraySource) and n * source.images[0].size <= 2**28:
        x = image_lib.to_float(source.images)
    else:
        idx = np.unique(np.linspace(0, n - 1, min(n, max_examples)).astype(int))
        x = source.load(idx)["image"]
    x = x.reshape(-1, x.shape[-1]).astype(np.float64)
    std = np.maximum(x.std(axis=0), 1e-6)
    return tuple(float(v) for v in x.mean(axis=0)), tuple(float(v) for v in std)


def _uint8_stats(images: np.ndarray) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Exact per-channel mean/std of uint8 images in [0, 1] units, from value histograms."""
    values = np.arange(256, dtype=np.float64) / 255.0
    means, stds = [], []
    for c in range(images.shape[-1]):
        hist = np.bincount(images[..., c].reshape(-1), minlength=256).astype(np.float64)
        p = hist / hist.sum()
        mean = float(p @ values)
        means.append(mean)
        stds.append(max(float(np.sqrt(p @ (values - mean) ** 2)), 1e-6))
    return tuple(means), tuple(stds)
