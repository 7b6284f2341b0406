"""Detection metrics over a whole split, on the host (numpy): Pascal VOC mAP and COCO-style AP.

Inputs are per image: detections ``(boxes (D, 4), scores (D,), classes (D,))`` and ground truth
``(boxes (G, 4), classes (G,), difficult (G,) bool)``, boxes ``(x_min, y_min, x_max, y_max)`` in
any one unit (fractions or pixels; IoU does not depend on it). IoU is computed on continuous
coordinates, as pycocotools does (not the VOC devkit's "+1 pixel" integer convention).

- :func:`voc_map`: per class, detections sorted by score are matched greedily to the unmatched
  ground truth of their image with the highest IoU > 0.5; a match to a *difficult* box counts as
  neither true nor false positive, and difficult boxes are not among the positives. AP is the
  VOC2007 11-point interpolation (``use_07=True``) or the VOC2010+ all-point area under the
  precision envelope; mAP is the mean over classes that have positives.
- :func:`coco_ap`: COCOeval's algorithm (IoU 0.50:0.05:0.95, 101 recall points, at most 100
  detections per image, areas small < 32² <= medium < 96² <= large in pixels), giving AP, AP50,
  AP75, AP_small, AP_medium, AP_large equal to pycocotools on the same detections (tested).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

Detections = Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]]
GroundTruth = Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]]

#: COCO area ranges in square pixels: all, small, medium, large.
AREAS = {"all": (0.0, 1e10), "small": (0.0, 32.0 ** 2), "medium": (32.0 ** 2, 96.0 ** 2),
         "large": (96.0 ** 2, 1e10)}
IOU_THRESHOLDS = np.linspace(0.5, 0.95, 10)
RECALL_POINTS = np.linspace(0.0, 1.0, 101)


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N, 4) x (M, 4) -> (N, M) IoU of corner boxes."""
    a, b = np.asarray(a, np.float64).reshape(-1, 4), np.asarray(b, np.float64).reshape(-1, 4)
    lo = np.maximum(a[:, None, :2], b[None, :, :2])
    hi = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(hi - lo, 0, None), axis=-1)
    area_a = np.prod(np.clip(a[:, 2:] - a[:, :2], 0, None), axis=-1)
    area_b = np.prod(np.clip(b[:, 2:] - b[:, :2], 0, None), axis=-1)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-300), 0.0)


# --- Pascal VOC ---------------------------------------------------------------------------------
def voc_ap(recall: np.ndarray, precision: np.ndarray, use_07: bool = True) -> float:
    """AP from a precision/recall curve: 11-point (VOC2007) or all-point (VOC2010+)."""
    recall, precision = np.asarray(recall, np.float64), np.asarray(precision, np.float64)
    if use_07:
        return float(np.mean([precision[recall >= t].max() if np.any(recall >= t) else 0.0
                              for t in np.linspace(0, 1, 11)]))
    mrec = np.concatenate([[0.0], recall, [1.0]])
    mpre = np.concatenate([[0.0], precision, [0.0]])
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]
    change = np.where(mrec[1:] != mrec[:-1])[0]
    return float(np.sum((mrec[change + 1] - mrec[change]) * mpre[change + 1]))


