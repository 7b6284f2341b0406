"""An experiment: everything a config describes, built and checked before anything runs.

:class:`Experiment` turns a run config into its dataset, task, model (with the compression
plug-ins' transforms), cost report, optimizer (wrapped by the plug-ins), device mesh, and the
jitted train / eval steps. ``lightjax train``, ``eval``, ``prune``, ``sensitivity`` and the sweep
groups all build one; every bad setting fails here, before a workdir is written.

Config sections: ``model`` (``name`` + the model's hyper-parameters), ``data`` (``name`` + the
dataset's options), ``train`` (:mod:`lightjax.train.defaults`), ``task`` (optional: ``name`` and
the task's options; default: the dataset's natural task, e.g. ``classification``), and optional
compression sections (``prune``; see :mod:`lightjax.train.compression`).
"""
from __future__ import annotations

import math
from typing import Any, Iterator, Sequence

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from lightjax import cost, data, models, tasks
from lightjax.errors import ValidationError
from lightjax.layers.factory import LayerFactory
from lightjax.train import compression as compression_lib
from lightjax.train import optimizer, validate
from lightjax.train import step as step_lib

#: ``train.dtype``: computation dtype. ``float64`` (parameters too) is a reference mode for
#: numerical checks; it needs ``jax.config.update('jax_enable_x64', True)`` (``JAX_ENABLE_X64=1``).
DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16, "float64": jnp.float64}


def build_dataset(cfg: ml_collections.ConfigDict) -> data.Dataset:
    kwargs = dict(cfg.data.to_dict())
    return data.build(kwargs.pop("name"), **kwargs)


def build_model(cfg: ml_collections.ConfigDict, dataset: Any):
    """The model of ``cfg.model`` for ``dataset`` (class count and input channels from it)."""
    kwargs = dict(cfg.model.to_dict())
    name = kwargs.pop("name")
    dtype = cfg.train.get("dtype", "float32")
    if dtype not in DTYPES:
        raise ValidationError(f"unknown train.dtype {dtype!r}; allowed: {', '.join(DTYPES)}")
    kwargs.setdefault("num_classes", dataset.num_classes)
    if kwargs["num_classes"] != dataset.num_classes:
        raise ValidationError(f"model.num_classes={kwargs['num_classes']} but dataset "
                              f"{dataset.name!r} has {dataset.num_classes} classes")
    kwargs["input_channels"] = dataset.image_shape[-1]
    if kwargs.get("widths") is not None:  # JSON gives a list; module fields must be hashable
        kwargs["widths"] = tuple(kwargs["widths"])
    if dtype == "float64" and not jax.config.jax_enable_x64:
        raise ValidationError("train.dtype='float64' needs 64-bit JAX: set JAX_ENABLE_X64=1 (or "
                              "jax.config.update('jax_enable_x64', True)) before anything runs")
    kwargs["layers"] = LayerFactory(
        dtype=None if dtype == "float32" else DTYPES[dtype],
        param_dtype=jnp.float64 if dtype == "float64" else jnp.float32,
        **bn_options(cfg.train))
    return models.create(name, **kwargs)


def bn_options(train: ml_collections.ConfigDict) -> dict[str, Any]:
    """The :class:`LayerFactory` BatchNorm settings a ``train`` section sets (optional fields
    ``bn_momentum`` (flax convention: 0.9 = PyTorch's 0.1), ``bn_epsilon``,
    ``bn_unbiased_variance``); absent fields keep the factory's defaults (0.9, 1e-5, False)."""
    names = {"bn_momentum": float, "bn_epsilon": float, "bn_unbiased_variance": bool}
    return {name: kind(train[name]) for name, kind in names.items()
            if train.get(name) is not None}


def task_section(cfg: ml_collections.ConfigDict, dataset: Any) -> dict[str, Any]:
    """``cfg.task`` as a dict (default: the dataset's natural task)."""
    section = cfg.get("task")
    out = dict(section.to_dict()) if section is not None else {}
    out.setdefault("name", getattr(dataset, "task", None) or "classification")
    return out


