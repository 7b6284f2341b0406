"""Optimizers and learning-rate schedules from a config (optax).

- ``sgd`` (momentum, optional Nesterov), ``adam``, ``adamw``; the learning rate is injected with
  ``optax.inject_hyperparams`` so it is a traced value in the optimizer state (sweeps can vmap it).
- Weight decay is an explicit L2 term added to the gradients (SGD, Adam) or AdamW's decoupled
  decay, applied only where :func:`decay_mask` says: conv and FC kernels; depthwise kernels only if
  ``decay_depthwise`` (the MobileNet paper uses little or none), never BN parameters or biases.
- Schedules (per step): ``constant``, ``step`` (multiply by ``decay_factor`` at each of
  ``decay_epochs`` — the sources' CIFAR-100 recipe: 0.1, x0.2 at 60/120/160 of 200), ``cosine``;
  any of them after ``warmup_epochs`` of linear warm-up.
"""
from __future__ import annotations

from typing import Any, Callable, Mapping

import flax
import jax
import jax.numpy as jnp
import optax

from lightjax import cost
from lightjax.errors import ValidationError

OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULES = ("constant", "step", "cosine")


def schedule(cfg: Mapping[str, Any], steps_per_epoch: int) -> optax.Schedule:
    """Learning rate per step from ``cfg`` (``lr``, ``schedule``, ``epochs``, ...)."""
    name = cfg["schedule"]
    if name not in SCHEDULES:
        raise ValidationError(f"unknown schedule {name!r}; allowed: {', '.join(SCHEDULES)}")
    lr, epochs = float(cfg["lr"]), int(cfg["epochs"])
    warmup = int(round(float(cfg.get("warmup_epochs", 0)) * steps_per_epoch))
    total = epochs * steps_per_epoch
    if name == "constant":
        main = optax.constant_schedule(lr)
    elif name == "step":
        boundaries = {int(e * steps_per_epoch) - warmup: float(cfg.get("decay_factor", 0.1))
                      for e in cfg.get("decay_epochs", ())}
        main = optax.piecewise_constant_schedule(lr, boundaries)
    else:
        main = optax.cosine_decay_schedule(lr, max(total - warmup, 1))
    if warmup <= 0:
        return main
    return optax.join_schedules([optax.linear_schedule(0.0, lr, warmup), main], [warmup])


def decay_mask(report: cost.CostReport,
               decay_depthwise: bool = False) -> Callable[[Any], Any]:
    """``mask(params)``: a pytree of bools like ``params``, True on kernels that get weight decay.

    Layer kinds come from the model's cost ``report`` (already computed by every run), so no
    extra trace of the model is needed; optax calls the returned function on the parameters.
    """
    kinds = {row.name: row.type for row in report.layers}
    decayed = {"standard", "pointwise", "group", "fc"} | ({"depthwise"} if decay_depthwise else set())

    def mask(params: Any) -> Any:
        flat = flax.traverse_util.flatten_dict(flax.core.unfreeze(params), sep="/")
        return flax.traverse_util.unflatten_dict(
            {path: (path.endswith("/kernel") and kinds.get(path[:-len("/kernel")]) in decayed)
             for path in flat}, sep="/")

    return mask


def build(cfg: Mapping[str, Any], steps_per_epoch: int, mask: Any,
          learning_rate: float | None = None,
          traced_weight_decay: bool = False) -> optax.GradientTransformation:
    """The optimizer described by ``cfg`` (the config's ``train`` section).

    ``learning_rate`` replaces the schedule by a value held in the optimizer state, which the
    caller sets per step with :func:`with_lr` (one compiled step for any schedule). With
    ``traced_weight_decay`` the weight decay is held in the state too (always applied through
    ``mask``, even at 0), so members of a sweep can each set theirs with :func:`with_hyperparams`.
    """
    name = cfg["optimizer"]
    if name not in OPTIMIZERS:
        raise ValidationError(f"unknown optimizer {name!r}; allowed: {', '.join(OPTIMIZERS)}")
    wd = float(cfg.get("weight_decay", 0.0))
    lr_schedule = schedule(cfg, steps_per_epoch)

    def make(learning_rate, weight_decay=wd):
        if name == "adamw":
            return optax.adamw(learning_rate, weight_decay=weight_decay, mask=mask)
        decay = (optax.add_decayed_weights(weight_decay, mask)
                 if traced_weight_decay or wd else optax.identity())
        if name == "sgd":
            base = optax.sgd(learning_rate, momentum=float(cfg.get("momentum", 0.9)) or None,
                             nesterov=bool(cfg.get("nesterov", False)))
        else:
            base = optax.adam(learning_rate)
        return optax.chain(decay, base)

    hyper = {"learning_rate": lr_schedule if learning_rate is None else float(learning_rate)}
    if traced_weight_decay:
        hyper["weight_decay"] = wd
    return optax.inject_hyperparams(make)(**hyper)


def from_config(cfg: Mapping[str, Any], steps_per_epoch: int, report: cost.CostReport,
                learning_rate: float | None = None,
                traced_weight_decay: bool = False) -> optax.GradientTransformation:
    """:func:`build` with the weight-decay mask of the model's cost ``report`` when the config
    decays weights (``weight_decay`` > 0, ``adamw`` or ``traced_weight_decay``)."""
    mask = None
    if cfg.get("weight_decay", 0.0) or cfg["optimizer"] == "adamw" or traced_weight_decay:
        mask = decay_mask(report, bool(cfg.get("decay_depthwise", False)))
    return build(cfg, steps_per_epoch, mask, learning_rate, traced_weight_decay)


def _injected(opt_state: Any) -> Any:
    """The ``inject_hyperparams`` state inside ``opt_state`` (wrapped in states with an ``inner``
    field, e.g. pruning's, or first in an ``optax.chain`` tuple, e.g. binarization's)."""
    while not hasattr(opt_state, "hyperparams"):
        if hasattr(opt_state, "inner"):
            opt_state = opt_state.inner
        elif isinstance(opt_state, tuple) and opt_state:
            opt_state = opt_state[0]
        else:
            raise ValidationError("optimizer state holds no injected hyperparameters")
    return opt_state


def current_lr(opt_state: Any) -> jax.Array:
    return _injected(opt_state).hyperparams["learning_rate"]


def with_hyperparams(opt_state: Any, **values: Any) -> Any:
    """``opt_state`` (of :func:`build`, possibly wrapped in states with an ``inner`` field or
    first in an ``optax.chain``) with the injected hyperparameters ``values`` (``learning_rate``,
    ``weight_decay``) set."""
    if hasattr(opt_state, "inner"):
        return opt_state._replace(inner=with_hyperparams(opt_state.inner, **values))
    if not hasattr(opt_state, "hyperparams") and isinstance(opt_state, tuple) and opt_state:
        return (with_hyperparams(opt_state[0], **values),) + tuple(opt_state[1:])
    hyper = dict(opt_state.hyperparams)
    for key, value in values.items():
        if key not in hyper:
            raise ValidationError(f"optimizer state holds no injected {key!r} (it holds "
                             f"{', '.join(sorted(hyper))})")
        hyper[key] = jnp.asarray(value, hyper[key].dtype)
    return opt_state._replace(hyperparams=hyper)


def with_lr(opt_state: Any, value: Any) -> Any:
    """:func:`with_hyperparams` with the learning rate only."""
    return with_hyperparams(opt_state, learning_rate=value)
