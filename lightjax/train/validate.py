"""Checks of a run config's numbers, before anything is built or written.

Messages name the field as the user writes it (``--config.train.epochs``), say what is allowed
and what was given.
"""
from __future__ import annotations

import math
import os
from typing import Any

import ml_collections

from lightjax.errors import ValidationError


def _int(section: str, name: str, value: Any, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValidationError(f"{section}.{name} must be an integer >= {low}, got {value!r}")


def _number(section: str, name: str, value: Any, low: float, high: float | None = None,
            low_open: bool = False, high_open: bool = True) -> None:
    ok = not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)
    if ok:
        ok = (value > low if low_open else value >= low) and (
            high is None or (value < high if high_open else value <= high))
    if not ok:
        lo = f"> {low}" if low_open else f">= {low}"
        hi = "" if high is None else f" and {'<' if high_open else '<='} {high}"
        raise ValidationError(f"{section}.{name} must be a finite number {lo}{hi}, got {value!r}")


def check_train(t: ml_collections.ConfigDict) -> None:
    """The ``train`` section: counts are positive integers, rates finite and in range."""
    s = "train"
    _int(s, "epochs", t.get("epochs"), 1)
    _int(s, "batch_size", t.get("batch_size"), 1)
    for name in ("eval_batch_size", "checkpoint_every_epochs", "keep_checkpoints",
                 "log_every_steps"):
        if t.get(name) is not None:
            _int(s, name, t.get(name), 1)
    _int(s, "seed", t.get("seed", 0), 0)
    for name in ("plateau_patience", "plateau_after_epochs", "eval_every_epochs"):
        if t.get(name) is not None:
            _int(s, name, t.get(name), 0)
    if t.get("plateau_patience") and int(t.get("eval_every_epochs", 1) or 0) != 1:
        raise ValidationError(f"train.plateau_patience needs an evaluation every epoch "
                              f"(train.eval_every_epochs=1, got {t.eval_every_epochs})")
    if int(t.get("plateau_after_epochs", 0) or 0) >= t.epochs:
        raise ValidationError(f"train.plateau_after_epochs ({t.plateau_after_epochs}) must be "
                              f"less than train.epochs ({t.epochs})")
    _number(s, "lr", t.get("lr"), 0.0, low_open=True)
    ema = t.get("ema_decay")
    if ema is not None and ema != 0 and (isinstance(ema, bool) or not isinstance(
            ema, (int, float)) or not 0.0 < ema < 1.0):
        raise ValidationError(f"train.ema_decay must be a number in (0, 1), e.g. 0.999 (or None / "
                              f"0: off), got {ema!r}")
    init_from = t.get("init_from")
    if init_from is not None and (not isinstance(init_from, str) or not os.path.isfile(
            os.path.join(init_from, "config.json"))):
        raise ValidationError(f"train.init_from must be the directory of a lightjax run (with "
                              f"config.json and checkpoints), got {init_from!r}")
    for name, high in (("momentum", 1.0), ("label_smoothing", 1.0)):
        if t.get(name) is not None:
            _number(s, name, t.get(name), 0.0, high)
    for name in ("weight_decay", "warmup_epochs"):
        if t.get(name) is not None:
            _number(s, name, t.get(name), 0.0)
    if t.get("decay_factor") is not None:
        _number(s, "decay_factor", t.get("decay_factor"), 0.0, low_open=True)
    if float(t.get("warmup_epochs", 0.0) or 0.0) > t.epochs:
        raise ValidationError(f"train.warmup_epochs ({t.warmup_epochs}) must not exceed "
                              f"train.epochs ({t.epochs})")
    for e in t.get("decay_epochs", ()) or ():
        _number(s, "decay_epochs entries", e, 0.0, low_open=True)
    for name, high in (("bn_momentum", 1.0), ("bn_epsilon", None)):
        if t.get(name) is not None:
            _number(s, name, t.get(name), 0.0, high, low_open=high is None, high_open=False)
    unbiased = t.get("bn_unbiased_variance", False)
    if not isinstance(unbiased, bool):
        raise ValidationError(f"train.bn_unbiased_variance must be True or False, got "
                              f"{unbiased!r}")
