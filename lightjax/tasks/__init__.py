"""Tasks: what a model's outputs mean — loss, training metrics, evaluator, primary metric.

``create(name, num_classes=..., **options)`` builds a task by name (``config.task.name``):

- ``classification``: logits (N, classes); softmax cross-entropy (optional label smoothing);
  top-1/top-5; primary metric ``top1`` (higher is better).
- ``segmentation``: per-pixel logits (N, H, W, classes); per-pixel cross-entropy ignoring
  ``ignore_label``; mean IoU and pixel accuracy over a whole split; primary metric ``miou``.

Each task's :meth:`~lightjax.tasks.base.Task.eval_outputs` runs inside ``jit`` per batch and its
host-side :class:`~lightjax.tasks.base.Evaluator` accumulates them over the whole split (mIoU and
mAP are not means of per-batch numbers).
"""
from lightjax.tasks.base import Evaluator, Task
from lightjax.tasks.registry import create, names, options, register

__all__ = ["Evaluator", "Task", "create", "names", "options", "register"]