def pr_curve(detections: Detections, ground_truth: GroundTruth, class_index: int,
             iou_threshold: float = 0.5) -> tuple[np.ndarray, np.ndarray, int]:
    """``(recall, precision, positives)`` of one class over a split: one point per detection of
    the class in decreasing score order (VOC matching, module docstring; detections matched to a
    difficult box are left out). ``positives``: its non-difficult ground-truth boxes."""
    gts = []
    for boxes, classes, difficult in ground_truth:
        keep = np.asarray(classes) == class_index
        gts.append((np.asarray(boxes, np.float64).reshape(-1, 4)[keep],
                    np.asarray(difficult, bool)[keep]))
    positives = sum(int((~d).sum()) for _, d in gts)
    entries = [(float(s), i, np.asarray(b, np.float64))
               for i, (boxes, scores, classes) in enumerate(detections)
               for b, s, k in zip(np.asarray(boxes).reshape(-1, 4), scores, classes)
               if k == class_index]
    order = np.argsort([-e[0] for e in entries], kind="stable")
    matched = [np.zeros(len(g), bool) for g, _ in gts]
    tp, fp = np.zeros(len(entries)), np.zeros(len(entries))
    for rank, j in enumerate(order):
        _, image, box = entries[j]
        gt_boxes, difficult = gts[image]
        if len(gt_boxes) == 0:
            fp[rank] = 1
            continue
        overlaps = box_iou(box[None], gt_boxes)[0]
        best = int(np.argmax(overlaps))
        if overlaps[best] > iou_threshold:
            if difficult[best]:
                continue
            if not matched[image][best]:
                tp[rank], matched[image][best] = 1, True
            else:
                fp[rank] = 1
        else:
            fp[rank] = 1
    tp, fp = np.cumsum(tp), np.cumsum(fp)
    recall = tp / max(positives, 1)
    precision = tp / np.maximum(tp + fp, np.finfo(np.float64).eps)
    return recall, precision, positives


def voc_map(detections: Detections, ground_truth: GroundTruth, num_classes: int,
            iou_threshold: float = 0.5, use_07: bool = True) -> dict:
    """``{'map': mAP, 'ap': [AP per class (nan without positives)]}`` (module docstring)."""
    if len(detections) != len(ground_truth):
        raise ValueError(f"{len(detections)} images of detections, {len(ground_truth)} of ground "
                         f"truth")
    aps = []
    for c in range(num_classes):
        recall, precision, positives = pr_curve(detections, ground_truth, c, iou_threshold)
        aps.append(voc_ap(recall, precision, use_07) if positives else float("nan"))
    valid = [a for a in aps if not np.isnan(a)]
    return {"map": float(np.mean(valid)) if valid else float("nan"), "ap": aps}


# --- COCO ---------------------------------------------------------------------------------------
def _evaluate_image(dt_boxes, dt_scores, gt_boxes, area_range, max_dets):
    """COCOeval.evaluateImg for one image, class and area range (no crowd boxes)."""
    (lo, hi) = area_range
    gt_area = np.prod(gt_boxes[:, 2:] - gt_boxes[:, :2], axis=-1) if len(gt_boxes) else np.zeros(0)
    gt_ignore = (gt_area < lo) | (gt_area > hi)
    gt_order = np.argsort(gt_ignore, kind="mergesort")
    gt_boxes, gt_ignore = gt_boxes[gt_order], gt_ignore[gt_order]
    dt_order = np.argsort(-dt_scores, kind="mergesort")[:max_dets]
    dt_boxes, dt_scores = dt_boxes[dt_order], dt_scores[dt_order]
    t, g, d = len(IOU_THRESHOLDS), len(gt_boxes), len(dt_boxes)
    gt_matched = np.zeros((t, g), bool)
    dt_matched = np.zeros((t, d), bool)
    dt_ignore = np.zeros((t, d), bool)
    ious = box_iou(dt_boxes, gt_boxes) if g and d else np.zeros((d, g))
    for ti, thr in enumerate(IOU_THRESHOLDS):
        for di in range(d):
            best_iou, m = min(thr, 1 - 1e-10), -1
            for gi in range(g):
                if gt_matched[ti, gi]:
                    continue
                if m > -1 and not gt_ignore[m] and gt_ignore[gi]:
                    break
                if ious[di, gi] < best_iou:
                    continue
                best_iou, m = ious[di, gi], gi
            if m == -1:
                continue
            dt_ignore[ti, di] = gt_ignore[m]
            dt_matched[ti, di] = True
            gt_matched[ti, m] = True
    dt_area = np.prod(dt_boxes[:, 2:] - dt_boxes[:, :2], axis=-1) if d else np.zeros(0)
    outside = (dt_area < lo) | (dt_area > hi)
    dt_ignore |= ~dt_matched & outside[None, :]
    return dt_scores, dt_matched, dt_ignore, gt_ignore


