"""Example fields: names, dtypes, shapes and the values that fill padded batch rows.

Every example is a dict of numpy arrays with a leading example axis ``n``:

================= ======= ============ =============================================================
field             dtype   shape        meaning
================= ======= ============ =============================================================
``image``         float32 (n, H, W, C) pixels, [0, 1] from ``Source.load``; normalized in batches
``label``         int32   (n,)         class (classification)
``mask``          int32   (n, H, W)    per-pixel class; :data:`IGNORE_LABEL` = no label
``boxes``         float32 (n, M, 4)    (x_min, y_min, x_max, y_max) as fractions of W / H
``box_classes``   int32   (n, M)       class of each box; -1 on padded entries
``box_count``     int32   (n,)         real boxes, always the first ``box_count`` entries
``box_difficult`` bool    (n, M)       optional: ignored in evaluation (VOC difficult, COCO crowd)
================= ======= ============ =============================================================

``M`` is the dataset's fixed ``max_boxes``; padded box entries are all-zero boxes of class -1.
Per-box fields besides the class (:data:`BOX_EXTRAS`) are rearranged with the boxes whenever
boxes are clipped away or truncated (:mod:`lightjax.data.boxes`, ``extras``).
Batches add ``valid`` (bool (B,)): False on the rows that pad the last eval batch.
"""
from __future__ import annotations

import numpy as np

from lightjax.errors import ValidationError

IGNORE_LABEL = 255  # mask value of pixels without a label (padding, out-of-range source values)
BOX_FIELDS = ("boxes", "box_classes", "box_count")
BOX_EXTRAS = ("box_difficult",)  # optional (n, M) per-box fields that travel with the boxes
FIELDS = ("label", "mask") + BOX_FIELDS + BOX_EXTRAS  # besides 'image' (and 'valid' in batches)
TASKS = ("classification", "segmentation", "detection")
TASK_FIELD = {"classification": ("label",), "segmentation": ("mask",), "detection": BOX_FIELDS}


def task_of(fields: tuple[str, ...]) -> str:
    """The natural task of examples carrying ``fields``: 'segmentation' if there is a mask,
    else 'detection' if there are boxes, else 'classification'."""
    if "mask" in fields:
        return "segmentation"
    if "boxes" in fields:
        return "detection"
    return "classification"


def check_fields(fields: tuple[str, ...], task: str, where: str) -> None:
    """Raise unless ``fields`` are known names, boxes come as a set, and ``task`` is served."""
    unknown = [f for f in fields if f not in FIELDS]
    if unknown:
        raise ValidationError(f"{where}: unknown field(s) {', '.join(unknown)}; allowed: "
                              f"{', '.join(FIELDS)}")
    has_boxes = [f in fields for f in BOX_FIELDS]
    if any(has_boxes) and not all(has_boxes):
        raise ValidationError(f"{where}: the box fields {', '.join(BOX_FIELDS)} come together, "
                              f"got {', '.join(fields)}")
    extras = [f for f in BOX_EXTRAS if f in fields]
    if extras and not all(has_boxes):
        raise ValidationError(f"{where}: {', '.join(extras)} needs the box fields "
                              f"{', '.join(BOX_FIELDS)}, got {', '.join(fields)}")
    if task not in TASKS:
        raise ValidationError(f"{where}: task must be one of {', '.join(TASKS)}, got {task!r}")
    if not set(TASK_FIELD[task]) <= set(fields):
        raise ValidationError(f"{where}: task {task!r} needs the field(s) "
                              f"{', '.join(TASK_FIELD[task])}, the examples carry "
                              f"{', '.join(fields) or 'none'}")


def empty(field: str, n: int, image_shape: tuple[int, int, int],
          max_boxes: int | None) -> np.ndarray:
    """``n`` padding rows of ``field``: zeros, ``IGNORE_LABEL`` masks, -1 box classes."""
    h, w, c = image_shape
    if field == "image":
        return np.zeros((n, h, w, c), np.float32)
    if field == "label":
        return np.zeros((n,), np.int32)
    if field == "mask":
        return np.full((n, h, w), IGNORE_LABEL, np.int32)
    if field == "boxes":
        return np.zeros((n, max_boxes, 4), np.float32)
    if field == "box_classes":
        return np.full((n, max_boxes), -1, np.int32)
    if field == "box_count":
        return np.zeros((n,), np.int32)
    if field == "box_difficult":
        return np.zeros((n, max_boxes), bool)
    raise ValidationError(f"unknown field {field!r}; allowed: image, {', '.join(FIELDS)}")
