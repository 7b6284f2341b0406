"""Training and evaluation runs: config -> :class:`Experiment` -> the loop -> checkpoints, metrics.

A run lives in a workdir::

    config.json          the full config (written once; a different config there is refused)
    checkpoints/         orbax checkpoints of the whole train state (resume point)
    metrics.jsonl        one JSON line per epoch (never duplicated across resumes)
    summary.json         final metrics of the task, params, MACs, steps, seconds
    .lock                held while a process trains here (a second one is refused)

Re-running the same command on the same workdir resumes from the last checkpoint; with the same
seed the result equals an uninterrupted run (data order and augmentation are functions of
(seed, epoch), and the step's randomness of (seed, step)). SIGINT/SIGTERM checkpoint and stop.
"""
from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

import jax
import ml_collections

from lightjax.errors import ValidationError
from lightjax.train import checkpoint, config as config_lib, loop as loop_lib, optimizer
from lightjax.train import warm_start
from lightjax.train import step as step_lib
from lightjax.train import workdir as workdir_lib
from lightjax.train.experiment import Experiment
from lightjax.train.metrics_log import MetricsLog


def claim(cfg: ml_collections.ConfigDict, workdir: str) -> None:
    """Write ``config.json`` into ``workdir`` (or accept the same one there)."""
    workdir_lib.claim(workdir, "config.json", config_lib.to_json(cfg), "run",
                      f"{workdir} holds a run with a different config; use another --workdir (or "
                      f"the same command and config to resume it)")


def _check_resumable(workdir: str, ckpt: checkpoint.Checkpoints) -> None:
    """A run that finished here must still have its checkpoints: retraining it silently would
    overwrite its results. A run killed before its first checkpoint was committed (its metrics
    log may already hold an epoch) starts over: retraining reproduces those rows exactly."""
    if ckpt.latest_step() is not None:
        return
    path = os.path.join(workdir, "summary.json")
    if os.path.exists(path) and os.path.getsize(path) > 0:
        raise ValidationError(
            f"{workdir} holds a finished run (summary.json) but its checkpoints/ is missing or "
            f"empty; restore it to evaluate or resume, or use a new --workdir")
    log = os.path.join(workdir, "metrics.jsonl")
    if os.path.exists(log) and os.path.getsize(log) > 0 and jax.process_index() == 0:
        print(f"{workdir}: no committed checkpoint (the run was stopped before its first one "
              f"completed); starting over", file=sys.stderr)


def summary_of(exp: Experiment, metrics: dict[str, Any], steps: int,
               seconds: float, state: step_lib.TrainState | None = None) -> dict[str, Any]:
    """``summary.json``: the task's final metrics plus cost, steps and time, and (given the
    ``state``) each compression plug-in's figures (e.g. binarized parameters, model bits)."""
    out = {k: v for k, v in metrics.items() if isinstance(v, (int, float))}
    out.update({"task": exp.task.name, "metric": exp.task.primary,
                "params": exp.cost.params, "macs": exp.cost.macs, "steps": steps,
                "seconds": round(seconds, 2), "finished": True})
    if state is not None:
        for p in exp.plugins:
            out.update(p.summary(exp.access.read(state.compression[p.name]), 0))
    return out


