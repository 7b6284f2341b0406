"""Semantic segmentation: per-pixel logits (N, H, W, classes), pixel cross-entropy, mIoU.

``class_weights`` weighs each labelled pixel's loss by its class ('median_frequency':
median frequency balancing from the train split, or one number per class); the evaluation loss is
unweighted. Pixels labelled ``ignore_label`` (255 by default, the Pascal VOC / Cityscapes
convention) and padded rows of eval batches count nowhere. The evaluator accumulates one
confusion matrix over the whole split; IoU_c = TP / (TP + FP + FN) per class, mean IoU over
the classes that occur in the labels or the predictions (a class absent from both has no IoU),
pixel accuracy = correct / labelled pixels.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from lightjax.data.fields import IGNORE_LABEL  # 255, the VOC/Cityscapes convention
from lightjax.errors import ValidationError
from lightjax.tasks.base import Batch, Evaluator, Task
from lightjax.tasks.classification import cross_entropy
from lightjax.tasks.registry import register



def miou_from_confusion(confusion: np.ndarray) -> dict[str, float]:
    """``{'miou', 'pixel_acc', 'iou': [per class, NaN when absent]}`` of a (C, C) confusion
    matrix with rows = true class, columns = predicted class."""
    confusion = np.asarray(confusion, np.float64)
    tp = np.diag(confusion)
    union = confusion.sum(0) + confusion.sum(1) - tp
    iou = np.where(union > 0, tp / np.maximum(union, 1), np.nan)
    total = confusion.sum()
    present = union > 0
    return {"miou": float(np.mean(iou[present])) if present.any() else 0.0,
            "pixel_acc": float(tp.sum() / total) if total else 0.0,
            "iou": [None if np.isnan(v) else float(v) for v in iou]}


CLASS_WEIGHTS = ("median_frequency",)


def check_class_weights(value, num_classes: int):
    """``None``, ``'median_frequency'`` or ``num_classes`` finite positive numbers (a tuple)."""
    if value is None or (isinstance(value, str) and value in CLASS_WEIGHTS):
        return value
    ok = not isinstance(value, (str, bytes)) and isinstance(value, Sequence) and \
        len(value) == num_classes
    if ok:
        ok = all(not isinstance(v, bool) and isinstance(v, (int, float)) and np.isfinite(v)
                 and v > 0 for v in value)
    if not ok:
        raise ValidationError(f"class_weights must be None, 'median_frequency' or {num_classes} "
                              f"positive numbers (one per class), got {value!r}")
    return tuple(float(v) for v in value)


def class_frequencies(source, num_classes: int, ignore_label: int = IGNORE_LABEL,
                      max_examples: int = 2048) -> np.ndarray:
    """Fraction of the labelled pixels of each class (num_classes,) in a split's masks (all of an
    in-memory split up to ``max_examples``, else that many evenly spaced examples)."""
    n = len(source)
    idx = np.unique(np.linspace(0, n - 1, min(n, max_examples)).astype(int))
    masks = np.asarray(source.load(idx)["mask"]).reshape(-1)
    masks = masks[(masks != ignore_label) & (masks >= 0) & (masks < num_classes)]
    counts = np.bincount(masks, minlength=num_classes).astype(np.float64)
    return counts / max(counts.sum(), 1.0)


def median_frequency_weights(freq: np.ndarray) -> np.ndarray:
    """Median frequency balancing (Eigen & Fergus, 2015; SegNet): ``w_c = median(f) / f_c`` over
    the classes present; an absent class gets weight 1. float32 (C,)."""
    freq = np.asarray(freq, np.float64)
    present = freq > 0
    if not present.any():
        return np.ones(freq.shape, np.float32)
    median = np.median(freq[present])
    return np.where(present, median / np.where(present, freq, 1.0), 1.0).astype(np.float32)


class ConfusionEvaluator(Evaluator):
    def result(self) -> dict[str, float]:
        t = self.totals
        pixels = float(t.get("pixels", 0.0))
        out = miou_from_confusion(t["confusion"]) if "confusion" in t else \
            {"miou": 0.0, "pixel_acc": 0.0, "iou": []}
        out["loss"] = float(t.get("loss", 0.0)) / max(pixels, 1.0)
        out["count"] = int(t.get("count", 0.0))
        out["pixels"] = int(pixels)
        return out


@register("segmentation")
class Segmentation(Task):
    """Per-pixel softmax classification scored by mean IoU."""

    primary = "miou"
    higher_is_better = True
    fields = ("mask",)
    train_metrics = ("loss", "pixel_acc")
    per_class = ("iou", "IoU")

    def __init__(self, num_classes: int, ignore_label: int = IGNORE_LABEL,
                 label_smoothing: float = 0.0,
                 class_weights: str | Sequence[float] | None = None):
        super().__init__(num_classes)
        self.class_weights = check_class_weights(class_weights, num_classes)
        #: per-class loss weights (num_classes,) float32, or None (every pixel weighs 1)
        self.weights = (None if self.class_weights is None or isinstance(self.class_weights, str)
                        else np.asarray(self.class_weights, np.float32))
        if isinstance(ignore_label, bool) or not isinstance(ignore_label, int) or \
                0 <= ignore_label < num_classes:
            raise ValidationError(f"ignore_label must be an integer outside [0, {num_classes}) "
                                  f"(the class range), got {ignore_label!r}")
        if not 0.0 <= float(label_smoothing) < 1.0:
            raise ValidationError(f"label_smoothing must be in [0, 1), got {label_smoothing!r}")
        self.ignore_label = ignore_label
        self.label_smoothing = float(label_smoothing)

    def check_output(self, shape: Sequence[int], input_shape: Sequence[int], model: str) -> None:
        want = (*tuple(input_shape)[1:3], self.num_classes)
        if len(shape) != 4 or tuple(shape[1:]) != want:
            raise ValidationError(
                f"task 'segmentation' expects per-pixel logits (batch, {want[0]}, {want[1]}, "
                f"{want[2]}) but model {model} returns shape {tuple(shape)}; use a segmentation "
                f"model (e.g. mobilenet_v1_fcn)")

    def _labelled(self, batch: Batch) -> tuple[jax.Array, jax.Array]:
        mask = batch["mask"]
        labelled = (mask != self.ignore_label) & (mask >= 0) & (mask < self.num_classes)
        if "valid" in batch:
            labelled &= batch["valid"][:, None, None]
        return jnp.where(labelled, mask, 0), labelled

    def check_dataset(self, dataset) -> None:
        """The dataset's fields; ``class_weights='median_frequency'`` is resolved here, from the
        train split's masks (:func:`median_frequency_weights`)."""
        super().check_dataset(dataset)
        if self.class_weights == "median_frequency":
            self.weights = median_frequency_weights(
                class_frequencies(dataset.splits[dataset.split_name("train")], self.num_classes,
                                  self.ignore_label))

    def loss(self, outputs: jax.Array, batch: Batch):
        """Pixel cross-entropy averaged over labelled pixels (weighted by ``class_weights``:
        sum of w[label] * CE over sum of w[label], PyTorch's ``CrossEntropyLoss(weight=...)``)."""
        labels, labelled = self._labelled(batch)
        weight = labelled.astype(jnp.float32)
        per_pixel = cross_entropy(outputs, labels, self.num_classes, self.label_smoothing)
        pixels = jnp.maximum(weight.sum(), 1.0)
        if self.class_weights is not None:
            if self.weights is None:
                raise ValueError("class_weights='median_frequency' is resolved by "
                                 "check_dataset(dataset); call it before the loss")
            weighted = weight * jnp.asarray(self.weights)[labels]
            loss = (per_pixel * weighted).sum() / jnp.maximum(weighted.sum(), 1e-12)
        else:
            loss = (per_pixel * weight).sum() / pixels
        correct = ((outputs.argmax(-1) == labels) * weight).sum() / pixels
        return loss, {"loss": loss, "pixel_acc": correct}

    def predictions(self, outputs: jax.Array, image_hw: tuple[int, int], logits: bool = False,
                    score_threshold: float | None = None) -> dict[str, jax.Array]:
        """``mask`` (N, H, W) int32 (the argmax class per pixel), or float32 ``logits``."""
        if logits:
            return {"logits": outputs.astype(jnp.float32)}
        return {"mask": jnp.argmax(outputs, -1).astype(jnp.int32)}

    def eval_outputs(self, outputs: jax.Array, batch: Batch) -> dict[str, jax.Array]:
        labels, labelled = self._labelled(batch)
        weight = labelled.astype(jnp.float32)
        c = self.num_classes
        pred = outputs.argmax(-1)
        index = (labels * c + pred).reshape(-1)
        confusion = jnp.zeros((c * c,), jnp.float32).at[index].add(weight.reshape(-1))
        per_pixel = cross_entropy(outputs, labels, c)
        valid = batch.get("valid", jnp.ones(outputs.shape[:1], bool))
        return {"confusion": confusion.reshape(c, c), "loss": (per_pixel * weight).sum(),
                "pixels": weight.sum(), "count": valid.astype(jnp.float32).sum()}

    def evaluator(self) -> Evaluator:
        return ConfusionEvaluator()

    def summary_line(self, metrics: Mapping[str, float]) -> str:
        return (f"mIoU {100 * metrics['miou']:.2f}%  pixel accuracy "
                f"{100 * metrics['pixel_acc']:.2f}%  loss {metrics['loss']:.4f}")
