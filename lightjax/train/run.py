"""Training and evaluation runs: config -> data, model, state -> epochs -> checkpoints, metrics.

A run lives in a workdir::

    config.json      the full config (written once; a different config there is refused)
    checkpoints/     orbax checkpoints of the whole train state (resume point)
    metrics.jsonl    one JSON line per epoch
    summary.json     final test metrics, params, MACs, steps, seconds

Re-running the same command on the same workdir resumes from the last checkpoint; with the same
seed the result equals an uninterrupted run (data order and augmentation are functions of
(seed, epoch), and the step's randomness of (seed, step)).
"""
from __future__ import annotations

import json
import math
import os
import sys
import time
from typing import Any, Iterator

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from lightjax import cost, data, models
from lightjax.layers.factory import LayerFactory
from lightjax.train import checkpoint, config as config_lib, optimizer, step as step_lib
from lightjax.train import workdir as workdir_lib
from lightjax.errors import ValidationError

#: ``train.dtype``: computation dtype. ``float64`` (parameters too) is a reference mode for
#: numerical checks; it needs ``jax.config.update('jax_enable_x64', True)`` (``JAX_ENABLE_X64=1``).
DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16, "float64": jnp.float64}


class Diverged(RuntimeError):
    """The loss became NaN/Inf; the last good checkpoint is kept."""


def build_model(cfg: ml_collections.ConfigDict, dataset: Any):
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
        param_dtype=jnp.float64 if dtype == "float64" else jnp.float32)
    return models.create(name, **kwargs)


def build_dataset(cfg: ml_collections.ConfigDict):
    kwargs = dict(cfg.data.to_dict())
    return data.build(kwargs.pop("name"), **kwargs)


def activation_init(cfg: ml_collections.ConfigDict) -> float | None:
    """``train.activation_init`` as a float (``None``: the layers' own init), checked."""
    value = cfg.train.get("activation_init")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValidationError(f"train.activation_init must be a finite number or None, got {value!r}")
    return float(value)


class _Setup:
    """Everything derived from a config: dataset, model, optimizer, steps, shardings."""

    def __init__(self, cfg: ml_collections.ConfigDict):
        self.cfg = cfg
        t = cfg.train
        self.dataset = build_dataset(cfg)
        self.model = build_model(cfg, self.dataset)
        self.batch_size = int(t.batch_size)
        self.steps_per_epoch = self.dataset.steps_per_epoch("train", self.batch_size)
        self.total_steps = int(t.epochs) * self.steps_per_epoch
        self.input_shape = (1, *self.dataset.image_shape)
        self.cost = cost.count(self.model, self.input_shape)
        self.tx = optimizer.from_config(t, self.steps_per_epoch, self.cost)
        devices = np.array(jax.devices())
        if self.batch_size % devices.size:
            raise ValidationError(f"train.batch_size={self.batch_size} must be divisible by the "
                             f"{devices.size} devices")
        self.mesh = Mesh(devices, ("data",))
        self.batch_sharding = NamedSharding(self.mesh, P("data"))
        self.replicated = NamedSharding(self.mesh, P())

    def init_state(self) -> step_lib.TrainState:
        # one compiled init instead of hundreds of small eager dispatches
        init = jax.jit(lambda seed, act: step_lib.init_state(self.model, self.tx, seed,
                                                             self.input_shape, act),
                       out_shardings=self.replicated)
        return init(int(self.cfg.train.seed), activation_init(self.cfg))

    def global_batch(self, local: dict[str, np.ndarray]) -> dict[str, jax.Array]:
        return {k: jax.make_array_from_process_local_data(self.batch_sharding, v)
                for k, v in local.items()}

    def eval_batches(self, split: str) -> Iterator[dict[str, jax.Array]]:
        size = int(self.cfg.train.get("eval_batch_size", self.batch_size))
        size -= size % jax.device_count()
        for batch in self.dataset.batches(split, max(size, jax.device_count()), shuffle=False,
                                          augment=False, drop_remainder=False):
            yield self.global_batch(batch)


