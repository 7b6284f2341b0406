"""YOLOv3 anchors: the YOLOv3 paper's COCO clusters and which output scale uses which."""
from __future__ import annotations

import math
from typing import Any

from lightjax.errors import ValidationError

#: (width, height) in pixels at the 416/608 training scale (Redmon & Farhadi, 2018).
ANCHORS = ((10, 13), (16, 30), (33, 23), (30, 61), (62, 45), (59, 119), (116, 90), (156, 198),
           (373, 326))
#: Anchor indices of each output scale, coarsest (stride 32) first.
ANCHOR_MASKS = ((6, 7, 8), (3, 4, 5), (0, 1, 2))


def check(anchors: Any, masks: Any) -> tuple[tuple[tuple[float, float], ...],
                                             tuple[tuple[int, ...], ...]]:
    """Validated ``(anchors, masks)``: anchors a list of (width, height) pixel pairs (finite,
    > 0), masks one list of anchor indices per output (coarsest first), all of the same length,
    each anchor used at most once. ``ValidationError`` (one line) otherwise."""
    try:
        pairs = tuple((float(w), float(h)) for w, h in anchors)
        ok = bool(pairs) and all(math.isfinite(v) and v > 0 for p in pairs for v in p)
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ValidationError(f"task.anchors must be a list of (width, height) pairs of positive "
                              f"pixel sizes, e.g. {list(map(list, ANCHORS[:2]))}..., got "
                              f"{anchors!r}")
    try:
        layout = tuple(tuple(int(i) for i in m) for m in masks)
        flat = [i for m in layout for i in m]
        ok = (bool(layout) and all(m for m in layout) and len({len(m) for m in layout}) == 1
              and all(0 <= i < len(pairs) for i in flat) and len(set(flat)) == len(flat)
              and all(float(i) == int(i) for m in masks for i in m))
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ValidationError(f"task.anchor_masks must list, for each output (coarsest first), "
                              f"the same number of distinct indices into the {len(pairs)} anchors "
                              f"(YOLOv3: {[list(m) for m in ANCHOR_MASKS]}), got {masks!r}")
    return pairs, layout
