"""Default ``train`` section of a run config; configs override only what differs."""
from __future__ import annotations

from typing import Any

import ml_collections
from lightjax.errors import ValidationError


def train_section(**overrides: Any) -> ml_collections.ConfigDict:
    """The sources' CIFAR recipe (SGD 0.1, momentum 0.9, x0.2 at 60/120/160 of 200 epochs).

    ``plateau_patience`` (epochs; 0: off) stops a run early, finished, once the task's primary
    metric has not improved for that many epochs, counting from epoch ``plateau_after_epochs + 1``
    (SRB's final fine-tuning stage; :class:`lightjax.train.loop.Plateau`).
    ``eval_every_epochs``: evaluate on the test split (and log ``test_*``) every that many epochs
    and after the last (0: after the last only).
    ``init_from`` (a run directory) warm-starts a new run from that run's matching tensors, e.g.
    a detector's backbone from a classification run (:mod:`lightjax.train.warm_start`).
    ``bn_momentum`` / ``bn_epsilon`` (flax convention: 0.9 is PyTorch's 0.1) and
    ``bn_unbiased_variance`` (running variance updated with PyTorch's ``n / (n - 1)``) set every
    BatchNorm of the model (:class:`lightjax.layers.LayerFactory`).
    ``ema_decay`` (in (0, 1), e.g. 0.999; None: off) keeps an exponential moving average of the
    parameters, checkpointed with the state; evaluation, ``predict`` and ``export`` use it
    (:func:`lightjax.train.step.ema_update`).
    """
    cfg = dict(
        epochs=200, batch_size=128, eval_batch_size=500, optimizer="sgd", lr=0.1, momentum=0.9,
        nesterov=False, weight_decay=5e-4, decay_depthwise=False, schedule="step",
        decay_epochs=(60, 120, 160), decay_factor=0.2, warmup_epochs=0.0, label_smoothing=0.0,
        dtype="float32", seed=0, activation_init=None, checkpoint_every_epochs=5, keep_checkpoints=2,
        log_every_steps=50, plateau_patience=0, plateau_after_epochs=0, init_from=None,
        eval_every_epochs=1, bn_momentum=0.9, bn_epsilon=1e-5, bn_unbiased_variance=False,
        ema_decay=None)
    unknown = set(overrides) - set(cfg)
    if unknown:
        raise ValidationError(f"unknown train option(s): {', '.join(sorted(unknown))}")
    cfg.update(overrides)
    return ml_collections.ConfigDict(cfg)