def build_task(cfg: ml_collections.ConfigDict, dataset: Any) -> tasks.Task:
    """The task of ``cfg.task`` for ``dataset``; ``train.label_smoothing`` goes to tasks that take
    it."""
    options = task_section(cfg, dataset)
    name = options.pop("name")
    smoothing = float(cfg.train.get("label_smoothing", 0.0) or 0.0)
    if smoothing and "label_smoothing" not in options:
        options["label_smoothing"] = smoothing
    if name == "segmentation" and "ignore_label" not in options and \
            getattr(dataset, "ignore_label", None) is not None:
        options["ignore_label"] = int(dataset.ignore_label)
    task = tasks.create(name, num_classes=dataset.num_classes, **options)
    task.check_dataset(dataset)
    return task


def activation_init(cfg: ml_collections.ConfigDict) -> float | None:
    """``train.activation_init`` as a float (``None``: the layers' own init), checked."""
    value = cfg.train.get("activation_init")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValidationError(f"train.activation_init must be a finite number or None, got "
                              f"{value!r}")
    return float(value)


def ema_decay(cfg: ml_collections.ConfigDict) -> float | None:
    """``train.ema_decay`` as a float, or ``None`` when off (absent, None or 0)."""
    value = cfg.train.get("ema_decay")
    return float(value) if value else None


class SingleAccess:
    """:class:`lightjax.train.compression.StateAccess` for one run: a member axis of 1."""

    members = 1

    def __init__(self, experiment: "Experiment"):
        self.experiment = experiment
        self._write = None

    def read(self, tree: Any) -> Any:
        return jax.tree.map(lambda a: np.asarray(a)[None], jax.device_get(tree))

    def write(self, state: step_lib.TrainState, name: str, value: Any) -> step_lib.TrainState:
        if self._write is None:
            plugins = self.experiment.plugins

            def write(state, name_value):
                extra = dict(state.compression, **name_value)
                state = state.replace(compression=extra)
                for p in plugins:
                    state = p.on_write(state)
                return state

            # no donation: callers (pruning sessions, sensitivity) keep earlier states
            self._write = jax.jit(write, out_shardings=self.experiment.replicated)
        single = jax.tree.map(lambda a: jnp.asarray(a[0]), value)
        return self._write(state, {name: single})