def train(cfg: ml_collections.ConfigDict, workdir: str, progress: bool = True,
          max_steps: int | None = None) -> dict[str, Any]:
    """Train (or resume) the run described by ``cfg`` in ``workdir``; return the summary.

    ``max_steps`` stops early after that many total steps (saving a checkpoint), as a killed run
    would; calling again resumes.
    """
    exp = Experiment(cfg)  # validates data, task, model, optimizer before anything is written
    if max_steps is not None and (isinstance(max_steps, bool) or max_steps < 1):
        raise ValidationError(f"--max-steps must be an integer >= 1, got {max_steps!r}")
    claim(cfg, workdir)
    main = jax.process_index() == 0
    with workdir_lib.Lock(workdir, enabled=main):
        if progress and main:
            print(f"workdir: {workdir}", file=sys.stderr)
        t = cfg.train
        ckpt = checkpoint.Checkpoints(workdir, keep=int(t.get("keep_checkpoints", 2)))
        try:
            _check_resumable(workdir, ckpt)
            state = exp.init_state()
            if ckpt.latest_step() is not None:
                state = jax.device_put(ckpt.restore(state), exp.replicated)
            elif t.get("init_from"):
                state, report = warm_start.merge(state, warm_start.source_tensors(t.init_from))
                state = jax.device_put(state, exp.replicated)
                if main:
                    print(f"lightjax: {report.line(t.init_from)}", file=sys.stderr)
            start = int(state.step)
            seconds = _elapsed(workdir)
            loop = loop_lib.Loop(
                steps_per_epoch=exp.steps_per_epoch, total_steps=exp.total_steps,
                step=lambda s, b, i: exp.train_fn(s, b), batches=exp.train_batches,
                evaluate=lambda s: [exp.evaluate(s, "test")],
                eval_every_epochs=int(t.get("eval_every_epochs", 1)),
                checkpoints=ckpt, checkpoint_every_epochs=int(t.get("checkpoint_every_epochs", 1)),
                log=MetricsLog(os.path.join(workdir, "metrics.jsonl"), main),
                before_step=exp.before_step_hooks(), divergence="raise",
                check_every_steps=int(t.get("log_every_steps", 50)), progress=progress,
                batch_size=exp.batch_size,
                learning_rate=lambda s: optimizer.current_lr(s.opt_state),
                resume_hint=f"run `lightjax train --workdir {workdir}` to resume",
                plateau=_plateau(cfg, exp))
            t0 = time.time()
            try:
                result = loop_lib.run(loop, state, start, max_steps)
            finally:
                seconds += time.time() - t0
                _write_elapsed(workdir, seconds)
            if not result.finished:
                return {"steps": result.step, "finished": False, "seconds": seconds}
            ckpt.save(result.step, result.state)
            ckpt.wait()
            metrics = exp.evaluate(result.state, "test")
        finally:
            ckpt.close()
    summary = summary_of(exp, metrics, result.step, seconds, result.state)
    if result.plateau_epoch is not None:
        summary["stopped_on_plateau_after_epoch"] = result.plateau_epoch
    if main:
        with open(os.path.join(workdir, "summary.json"), "w") as f:
            json.dump(summary, f, indent=2)
    return summary


def _plateau(cfg: ml_collections.ConfigDict, exp: Experiment) -> loop_lib.Plateau | None:
    patience = int(cfg.train.get("plateau_patience", 0) or 0)
    if not patience:
        return None
    return loop_lib.Plateau(exp.task.primary, exp.task.higher_is_better, patience,
                            int(cfg.train.get("plateau_after_epochs", 0) or 0))


def read_config(workdir: str) -> ml_collections.ConfigDict:
    path = os.path.join(workdir, "config.json")
    if not os.path.isfile(path):
        raise ValidationError(f"{workdir} holds no lightjax run (no config.json)")
    with open(path) as f:
        try:
            return config_lib.from_json(f.read())
        except json.JSONDecodeError as err:
            raise ValidationError(f"{path} is not valid JSON: {err}") from None


def load_run(workdir: str, plugins=None) -> tuple[ml_collections.ConfigDict, Experiment,
                                                  step_lib.TrainState]:
    """The config, experiment and latest checkpointed state of a run directory (restored into
    the abstract state: the training init is not compiled)."""
    cfg = read_config(workdir)
    exp = Experiment(cfg, plugins=plugins)
    ckpt = checkpoint.Checkpoints(workdir)
    try:
        state = ckpt.restore(exp.abstract_state())
    finally:
        ckpt.close()
    return cfg, exp, jax.device_put(state, exp.replicated)


def evaluate(workdir: str, split: str = "test") -> dict[str, Any]:
    _, exp, state = load_run(workdir)
    return {**exp.evaluate(state, split), "step": int(state.step), "task": exp.task.name,
            "metric": exp.task.primary, "class_names": list(exp.dataset.class_names)}


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


def per_class_lines(metrics: dict[str, Any]) -> list[str]:
    """The task's per-class table of an :func:`evaluate` result (class names from the dataset),
    e.g. each class's IoU for segmentation; ``[]`` if the task has none."""
    from lightjax import tasks

    task = tasks.create(metrics.get("task", "classification"), num_classes=2)
    return task.per_class_table(metrics, metrics.get("class_names", ()))


def describe(metrics: dict[str, Any]) -> str:
    """One line of a summary or evaluation: the task's own wording (top-1/top-5, mIoU, ...)."""
    from lightjax import tasks

    name = metrics.get("task", "classification")
    return tasks.create(name, num_classes=2).summary_line(metrics)
