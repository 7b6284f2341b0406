"""Object detection (YOLOv3): raw per-scale maps -> YOLOv3 loss; detections -> mAP on the host.

Outputs: a tuple of ``(N, h, w, 3 * (5 + C))`` maps, coarsest first (``yolov3_mobilenet_v1``).
Batches carry ``boxes`` (N, M, 4) fractions, ``box_classes`` (N, M) and ``box_count`` (N,), and
optionally ``box_difficult`` (N, M) bool (VOC). Training: :func:`lightjax.detect.yolo_loss.loss`
(``ignore_thresh``, ``label_smoothing``). Evaluation: decoding and class-aware NMS inside ``jit``
(:mod:`lightjax.detect.postprocess`: ``score_threshold``, ``iou_threshold``,
``max_detections``), with ``anchors`` ((width, height) pixels of the input; default YOLOv3's
COCO clusters) and ``anchor_masks`` (the anchor indices of each output, coarsest first), then the evaluator gathers every image's detections and ground truth and
computes, over the whole split (:mod:`lightjax.detect.metrics`):

- ``map50``: Pascal VOC mAP at IoU 0.5, 11-point (VOC2007; ``voc07=False``: all-point), the
  primary metric (higher is better); difficult boxes neither TP nor FP;
- ``coco_ap``, ``coco_ap50``, ``coco_ap75``, ``coco_ap_small/medium/large``: COCO-style AP with
  areas in pixels of the network input;
- ``loss``: the YOLOv3 loss per image (each batch's mean times its real images, so padded rows
  of the last batch add their objectness negatives: a slight over-estimate there).
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from lightjax.data.fields import BOX_FIELDS
from lightjax.detect import anchors as anchors_lib
from lightjax.detect import metrics, postprocess, yolo_loss
from lightjax.errors import ValidationError
from lightjax.tasks.base import Batch, Evaluator, Task
from lightjax.tasks.registry import register


class DetectionEvaluator(Evaluator):
    """Collects per-image detections and ground truth; :meth:`result` computes the mAPs."""

    def __init__(self, num_classes: int, voc07: bool):
        super().__init__()
        self.num_classes, self.voc07 = num_classes, voc07
        self.detections: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self.truth: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self.sizes: list[tuple[int, int]] = []
        self.loss = 0.0

    def update(self, outputs: Mapping[str, Any]) -> None:
        o = {k: np.asarray(v) for k, v in outputs.items()}
        self.loss += float(o["loss"])
        h, w = (int(v) for v in o["image_hw"])
        for i in np.flatnonzero(o["valid"]):
            d, g = int(o["count"][i]), int(o["box_count"][i])
            self.detections.append((o["boxes"][i, :d], o["scores"][i, :d], o["classes"][i, :d]))
            self.truth.append((o["gt_boxes"][i, :g], o["gt_classes"][i, :g],
                               o["gt_difficult"][i, :g]))
            self.sizes.append((h, w))

    def result(self) -> dict[str, Any]:
        voc = metrics.voc_map(self.detections, self.truth, self.num_classes, use_07=self.voc07)
        coco = metrics.coco_ap(self.detections, self.truth, self.sizes)
        n = len(self.truth)
        return {"map50": 0.0 if np.isnan(voc["map"]) else voc["map"],
                "ap50_per_class": [None if np.isnan(a) else a for a in voc["ap"]],
                **{f"coco_{k.lower()}": v for k, v in coco.items()},
                "loss": self.loss / max(n, 1), "count": n,
                "detections": int(sum(len(d[1]) for d in self.detections))}


@register("detection")
class Detection(Task):
    """YOLOv3 detection scored by Pascal VOC mAP@0.5."""

    primary = "map50"
    higher_is_better = True
    fields = BOX_FIELDS
    train_metrics = ("loss", "loss_xy", "loss_wh", "loss_obj", "loss_cls")
    per_class = ("ap50_per_class", "AP@0.5")

    def __init__(self, num_classes: int, ignore_thresh: float = 0.7,
                 label_smoothing: float = 0.0, score_threshold: float = 0.01,
                 iou_threshold: float = 0.45, max_detections: int = 100, voc07: bool = True,
                 anchors=None, anchor_masks=None):
        super().__init__(num_classes)
        for name, value, lo, hi in (("ignore_thresh", ignore_thresh, 0.0, 1.0),
                                    ("label_smoothing", label_smoothing, 0.0, 0.999),
                                    ("score_threshold", score_threshold, 0.0, 0.999),
                                    ("iou_threshold", iou_threshold, 1e-6, 1.0)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or \
                    not lo <= value <= hi:
                raise ValidationError(f"task.{name} must be a number in [{lo}, {hi}], got "
                                      f"{value!r}")
        if isinstance(max_detections, bool) or not isinstance(max_detections, int) or \
                max_detections < 1:
            raise ValidationError(f"task.max_detections must be a positive integer, got "
                                  f"{max_detections!r}")
        self.ignore_thresh, self.label_smoothing = float(ignore_thresh), float(label_smoothing)
        self.score_threshold, self.iou_threshold = float(score_threshold), float(iou_threshold)
        self.max_detections, self.voc07 = max_detections, bool(voc07)
        self.anchors, self.masks = anchors_lib.check(
            anchors_lib.ANCHORS if anchors is None else anchors,
            anchors_lib.ANCHOR_MASKS if anchor_masks is None else anchor_masks)

    def check_output(self, shape: Sequence[Any], input_shape: Sequence[int], model: str) -> None:
        want = len(self.masks[0]) * (5 + self.num_classes)
        ok = (isinstance(shape, tuple) and len(shape) == len(self.masks)
              and all(isinstance(s, tuple) and len(s) == 4 and s[-1] == want for s in shape))
        if not ok:
            raise ValidationError(
                f"task 'detection' expects {len(self.masks)} prediction maps (batch, h, w, {want}) "
                f"(3 anchors x (5 + {self.num_classes} classes)) but model {model} returns "
                f"{shape}; use a detection model (yolov3_mobilenet_v1: 3 outputs of 3 anchors, "
                f"task.anchor_masks {[list(m) for m in self.masks]})")

    def _image_hw(self, batch: Batch) -> tuple[int, int]:
        return tuple(int(d) for d in batch["image"].shape[1:3])

    def loss(self, outputs, batch: Batch):
        total, parts = yolo_loss.loss(outputs, batch, self._image_hw(batch), self.anchors,
                                      self.masks, self.num_classes, self.ignore_thresh,
                                      self.label_smoothing)
        return total, {"loss": total, **parts}

    def predictions(self, outputs, image_hw: tuple[int, int], logits: bool = False,
                    score_threshold: float | None = None) -> dict[str, jax.Array]:
        """``boxes``, ``scores``, ``classes``, ``count`` after decoding, the score threshold
        (default the task's), class-aware NMS and top-``max_detections``
        (:func:`lightjax.detect.postprocess.detect`); ``logits`` is not offered."""
        threshold = self.score_threshold if score_threshold is None else float(score_threshold)
        return postprocess.detect(outputs, image_hw, self.anchors, self.masks,
                                  self.iou_threshold, threshold, self.max_detections)._asdict()

    def eval_outputs(self, outputs, batch: Batch) -> dict[str, jax.Array]:
        hw = self._image_hw(batch)
        det = postprocess.detect(outputs, hw, self.anchors, self.masks, self.iou_threshold,
                                 self.score_threshold, self.max_detections)
        valid = batch.get("valid", jnp.ones(batch["box_count"].shape, bool))
        loss, _ = yolo_loss.loss(outputs, batch, hw, self.anchors, self.masks, self.num_classes,
                                 self.ignore_thresh, self.label_smoothing)
        difficult = batch.get("box_difficult", jnp.zeros(batch["box_classes"].shape, bool))
        return {"boxes": det.boxes, "scores": det.scores, "classes": det.classes,
                "count": det.count, "gt_boxes": batch["boxes"], "gt_classes": batch["box_classes"],
                "box_count": batch["box_count"], "gt_difficult": difficult, "valid": valid,
                "loss": loss * jnp.sum(valid), "image_hw": jnp.asarray(hw)}

    def evaluator(self) -> Evaluator:
        return DetectionEvaluator(self.num_classes, self.voc07)

    def summary_line(self, metrics_: Mapping[str, float]) -> str:
        kind = "VOC07 11-point" if self.voc07 else "all-point"
        return (f"mAP@0.5 {100 * metrics_['map50']:.2f}% ({kind})  COCO AP "
                f"{100 * max(metrics_.get('coco_ap', 0.0), 0.0):.2f}%  loss {metrics_['loss']:.4f}")