class Experiment:
    """Dataset, task, model, cost, optimizer, mesh and steps of one run config.

    Attributes:
      cfg: the config. dataset, task, base_model (without compression), model (transformed by
      the plug-ins), plugins, cost (of the base model, NHWC batch 1), tx (wrapped), batch_size
      (global), steps_per_epoch, total_steps, input_shape, mesh (``('data',)``), shardings.

    ``plugins=None`` builds the plug-ins the config asks for (``plugins`` may also be a list, or
    a function of the partly built experiment returning one); ``learning_rate`` replaces the
    schedule by a value held in the optimizer state (set per step with
    :func:`lightjax.train.optimizer.with_lr`); ``traced_weight_decay`` holds the weight decay
    there too (sweeps).
    """

    def __init__(self, cfg: ml_collections.ConfigDict,
                 plugins: Sequence[compression_lib.Compression] | None = None,
                 learning_rate: float | None = None, traced_weight_decay: bool = False,
                 member_configs: Sequence[ml_collections.ConfigDict] | None = None):
        self.cfg = cfg
        t = cfg.train
        validate.check_train(t)
        self.dataset = build_dataset(cfg)
        self.task = build_task(cfg, self.dataset)
        self.base_model = build_model(cfg, self.dataset)
        self.batch_size = int(t.batch_size)
        #: ``train.ema_decay``: the parameters' moving-average decay, or None (off)
        self.ema_decay = ema_decay(cfg)
        self.steps_per_epoch = self.dataset.steps_per_epoch("train", self.batch_size)
        self.total_steps = int(t.epochs) * self.steps_per_epoch
        self.input_shape = (1, *self.dataset.image_shape)
        self.cost = cost.count(self.base_model, self.input_shape)
        self._check_output()
        if plugins is None:
            plugins = compression_lib.from_config(member_configs or [cfg], self)
        elif callable(plugins):  # built from the partly built experiment (its model, data)
            plugins = plugins(self)
        self.plugins = list(plugins)
        self.model = compression_lib.chain_transforms(self.plugins, self.base_model)
        tx = optimizer.from_config(t, self.steps_per_epoch, self.cost, learning_rate,
                                   traced_weight_decay)
        self.tx = compression_lib.wrap_optimizer(self.plugins, tx)
        devices = np.array(jax.devices())
        if self.batch_size % devices.size:
            raise ValidationError(f"train.batch_size={self.batch_size} must be divisible by the "
                                  f"{devices.size} devices")
        self.mesh = Mesh(devices, ("data",))
        self.batch_sharding = NamedSharding(self.mesh, P("data"))
        self.replicated = NamedSharding(self.mesh, P())
        self.access = SingleAccess(self)
        self._train_fn = self._eval_fn = None

    def _check_output(self) -> None:
        model = self.base_model
        shape = jax.eval_shape(lambda: model.init_with_output(
            jax.random.PRNGKey(0), jnp.zeros(self.input_shape, jnp.float32), train=False)[0])
        # one output: its shape; several (e.g. detection maps per scale): a tuple of shapes
        shapes = jax.tree.map(lambda s: tuple(s.shape), shape)
        self.task.check_output(shapes, self.input_shape, self.cfg.model.name)
        check_images = getattr(model, "check_images", None)
        for side in self.dataset.train_sizes:  # multi-scale: every size, before anything runs
            if check_images is not None:
                check_images(jax.ShapeDtypeStruct((1, side, side, self.input_shape[-1]),
                                                  jnp.float32))

    # --- state --------------------------------------------------------------------------------
    def _init(self, seed: int, act: float | None) -> step_lib.TrainState:
        return step_lib.init_state(self.model, self.tx, seed, self.input_shape, act,
                                   self.plugins, ema=self.ema_decay is not None)

    def init_state(self) -> step_lib.TrainState:
        # one compiled init instead of hundreds of small eager dispatches
        init = jax.jit(self._init, out_shardings=self.replicated,
                       compiler_options=step_lib.init_compiler_options())
        return init(int(self.cfg.train.seed), activation_init(self.cfg))

    def abstract_state(self) -> step_lib.TrainState:
        """Shapes, dtypes and (replicated) shardings of :meth:`init_state`, from
        ``jax.eval_shape``: nothing is compiled or computed (a checkpoint restores into it)."""
        shapes = jax.eval_shape(self._init, int(self.cfg.train.seed), activation_init(self.cfg))
        return jax.tree.map(lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype,
                                                           sharding=self.replicated), shapes)

    # --- data ---------------------------------------------------------------------------------
    def global_batch(self, local: dict[str, np.ndarray]) -> dict[str, jax.Array]:
        return {k: jax.make_array_from_process_local_data(self.batch_sharding, v)
                for k, v in local.items()}

    def train_batches(self, epoch: int, start_batch: int = 0, seed: int | None = None,
                      augment: bool | None = None) -> Iterator[dict[str, jax.Array]]:
        seed = int(self.cfg.train.seed) if seed is None else seed
        for local in self.dataset.batches("train", self.batch_size, seed=seed, epoch=epoch,
                                          start_batch=start_batch, augment=augment):
            yield self.global_batch(local)

    def eval_batches(self, split: str) -> Iterator[dict[str, jax.Array]]:
        size = int(self.cfg.train.get("eval_batch_size", self.batch_size))
        size -= size % jax.device_count()
        for batch in self.dataset.batches(split, max(size, jax.device_count()), shuffle=False,
                                          augment=False, drop_remainder=False):
            yield self.global_batch(batch)

    # --- steps --------------------------------------------------------------------------------
    @property
    def train_fn(self):
        """The jitted train step (state donated)."""
        if self._train_fn is None:
            self._train_fn = jax.jit(step_lib.make_train_step(
                self.model, self.tx, self.task, self.plugins, self.ema_decay), donate_argnums=0)
        return self._train_fn

    @property
    def eval_fn(self):
        if self._eval_fn is None:
            self._eval_fn = jax.jit(step_lib.make_eval_step(self.model, self.task, self.plugins))
        return self._eval_fn

    def run_evaluator(self, state: step_lib.TrainState, split: str = "test"):
        """The task's evaluator after every batch of ``split`` (what it collected stays readable,
        e.g. the detection evaluator's per-image ``detections`` and ``truth``)."""
        evaluator = self.task.evaluator()
        for batch in self.eval_batches(split):
            evaluator.update(jax.device_get(self.eval_fn(state, batch)))
        return evaluator

    def evaluate(self, state: step_lib.TrainState, split: str = "test") -> dict[str, float]:
        """The task's metrics over the whole ``split`` (its evaluator, on the host)."""
        return self.run_evaluator(state, split).result()

    def before_step_hooks(self) -> list:
        """The plug-ins' host actions as loop hooks ``(state, step) -> state``."""
        return [lambda state, step, p=p: p.before_step(self.access, state, step)
                for p in self.plugins]
