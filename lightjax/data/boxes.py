"""Geometry of padded box sets: (n, M, 4) boxes (x_min, y_min, x_max, y_max) in [0, 1] of the
image width / height, (n, M) classes (-1 = padding) and (n,) counts, real boxes first.

Every transform keeps that layout: boxes are clipped to the image, boxes left with no area
(entirely outside) are removed and the rest are moved to the front in their order.

Per-box fields other than the class (``box_difficult``: :data:`lightjax.data.fields.BOX_EXTRAS`)
travel as ``extras``: (n, M) arrays that :func:`compact`, :func:`clip`, :func:`window`,
:func:`letterbox` and :func:`truncate` rearrange exactly like the classes and append to their
results (padding entries become 0 / False).
"""
from __future__ import annotations

import numpy as np

EPS = 1e-6  # a clipped box must keep more than this width and height (fractions of the image)


def real(classes: np.ndarray, count: np.ndarray) -> np.ndarray:
    """(n, M) bool: the first ``count`` entries of each row."""
    return np.arange(classes.shape[1])[None, :] < np.asarray(count)[:, None]


def _take(values: np.ndarray, idx: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """``values`` (n, K) gathered at ``idx`` (n, M) where ``keep``, else 0 (same dtype)."""
    values = np.asarray(values)
    return np.where(keep, np.take_along_axis(values, idx, axis=1),
                    np.zeros((), values.dtype)).astype(values.dtype, copy=False)


def compact(boxes: np.ndarray, classes: np.ndarray, keep: np.ndarray,
            extras: tuple[np.ndarray, ...] = ()) -> tuple[np.ndarray, ...]:
    """Keep the entries where ``keep`` (n, M) is True, moved to the front in their order; the
    rest become zero boxes of class -1. Returns (boxes, classes, count, *extras)."""
    order = np.argsort(~keep, axis=1, kind="stable")
    kept = np.take_along_axis(keep, order, axis=1)
    boxes = np.where(kept[..., None], np.take_along_axis(boxes, order[..., None], axis=1), 0)
    classes = np.where(kept, np.take_along_axis(classes, order, axis=1), -1)
    return (boxes.astype(np.float32), classes.astype(np.int32),
            kept.sum(axis=1).astype(np.int32), *(_take(e, order, kept) for e in extras))


def clip(boxes: np.ndarray, classes: np.ndarray, count: np.ndarray,
         extras: tuple[np.ndarray, ...] = ()) -> tuple[np.ndarray, ...]:
    """Clip to [0, 1] and drop boxes without area inside the image (then compact). Returns
    (boxes, classes, count, *extras)."""
    boxes = np.clip(boxes, 0.0, 1.0)
    inside = ((boxes[..., 2] - boxes[..., 0] > EPS) & (boxes[..., 3] - boxes[..., 1] > EPS))
    return compact(boxes, classes, real(classes, count) & inside, extras)


def flip(boxes: np.ndarray, flags: np.ndarray, count: np.ndarray) -> np.ndarray:
    """Mirror left <-> right the boxes of the rows where ``flags`` (n,) is True:
    x_min' = 1 - x_max, x_max' = 1 - x_min (padding entries stay zero)."""
    mirrored = np.stack([1.0 - boxes[..., 2], boxes[..., 1], 1.0 - boxes[..., 0],
                         boxes[..., 3]], axis=-1)
    use = np.asarray(flags)[:, None] & real(boxes[..., 0], count)
    return np.where(use[..., None], mirrored, boxes).astype(np.float32)


def window(boxes: np.ndarray, classes: np.ndarray, count: np.ndarray, top: np.ndarray,
           left: np.ndarray, height: np.ndarray, width: np.ndarray, image_hw: tuple[int, int],
           extras: tuple[np.ndarray, ...] = ()) -> tuple[np.ndarray, ...]:
    """Boxes of the ``height x width`` window at (``top``, ``left``) (pixels, (n,) each, may
    reach outside the image) of ``image_hw`` images, as fractions of that window; clipped and
    compacted. A pad + crop is a window of the image's own size at a negative offset; a
    letterbox (:func:`letterbox`) one larger than the resized image. Returns (boxes, classes,
    count, *extras)."""
    h, w = image_hw
    x0 = np.asarray(left, np.float64)[:, None] / w
    y0 = np.asarray(top, np.float64)[:, None] / h
    sx = w / np.asarray(width, np.float64)[:, None]
    sy = h / np.asarray(height, np.float64)[:, None]
    moved = np.stack([(boxes[..., 0] - x0) * sx, (boxes[..., 1] - y0) * sy,
                      (boxes[..., 2] - x0) * sx, (boxes[..., 3] - y0) * sy], axis=-1)
    return clip(moved, classes, count, extras)


def letterbox(boxes: np.ndarray, classes: np.ndarray, count: np.ndarray,
              placement: tuple[int, int, int, int], size: tuple[int, int],
              extras: tuple[np.ndarray, ...] = ()) -> tuple[np.ndarray, ...]:
    """Boxes (fractions of their image) of images resized to ``height x width`` and pasted at
    (``top``, ``left``) = ``placement`` (pixels) into a ``size`` canvas, as fractions of the canvas
    (:func:`lightjax.data.images.letterbox`): x' = (left + x * width) / W, y' likewise; clipped
    and compacted. A plain (stretching) resize is the placement (0, 0, H, W). Returns (boxes,
    classes, count, *extras)."""
    top, left, height, width = (int(v) for v in placement)
    n = classes.shape[0]
    return window(boxes, classes, count, np.full(n, -top), np.full(n, -left),
                  np.full(n, int(size[0])), np.full(n, int(size[1])), (height, width), extras)


def truncate(boxes: np.ndarray, classes: np.ndarray, max_boxes: int,
             extras: tuple[np.ndarray, ...] = ()) -> tuple:
    """Fit compacted (n, K, ...) box sets into ``max_boxes`` entries, keeping each row's LAST
    ``max_boxes`` real boxes. Returns (boxes, classes, count, number of boxes dropped, *extras)."""
    n, k = classes.shape
    count = (classes >= 0).sum(axis=1)
    dropped = int(np.maximum(count - max_boxes, 0).sum())
    start = np.maximum(count - max_boxes, 0)[:, None]
    idx = np.minimum(start + np.arange(max_boxes)[None, :], max(k - 1, 0))
    keep = np.arange(max_boxes)[None, :] < np.minimum(count, max_boxes)[:, None]
    if k == 0:
        return (np.zeros((n, max_boxes, 4), np.float32), np.full((n, max_boxes), -1, np.int32),
                np.zeros((n,), np.int32), 0,
                *(np.zeros((n, max_boxes), np.asarray(e).dtype) for e in extras))
    out_boxes = np.where(keep[..., None], np.take_along_axis(boxes, idx[..., None], axis=1), 0)
    out_classes = np.where(keep, np.take_along_axis(classes, idx, axis=1), -1)
    return (out_boxes.astype(np.float32), out_classes.astype(np.int32),
            keep.sum(axis=1).astype(np.int32), dropped, *(_take(e, idx, keep) for e in extras))
