"""Detections from YOLOv3 outputs inside ``jit``: decoding, score threshold, class-aware
non-maximum suppression and top-k, with a fixed output size (padded with zero-score entries).

Per image: every (box, class) pair scores ``sigmoid(objectness) * sigmoid(class logit)``; the
``pre_nms`` best pairs above ``score_threshold`` enter greedy NMS, which suppresses a pair when a
higher-scoring pair *of the same class* overlaps it by IoU > ``iou_threshold`` (0.45); the
``max_detections`` (100) best survivors are returned. PaddleDetection's settings for YOLOv3:
score threshold 0.01, IoU 0.45, keep 100 (its ``pre_nms`` is 1000 boxes).
"""
from __future__ import annotations

from typing import NamedTuple, Sequence

import jax
import jax.numpy as jnp

from lightjax.detect import boxes as boxes_lib
from lightjax.detect import yolo_loss


class Detections(NamedTuple):
    """Fixed-size detections: ``boxes`` (N, D, 4) ``(x_min, y_min, x_max, y_max)`` fractions,
    ``scores`` (N, D) (0 on padding), ``classes`` (N, D) int32 (-1 on padding), ``count`` (N,)
    real detections, first and by decreasing score."""

    boxes: jax.Array
    scores: jax.Array
    classes: jax.Array
    count: jax.Array


def decode(outputs: Sequence[jax.Array], image_hw: tuple[int, int], anchors, masks
           ) -> tuple[jax.Array, jax.Array]:
    """All scales' boxes (N, K, 4) and per-class scores (N, K, C), K = sum of h * w * A."""
    all_boxes, all_scores = [], []
    for output, mask in zip(outputs, masks):
        b, logits = yolo_loss.decode_scale(output, image_hw, anchors, mask)
        n = b.shape[0]
        scores = jax.nn.sigmoid(logits[..., :1]) * jax.nn.sigmoid(logits[..., 1:])
        all_boxes.append(b.reshape(n, -1, 4))
        all_scores.append(scores.reshape(n, -1, scores.shape[-1]))
    return jnp.concatenate(all_boxes, 1), jnp.concatenate(all_scores, 1)


def nms(boxes: jax.Array, scores: jax.Array, iou_threshold: float = 0.45,
        score_threshold: float = 0.01, max_detections: int = 100,
        pre_nms: int = 1000) -> Detections:
    """Class-aware greedy NMS of (N, K, 4) boxes with (N, K, C) scores (module docstring)."""
    if not 0.0 <= score_threshold < 1.0 or not 0.0 < iou_threshold <= 1.0:
        raise ValueError(f"score_threshold must be in [0, 1) and iou_threshold in (0, 1], got "
                         f"{score_threshold}, {iou_threshold}")
    n, k, c = scores.shape
    flat = scores.reshape(n, k * c)
    p = min(pre_nms, k * c)
    top, index = jax.lax.top_k(flat, p)  # (N, P) by decreasing score
    cand_boxes = jnp.take_along_axis(boxes, (index // c)[..., None], axis=1)
    cand_classes = (index % c).astype(jnp.int32)

    def one(b, s, cls):
        same = cls[:, None] == cls[None, :]
        overlap = (boxes_lib.iou(b, b) > iou_threshold) & same
        later = jnp.arange(p)[None, :] > jnp.arange(p)[:, None]
        suppresses = overlap & later

        def body(i, keep):
            return keep & ~(suppresses[i] & keep[i])

        return jax.lax.fori_loop(0, p, body, s > score_threshold)

    keep = jax.vmap(one)(cand_boxes, top, cand_classes)
    d = min(max_detections, p)
    kept_scores = jnp.where(keep, top, -1.0)
    best, order = jax.lax.top_k(kept_scores, d)
    real = best > -0.5  # kept entries score above score_threshold >= 0; the rest are -1
    return Detections(
        boxes=jnp.where(real[..., None], jnp.take_along_axis(cand_boxes, order[..., None], 1), 0.0),
        scores=jnp.where(real, best, 0.0),
        classes=jnp.where(real, jnp.take_along_axis(cand_classes, order, 1), -1),
        count=jnp.sum(real, axis=1).astype(jnp.int32))


def detect(outputs: Sequence[jax.Array], image_hw: tuple[int, int], anchors, masks,
           iou_threshold: float = 0.45, score_threshold: float = 0.01,
           max_detections: int = 100, pre_nms: int = 1000) -> Detections:
    """:func:`decode` then :func:`nms`: the model's raw maps to fixed-size detections."""
    boxes, scores = decode(outputs, image_hw, anchors, masks)
    return nms(jnp.clip(boxes, 0.0, 1.0), scores, iou_threshold, score_threshold,
               max_detections, pre_nms)