def coco_ap(detections: Detections, ground_truth: GroundTruth,
            image_sizes: Sequence[tuple[int, int]] | None = None, max_dets: int = 100) -> dict:
    """COCO-style ``{'AP', 'AP50', 'AP75', 'AP_small', 'AP_medium', 'AP_large'}`` in [0, 1] (-1
    where nothing is defined, as pycocotools). ``image_sizes`` ((height, width) per image) turn
    fraction boxes into pixels for the area ranges (``None``: boxes are in pixels already).
    ``difficult`` flags are ignored (COCO has none)."""
    n = len(ground_truth)
    if len(detections) != n:
        raise ValueError(f"{len(detections)} images of detections, {n} of ground truth")
    scale = [np.ones(4) if image_sizes is None else np.asarray([w, h, w, h], np.float64)
             for h, w in (image_sizes or [(1, 1)] * n)]
    classes = sorted({int(k) for _, ks, _ in ground_truth for k in np.asarray(ks).ravel()})
    # precision[t, recall point, class, area]
    precision = -np.ones((len(IOU_THRESHOLDS), len(RECALL_POINTS), len(classes), len(AREAS)))
    for ci, c in enumerate(classes):
        for ai, area_range in enumerate(AREAS.values()):
            per_image = []
            for i in range(n):
                g_boxes, g_classes, _ = ground_truth[i]
                d_boxes, d_scores, d_classes = detections[i]
                gk = np.asarray(g_classes) == c
                dk = np.asarray(d_classes) == c
                gb = np.asarray(g_boxes, np.float64).reshape(-1, 4)[gk] * scale[i]
                db = np.asarray(d_boxes, np.float64).reshape(-1, 4)[dk] * scale[i]
                if len(gb) == 0 and len(db) == 0:
                    continue
                per_image.append(_evaluate_image(db, np.asarray(d_scores, np.float64)[dk], gb,
                                                 area_range, max_dets))
            if not per_image:
                continue
            scores = np.concatenate([e[0] for e in per_image])
            order = np.argsort(-scores, kind="mergesort")
            matched = np.concatenate([e[1] for e in per_image], axis=1)[:, order]
            ignored = np.concatenate([e[2] for e in per_image], axis=1)[:, order]
            positives = int(np.count_nonzero(~np.concatenate([e[3] for e in per_image])))
            if positives == 0:
                continue
            tps = np.cumsum(matched & ~ignored, axis=1).astype(np.float64)
            fps = np.cumsum(~matched & ~ignored, axis=1).astype(np.float64)
            for ti in range(len(IOU_THRESHOLDS)):
                recall = tps[ti] / positives
                prec = tps[ti] / (fps[ti] + tps[ti] + np.spacing(1))
                prec = np.maximum.accumulate(prec[::-1])[::-1] if len(prec) else prec
                idx = np.searchsorted(recall, RECALL_POINTS, side="left")
                q = np.zeros(len(RECALL_POINTS))  # recall points never reached: precision 0
                reached = idx < len(prec)
                q[reached] = prec[idx[reached]]
                precision[ti, :, ci, ai] = q

    def mean(values: np.ndarray) -> float:
        values = values[values > -1]
        return float(values.mean()) if values.size else -1.0

    areas = list(AREAS)
    return {"AP": mean(precision[:, :, :, 0]), "AP50": mean(precision[0, :, :, 0]),
            "AP75": mean(precision[5, :, :, 0]),
            "AP_small": mean(precision[:, :, :, areas.index("small")]),
            "AP_medium": mean(precision[:, :, :, areas.index("medium")]),
            "AP_large": mean(precision[:, :, :, areas.index("large")])}
