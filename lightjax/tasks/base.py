"""The task contract shared by the training loop, evaluation, sweeps, pruning and sensitivity."""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import jax
import numpy as np

Batch = Mapping[str, jax.Array]


class Evaluator:
    """Host-side accumulator over one split: :meth:`update` per batch, :meth:`result` at the end.

    The default sums every array it is given (in float64) and divides the ``mean_of`` entries by
    ``count``; tasks whose metrics are not sums override :meth:`result`.
    """

    def __init__(self) -> None:
        self.totals: dict[str, np.ndarray] = {}

    def update(self, outputs: Mapping[str, Any]) -> None:
        """Add one batch's :meth:`Task.eval_outputs` (host numpy arrays)."""
        for key, value in outputs.items():
            value = np.asarray(value, np.float64)
            self.totals[key] = value if key not in self.totals else self.totals[key] + value

    def result(self) -> dict[str, float]:
        raise NotImplementedError


class Task:
    """What a model computes and how it is scored.

    Attributes:
      name: the registered name.
      primary: the metric sweeps, pruning schedules and sensitivity read (e.g. ``'top1'``).
      higher_is_better: the primary metric's direction.
      fields: the batch fields the task needs besides ``'image'`` and ``'valid'``.
      num_classes: output classes.
    """

    name: str = ""
    primary: str = ""
    higher_is_better: bool = True
    fields: tuple[str, ...] = ()
    #: the metrics :meth:`loss` reports during training (means over the batch), ``'loss'`` first
    train_metrics: tuple[str, ...] = ("loss",)
    #: (evaluator result key, label) of the per-class figures, a list indexed by class; or None
    per_class: tuple[str, str] | None = None

    def __init__(self, num_classes: int):
        self.num_classes = int(num_classes)

    # --- checks (before jit) ------------------------------------------------------------------
    def check_output(self, shape: Sequence[int], input_shape: Sequence[int], model: str) -> None:
        """``ValidationError`` unless the model's output ``shape`` fits this task."""
        raise NotImplementedError

    def check_dataset(self, dataset: Any) -> None:
        """``ValidationError`` unless ``dataset`` carries this task's fields."""
        from lightjax.errors import ValidationError

        have = set(getattr(dataset, "fields", ("label",)))
        missing = [f for f in self.fields if f not in have]
        if missing:
            raise ValidationError(
                f"task {self.name!r} needs the batch field(s) {', '.join(missing)}, but dataset "
                f"{dataset.name!r} provides {', '.join(sorted(have)) or 'none'}; choose a "
                f"dataset (or its view) made for {self.name}")

    # --- in jit -------------------------------------------------------------------------------
    def loss(self, outputs: jax.Array, batch: Batch) -> tuple[jax.Array, dict[str, jax.Array]]:
        """(mean loss, {metric: mean over the batch}) for a training step."""
        raise NotImplementedError

    def eval_outputs(self, outputs: jax.Array, batch: Batch) -> dict[str, jax.Array]:
        """What the evaluator needs from one batch (padded rows, ``valid`` False, excluded)."""
        raise NotImplementedError

    def predictions(self, outputs: Any, image_hw: tuple[int, int], logits: bool = False,
                    score_threshold: float | None = None) -> dict[str, jax.Array]:
        """What a deployed model returns for a batch of ``image_hw`` images (``lightjax
        predict``, ``lightjax export``); ``logits``: the raw float32 outputs instead."""
        raise NotImplementedError

    # --- host ---------------------------------------------------------------------------------
    def evaluator(self) -> Evaluator:
        raise NotImplementedError

    def per_class_table(self, metrics: Mapping[str, Any], class_names: Sequence[str] = ()
                        ) -> list[str]:
        """Lines ``name  value`` of the evaluator's per-class figures (``per_class`` names the
        result key and its label), or ``[]`` when the task has none."""
        if self.per_class is None or metrics.get(self.per_class[0]) is None:
            return []
        key, label = self.per_class
        values = list(metrics[key])
        names = list(class_names) + [f"class {i}" for i in range(len(class_names), len(values))]
        width = max(len(n) for n in names[:len(values)]) if values else 0
        lines = [f"per class {label}:"]
        for name, value in zip(names, values):
            shown = "  (absent)" if value is None else f"{100 * value:7.2f}%"
            lines.append(f"  {name:<{width}}  {shown}")
        return lines

    def better(self, a: float, b: float) -> bool:
        """Whether primary-metric value ``a`` is better than ``b``."""
        return a > b if self.higher_is_better else a < b

    def drop(self, baseline: float, value: float) -> float:
        """How much worse ``value`` is than ``baseline`` (positive = worse), in metric units."""
        return baseline - value if self.higher_is_better else value - baseline

    def summary_line(self, metrics: Mapping[str, float]) -> str:
        """A one-line human summary of evaluation ``metrics``."""
        return f"{self.primary} {metrics[self.primary]:.4f}"
