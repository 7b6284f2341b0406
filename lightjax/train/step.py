"""Train state and the jitted train / eval steps (pure functions of explicit state)."""
from __future__ import annotations

from typing import Any, Callable

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from lightjax.layers import activations
from lightjax.prune import masking

Batch = dict[str, jax.Array]


@flax.struct.dataclass
class TrainState:
    """Everything a run needs to continue: a pytree, checkpointed as one."""

    step: jax.Array
    params: Any
    batch_stats: Any
    opt_state: Any
    rng: jax.Array
    #: pruning: group masks ``{group: (channels,) 0/1}`` (:mod:`lightjax.prune`), else ``None``
    masks: Any = None


def init_state(model: nn.Module, tx: optax.GradientTransformation, seed: Any,
               input_shape: tuple[int, ...], activation_init: Any = None) -> TrainState:
    """Initialise parameters, BN statistics and optimizer state (``input_shape``: NHWC).

    ``seed`` and ``activation_init`` (start value of every trainable activation parameter, e.g.
    RReLU slopes; ``None``: the layer's own init) may be traced, so sweep members vmap over them.
    """
    init_key, rng = jax.random.split(jax.random.PRNGKey(seed))
    variables = model.init(init_key, jnp.zeros(input_shape, jnp.float32), train=False)
    params = variables["params"]
    if activation_init is not None:
        params = activations.set_trainable_init(params, activation_init)
    return TrainState(step=jnp.zeros((), jnp.int32), params=params,
                      batch_stats=variables.get("batch_stats", {}), opt_state=tx.init(params),
                      rng=rng)


def cross_entropy(logits: jax.Array, labels: jax.Array, num_classes: int,
                  label_smoothing: float = 0.0) -> jax.Array:
    """Per-example softmax cross-entropy (float32, or float64 for float64 logits) with optional
    label smoothing."""
    targets = jax.nn.one_hot(labels, num_classes)
    if label_smoothing:
        targets = optax.smooth_labels(targets, label_smoothing)
    return optax.softmax_cross_entropy(
        logits.astype(jnp.promote_types(logits.dtype, jnp.float32)), targets)


def model_variables(state: TrainState, params: Any, groups: Any = None) -> dict[str, Any]:
    """The variables ``model.apply`` takes: ``params``, BN statistics and, with pruning ``groups``,
    the layer ``masks`` collection."""
    variables = {"params": params, "batch_stats": state.batch_stats}
    if groups is not None:
        variables["masks"] = masking.layer_masks(groups, state.masks)
    return variables


def make_train_step(model: nn.Module, tx: optax.GradientTransformation, num_classes: int,
                    label_smoothing: float = 0.0,
                    groups: Any = None) -> Callable[[TrainState, Batch], tuple]:
    """``step(state, batch) -> (state, {'loss', 'top1'})``; jit it with donated state.

    With pruning ``groups`` (:class:`lightjax.prune.groups.ChannelGroups`), ``model`` is the
    masked model, ``state.masks`` holds the group masks and ``tx`` is wrapped in
    :func:`lightjax.prune.optim.masked_updates` (it receives the parameter masks).
    """

    def step(state: TrainState, batch: Batch):
        dropout_key = jax.random.fold_in(state.rng, state.step)

        def loss_fn(params):
            logits, updates = model.apply(
                model_variables(state, params, groups), batch["image"],
                train=True, mutable=["batch_stats"], rngs={"dropout": dropout_key})
            loss = cross_entropy(logits, batch["label"], num_classes, label_smoothing).mean()
            return loss, (logits, updates)

        (loss, (logits, updates)), grads = jax.value_and_grad(loss_fn, has_aux=True)(
            state.params)
        if groups is None:
            changes, opt_state = tx.update(grads, state.opt_state, state.params)
        else:
            changes, opt_state = tx.update(
                grads, state.opt_state, state.params,
                param_masks=masking.param_masks(groups, state.masks, state.params))
        params = optax.apply_updates(state.params, changes)
        top1 = (logits.argmax(-1) == batch["label"]).mean()
        new = state.replace(step=state.step + 1, params=params,
                            batch_stats=updates.get("batch_stats", state.batch_stats),
                            opt_state=opt_state)
        return new, {"loss": loss, "top1": top1}

    return step


def make_eval_step(model: nn.Module, num_classes: int,
                   groups: Any = None) -> Callable[[TrainState, Batch], dict]:
    """``eval(state, batch) -> sums`` of loss, top-1/top-5 hits and count over ``batch['mask']``
    (``groups``: as in :func:`make_train_step`)."""

    def evaluate(state: TrainState, batch: Batch):
        logits = model.apply(model_variables(state, state.params, groups), batch["image"],
                             train=False)
        labels = batch["label"]
        mask = batch.get("mask", jnp.ones(labels.shape, bool)).astype(jnp.float32)
        loss = cross_entropy(logits, labels, num_classes)
        k = min(5, num_classes)
        top5 = (jax.lax.top_k(logits, k)[1] == labels[:, None]).any(-1)
        return {"loss": (loss * mask).sum(), "top1": ((logits.argmax(-1) == labels) * mask).sum(),
                "top5": (top5 * mask).sum(), "count": mask.sum()}

    return evaluate
