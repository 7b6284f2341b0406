"""Learning-rate range test (Smith, "Cyclical Learning Rates", 2017; fastai's ``lr_find``).

From the config's initial state, train ``steps`` steps with the learning rate rising
exponentially from ``lr_min`` to ``lr_max`` (one value per step, held in the optimizer state, so
the config's schedule and warm-up are bypassed), and record the training loss. The loss is
smoothed with a bias-corrected moving average; the test stops early once the smoothed loss
exceeds ``stop_factor`` times its minimum (or is not finite). Suggestions, in the usual
conventions: ``min_loss_lr / 10`` (the lr at the smoothed minimum, divided by 10) and the lr of
the steepest descent of the smoothed loss (after the first 10% of the steps). Nothing is
written to a workdir.
"""
from __future__ import annotations

import math
from typing import Any

import jax
import ml_collections
import numpy as np

from lightjax.errors import ValidationError
from lightjax.train import optimizer
from lightjax.train.experiment import Experiment


def check(steps: int, lr_min: float, lr_max: float) -> None:
    """One-line errors for impossible ranges (before anything is built)."""
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 5:
        raise ValidationError(f"--steps must be an integer >= 5, got {steps!r}")
    for name, value in (("--min", lr_min), ("--max", lr_max)):
        if not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
            raise ValidationError(f"{name} must be a finite learning rate > 0, got {value!r}")
    if lr_min >= lr_max:
        raise ValidationError(f"--min ({lr_min}) must be below --max ({lr_max})")


def run(cfg: ml_collections.ConfigDict, steps: int = 100, lr_min: float = 1e-6,
        lr_max: float = 1.0, smoothing: float = 0.9, stop_factor: float = 4.0,
        progress: bool = False) -> dict[str, Any]:
    """The range test on ``cfg``'s model, data, task and optimizer (its ``lr`` is ignored).

    Returns ``lr`` and ``loss`` (per step run), ``smoothed`` (the bias-corrected moving average),
    ``suggested_lr`` (``min_loss_lr / 10``), ``min_loss_lr``, ``steepest_lr`` and ``stopped_early``.
    """
    check(steps, lr_min, lr_max)
    exp = Experiment(cfg, learning_rate=lr_min)
    state = exp.init_state()
    lrs = lr_min * (lr_max / lr_min) ** (np.arange(steps) / (steps - 1))
    losses, smoothed, avg, best = [], [], 0.0, math.inf
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=steps, desc="lr range", dynamic_ncols=True)
    epoch, done = 0, False
    while not done:
        for batch in exp.train_batches(epoch):
            i = len(losses)
            state = state.replace(opt_state=optimizer.with_lr(state.opt_state, float(lrs[i])))
            state, metrics = exp.train_fn(state, batch)
            loss = float(jax.device_get(metrics["loss"]))
            losses.append(loss)
            avg = smoothing * avg + (1 - smoothing) * loss
            value = avg / (1 - smoothing ** (i + 1))
            smoothed.append(value)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(lr=f"{lrs[i]:.2e}", loss=f"{value:.3f}")
            best = min(best, value)
            if not math.isfinite(value) or value > stop_factor * best or i + 1 == steps:
                done = True
                break
        epoch += 1
    if bar is not None:
        bar.close()
    n = len(losses)
    values = np.asarray(smoothed, np.float64)
    finite = np.isfinite(values)
    k = int(np.argmin(np.where(finite, values, np.inf)))
    slope = np.gradient(np.where(finite, values, np.nan), np.log(lrs[:n])) if n > 2 else None
    skip = n // 10  # the first steps' smoothed loss is still dominated by noise
    steep = (skip + int(np.nanargmin(slope[skip:k + 1])) if slope is not None and k > skip
             else k)
    return {"lr": lrs[:n].tolist(), "loss": losses, "smoothed": smoothed,
            "min_loss_lr": float(lrs[k]), "suggested_lr": float(lrs[k]) / 10.0,
            "steepest_lr": float(lrs[steep]), "stopped_early": n < steps,
            "optimizer": str(cfg.train.optimizer), "steps": n}
