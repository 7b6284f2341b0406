"""Train state and the pure train / eval steps, for any task and any compression plug-ins.

``make_train_step(model, tx, task, plugins)`` returns ``step(state, batch) -> (state, metrics)``:
forward in train mode, the task's loss, gradients, the (wrapped) optimizer update, new BN
statistics. ``make_eval_step(model, task, plugins)`` returns ``eval(state, batch) -> outputs`` for
the task's evaluator. Both are plain functions of explicit state: jit them, or ``jax.vmap`` them
over a member axis (sweeps). Nothing here knows what a plug-in does (see
:mod:`lightjax.train.compression`).
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from lightjax.layers import activations
from lightjax.tasks.base import Task
from lightjax.train import compression as compression_lib

Batch = dict[str, jax.Array]


@flax.struct.dataclass
class TrainState:
    """Everything a run needs to continue: a pytree, checkpointed as one.

    ``compression`` holds each plug-in's extra state by name (``{'prune': {group: mask}}``), or
    ``None`` without plug-ins. ``ema`` is the exponential moving average of ``params``
    (``train.ema_decay``; see :func:`ema_update`), or ``None`` when off: evaluation, prediction and
    export then use it (:func:`eval_params`).
    """

    step: jax.Array
    params: Any
    batch_stats: Any
    opt_state: Any
    rng: jax.Array
    compression: Any = None
    ema: Any = None


def eval_params(state: TrainState) -> Any:
    """The parameters a trained state is evaluated and deployed with: the moving average when the
    run keeps one, else the parameters themselves."""
    return state.params if state.ema is None else state.ema


def ema_update(ema: Any, params: Any, step: jax.Array, decay: float) -> Any:
    """One moving-average step, ``ema <- d * ema + (1 - d) * params`` with
    ``d = min(decay, (1 + step) / (10 + step))`` (``step`` counts updates before this one): the
    warm-up of TensorFlow's ``ExponentialMovingAverage(num_updates=step)``, so the average is not
    dominated by the initial weights early on. Float leaves only; others are copied."""
    step = jnp.asarray(step, jnp.float32)
    d = jnp.minimum(jnp.float32(decay), (1.0 + step) / (10.0 + step))

    def one(e, p):
        if not jnp.issubdtype(p.dtype, jnp.floating):
            return p
        return (e + (1.0 - d).astype(e.dtype) * (p - e)).astype(e.dtype)

    return jax.tree.map(one, ema, params)


def init_state(model: nn.Module, tx: optax.GradientTransformation, seed: Any,
               input_shape: tuple[int, ...], activation_init: Any = None,
               plugins: Sequence[compression_lib.Compression] = (),
               ema: bool = False) -> TrainState:
    """Initialise parameters, BN statistics, optimizer and plug-in state (``input_shape``: NHWC);
    with ``ema`` the moving average starts at the initial parameters.

    ``seed`` and ``activation_init`` (start value of every trainable activation parameter, e.g.
    RReLU slopes; ``None``: the layer's own init) may be traced, so sweep members vmap over them.
    """
    init_key, rng = jax.random.split(jax.random.PRNGKey(seed))
    variables = model.init(init_key, jnp.zeros(input_shape, jnp.float32), train=False)
    params = variables["params"]
    if activation_init is not None:
        params = activations.set_trainable_init(params, activation_init)
    extra = {p.name: p.init(params) for p in plugins} or None
    state = TrainState(step=jnp.zeros((), jnp.int32), params=params,
                       batch_stats=variables.get("batch_stats", {}), opt_state=tx.init(params),
                       rng=rng, compression=extra)
    for p in plugins:
        state = p.on_start(state, tx)
    if ema:
        state = state.replace(ema=jax.tree.map(jnp.copy, state.params))
    return state


def init_compiler_options() -> dict[str, Any]:
    """XLA options for the jitted state initialization, which runs once: on CPU, LLVM's
    optimization level 1 compiles a MobileNet's init (its many threefry/erfinv initializers) in
    about a third of the default's time (3.3 s against 9 s for MobileNetV1 on the 2-core CPU) and
    gives bit-identical parameters there. Other backends: their defaults."""
    return {"xla_backend_optimization_level": 1} if jax.default_backend() == "cpu" else {}


def model_variables(state: TrainState, params: Any,
                    plugins: Sequence[compression_lib.Compression] = ()) -> dict[str, Any]:
    """The variables ``model.apply`` takes: ``params``, BN statistics and the plug-ins'
    collections (e.g. pruning's ``masks``)."""
    variables = {"params": params, "batch_stats": state.batch_stats}
    if plugins:
        variables.update(compression_lib.merged(plugins, "collections", state.compression))
    return variables


def make_train_step(model: nn.Module, tx: optax.GradientTransformation, task: Task,
                    plugins: Sequence[compression_lib.Compression] = (),
                    ema_decay: float | None = None
                    ) -> Callable[[TrainState, Batch], tuple[TrainState, dict]]:
    """``step(state, batch) -> (state, metrics)`` with the task's training metrics (means over the
    batch); jit it with donated state. ``model`` and ``tx`` are already transformed/wrapped by
    ``plugins``. ``ema_decay`` (in (0, 1)) also updates ``state.ema`` (:func:`ema_update`); the
    state must have been initialised with ``ema=True``."""

    def step(state: TrainState, batch: Batch):
        dropout_key = jax.random.fold_in(state.rng, state.step)

        def loss_fn(params):
            outputs, updates = model.apply(
                model_variables(state, params, plugins), batch["image"], train=True,
                mutable=["batch_stats"], rngs={"dropout": dropout_key})
            loss, metrics = task.loss(outputs, batch)
            return loss, (metrics, updates)

        (_, (metrics, updates)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
        extra_args = compression_lib.merged(plugins, "update_args", state.compression or {},
                                            state.params) if plugins else {}
        changes, opt_state = tx.update(grads, state.opt_state, state.params, **extra_args)
        params = optax.apply_updates(state.params, changes)
        # statistics keep their stored dtype (flax's BatchNorm would turn float32 statistics
        # into float64 ones in float64 mode: a second compilation, and a state that drifts)
        stats = jax.tree.map(lambda new, old: new.astype(old.dtype),
                             updates.get("batch_stats", state.batch_stats), state.batch_stats)
        new = state.replace(step=state.step + 1, params=params, batch_stats=stats,
                            opt_state=opt_state)
        if ema_decay:
            new = new.replace(ema=ema_update(state.ema, params, state.step, ema_decay))
        return new, metrics

    return step


def make_eval_step(model: nn.Module, task: Task,
                   plugins: Sequence[compression_lib.Compression] = ()
                   ) -> Callable[[TrainState, Batch], dict]:
    """``eval(state, batch) -> outputs`` for the task's evaluator (eval-mode forward)."""

    def evaluate(state: TrainState, batch: Batch):
        outputs = model.apply(model_variables(state, eval_params(state), plugins),
                              batch["image"], train=False)
        return task.eval_outputs(outputs, batch)

    return evaluate
