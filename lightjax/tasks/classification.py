"""Image classification: logits (N, classes), softmax cross-entropy, top-1/top-5."""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax

from lightjax.errors import ValidationError
from lightjax.tasks.base import Batch, Evaluator, Task
from lightjax.tasks.registry import register


def cross_entropy(logits: jax.Array, labels: jax.Array, num_classes: int,
                  label_smoothing: float = 0.0) -> jax.Array:
    """Per-example softmax cross-entropy over the last axis (float32, or float64 for float64
    logits) with optional label smoothing; ``labels`` has the leading shape of ``logits``."""
    targets = jax.nn.one_hot(labels, num_classes)
    if label_smoothing:
        targets = optax.smooth_labels(targets, label_smoothing)
    return optax.softmax_cross_entropy(
        logits.astype(jnp.promote_types(logits.dtype, jnp.float32)), targets)


class SumEvaluator(Evaluator):
    """Sums ``count`` and every metric; the result divides each by ``count``. Per-class sums
    ``class_correct`` / ``class_count`` (C,) become ``top1_per_class`` (a list; ``None`` for a class
    with no example)."""

    def result(self) -> dict[str, Any]:
        totals = dict(self.totals)
        correct, per_class = totals.pop("class_correct", None), totals.pop("class_count", None)
        count = float(totals.get("count", 0.0))
        out: dict[str, Any] = {k: float(v) / max(count, 1.0) for k, v in totals.items()
                               if k != "count"}
        out["count"] = int(count)
        if correct is not None:
            out["top1_per_class"] = [None if n == 0 else float(c) / float(n)
                                     for c, n in zip(np.asarray(correct), np.asarray(per_class))]
        return out


@register("classification")
class Classification(Task):
    """Softmax classification. ``label_smoothing`` applies to the training loss only."""

    primary = "top1"
    higher_is_better = True
    fields = ("label",)
    train_metrics = ("loss", "top1")
    per_class = ("top1_per_class", "top-1")

    def __init__(self, num_classes: int, label_smoothing: float = 0.0):
        super().__init__(num_classes)
        if not 0.0 <= float(label_smoothing) < 1.0:
            raise ValidationError(f"label_smoothing must be in [0, 1), got {label_smoothing!r}")
        self.label_smoothing = float(label_smoothing)

    def check_output(self, shape: Sequence[int], input_shape: Sequence[int], model: str) -> None:
        if len(shape) != 2 or shape[-1] != self.num_classes:
            raise ValidationError(
                f"task 'classification' expects logits (batch, {self.num_classes}) but model "
                f"{model} returns shape {tuple(shape)}; use a classification model")

    def loss(self, outputs: jax.Array, batch: Batch):
        labels = batch["label"]
        loss = cross_entropy(outputs, labels, self.num_classes, self.label_smoothing).mean()
        return loss, {"loss": loss, "top1": (outputs.argmax(-1) == labels).mean()}

    def predictions(self, outputs: jax.Array, image_hw: tuple[int, int], logits: bool = False,
                    score_threshold: float | None = None) -> dict[str, jax.Array]:
        """``probabilities`` (N, classes) float32 (softmax), or ``logits``."""
        outputs = outputs.astype(jnp.float32)
        return {"logits": outputs} if logits else {"probabilities": jax.nn.softmax(outputs, -1)}

    def eval_outputs(self, outputs: jax.Array, batch: Batch) -> dict[str, jax.Array]:
        labels = batch["label"]
        valid = batch.get("valid", jnp.ones(labels.shape, bool)).astype(jnp.float32)
        loss = cross_entropy(outputs, labels, self.num_classes)
        k = min(5, self.num_classes)
        top5 = (jax.lax.top_k(outputs, k)[1] == labels[:, None]).any(-1)
        hit = (outputs.argmax(-1) == labels) * valid
        onehot = jax.nn.one_hot(labels, self.num_classes, dtype=jnp.float32) * valid[:, None]
        return {"loss": (loss * valid).sum(), "top1": hit.sum(), "top5": (top5 * valid).sum(),
                "count": valid.sum(), "class_correct": (onehot * hit[:, None]).sum(0),
                "class_count": onehot.sum(0)}

    def evaluator(self) -> Evaluator:
        return SumEvaluator()

    def summary_line(self, metrics: Mapping[str, float]) -> str:
        return (f"top-1 {100 * metrics['top1']:.2f}%  top-5 {100 * metrics['top5']:.2f}%  "
                f"loss {metrics['loss']:.4f}")