def _prepare_workdir(cfg: ml_collections.ConfigDict, workdir: str) -> None:
    workdir_lib.claim(workdir, "config.json", config_lib.to_json(cfg), "run",
                      f"{workdir} holds a run with a different config; use another --workdir (or "
                      f"the same command and config to resume it)")


def evaluate_state(setup: _Setup, state: step_lib.TrainState, split: str = "test",
                   eval_fn=None) -> dict[str, float]:
    eval_fn = eval_fn or jax.jit(step_lib.make_eval_step(setup.model, setup.dataset.num_classes))
    totals = None
    for batch in setup.eval_batches(split):
        sums = eval_fn(state, batch)
        totals = sums if totals is None else jax.tree.map(jnp.add, totals, sums)
    count = float(totals["count"])
    return {"loss": float(totals["loss"]) / count, "top1": float(totals["top1"]) / count,
            "top5": float(totals["top5"]) / count, "count": int(count)}


def train(cfg: ml_collections.ConfigDict, workdir: str, progress: bool = True,
          max_steps: int | None = None) -> dict[str, Any]:
    """Train (or resume) the run described by ``cfg`` in ``workdir``; return the summary.

    ``max_steps`` stops early after that many total steps (saving a checkpoint), as a killed run
    would; calling again resumes.
    """
    setup = _Setup(cfg)  # validates data, model, optimizer before anything is written
    _prepare_workdir(cfg, workdir)
    if progress and jax.process_index() == 0:
        print(f"workdir: {workdir}", file=sys.stderr)
    t = cfg.train
    ckpt = checkpoint.Checkpoints(workdir, keep=int(t.get("keep_checkpoints", 2)))
    state = setup.init_state()
    start = ckpt.latest_step()
    if start is not None:
        state = jax.device_put(ckpt.restore(state, start), setup.replicated)
    start = int(state.step)
    train_fn = jax.jit(step_lib.make_train_step(setup.model, setup.tx,
                                                setup.dataset.num_classes,
                                                float(t.get("label_smoothing", 0.0))),
                       donate_argnums=0)
    eval_fn = jax.jit(step_lib.make_eval_step(setup.model, setup.dataset.num_classes))
    stop_at = setup.total_steps if max_steps is None else min(max_steps, setup.total_steps)
    bar = _progress(progress, setup.total_steps, start, setup.batch_size)
    seconds = _elapsed(workdir)
    t0 = time.time()
    last_good = ckpt.latest_step() or 0
    spe = setup.steps_per_epoch
    metrics_path = os.path.join(workdir, "metrics.jsonl")
    try:
        while int(state.step) < stop_at:
            step = int(state.step)
            epoch, offset = divmod(step, spe)
            sums, n, epoch_t0 = None, 0, time.time()
            batches = setup.dataset.batches("train", setup.batch_size, seed=int(t.seed),
                                            epoch=epoch, start_batch=offset)
            for local in batches:
                if step >= stop_at:
                    break
                state, metrics = train_fn(state, setup.global_batch(local))
                sums = metrics if sums is None else jax.tree.map(jnp.add, sums, metrics)
                n, step = n + 1, step + 1
                if bar is not None:
                    bar.update(1)
                if step % int(t.get("log_every_steps", 50)) == 0 or step % spe == 0:
                    loss = float(metrics["loss"])
                    if not math.isfinite(loss):
                        raise Diverged(f"loss became {loss} at step {step}; stopped. "
                                       + _kept(ckpt, last_good))
                    if bar is not None:
                        bar.set_postfix(loss=f"{loss:.3f}", top1=f"{float(metrics['top1']):.3f}")
            if n == 0:
                break
            train_loss = float(sums["loss"]) / n
            if not math.isfinite(train_loss):
                raise Diverged(f"loss became {train_loss} in epoch {epoch + 1}; stopped. "
                               + _kept(ckpt, last_good))
            epoch_done = step % spe == 0
            every = int(t.get("checkpoint_every_epochs", 1))
            if step >= stop_at or (epoch_done and (epoch + 1) % every == 0):
                ckpt.save(step, state)
                last_good = step
            if epoch_done:
                test = evaluate_state(setup, state, "test", eval_fn)
                row = {"epoch": epoch + 1, "step": step, "train_loss": train_loss,
                       "train_top1": float(sums["top1"]) / n,
                       "test_loss": test["loss"], "test_top1": test["top1"],
                       "test_top5": test["top5"],
                       "lr": float(optimizer.current_lr(state.opt_state)),
                       "images_per_sec": n * setup.batch_size / (time.time() - epoch_t0)}
                if jax.process_index() == 0:
                    with open(metrics_path, "a") as f:
                        f.write(json.dumps(row) + "\n")
                if bar is not None:
                    bar.set_postfix(loss=f"{train_loss:.3f}", test_top1=f"{test['top1']:.3f}")
    finally:
        ckpt.wait()
        if bar is not None:
            bar.close()
    seconds += time.time() - t0
    _write_elapsed(workdir, seconds)
    if int(state.step) < setup.total_steps:
        ckpt.close()
        return {"steps": int(state.step), "finished": False, "seconds": seconds}
    ckpt.save(int(state.step), state)
    ckpt.wait()
    ckpt.close()
    test = evaluate_state(setup, state, "test", eval_fn)
    summary = {"top1": test["top1"], "top5": test["top5"], "loss": test["loss"],
               "params": setup.cost.params, "macs": setup.cost.macs, "steps": int(state.step),
               "seconds": round(seconds, 2), "finished": True}
    if jax.process_index() == 0:
        with open(os.path.join(workdir, "summary.json"), "w") as f:
            json.dump(summary, f, indent=2)
    return summary


def load_run(workdir: str) -> tuple[ml_collections.ConfigDict, _Setup, step_lib.TrainState]:
    """The config, setup and latest checkpointed state of a run directory."""
    path = os.path.join(workdir, "config.json")
    if not os.path.isfile(path):
        raise ValidationError(f"{workdir} holds no lightjax run (no config.json)")
    with open(path) as f:
        try:
            cfg = config_lib.from_json(f.read())
        except json.JSONDecodeError as err:
            raise ValidationError(f"{path} is not valid JSON: {err}") from None
    setup = _Setup(cfg)
    ckpt = checkpoint.Checkpoints(workdir)
    try:
        state = ckpt.restore(setup.init_state())
    finally:
        ckpt.close()
    return cfg, setup, jax.device_put(state, setup.replicated)


def evaluate(workdir: str, split: str = "test") -> dict[str, float]:
    _, setup, state = load_run(workdir)
    return {**evaluate_state(setup, state, split), "step": int(state.step)}


def _kept(ckpt: checkpoint.Checkpoints, step: int) -> str:
    if ckpt.latest_step() is None:
        return "No checkpoint had been saved yet; lower the learning rate and start again."
    return f"The last good checkpoint (step {step}) is kept in {ckpt.directory}."


def _progress(enabled: bool, total: int, initial: int, batch_size: int):
    """A bar over steps that shows images (and images/s): ``unit_scale`` = global batch size."""
    if not enabled or jax.process_index() != 0:
        return None
    from tqdm.auto import tqdm
    return tqdm(total=total, initial=initial, unit="img", unit_scale=batch_size,
                dynamic_ncols=True, mininterval=1.0)


def _elapsed(workdir: str) -> float:
    try:
        with open(os.path.join(workdir, "elapsed.json")) as f:
            return float(json.load(f)["seconds"])
    except (OSError, ValueError, KeyError):
        return 0.0


def _write_elapsed(workdir: str, seconds: float) -> None:
    if jax.process_index() == 0:
        with open(os.path.join(workdir, "elapsed.json"), "w") as f:
            json.dump({"seconds": seconds}, f)
