"""THE training loop: every job that trains goes through :func:`run`.

``lightjax train`` (one run), pruning fine-tuning (:mod:`lightjax.prune.session`) and sweep groups
(:mod:`lightjax.sweep.group`, the step vmapped over a member axis) each describe their job as a
:class:`Loop` — a step function, a batch source, an optional evaluator, checkpoints and a metrics
log — and call :func:`run`. It owns epochs and steps, host actions between steps (compression
plug-ins), the progress bar, periodic evaluation and checkpoints, the divergence check, the
per-epoch metrics log and SIGINT/SIGTERM handling (:mod:`lightjax.train.interrupts`).

Metrics from the step are dicts of scalars (one run) or of ``(members,)`` arrays (a vmapped
group); the loop treats a run as one member.
"""
from __future__ import annotations

import dataclasses
import json
import os
import time
from typing import Any, Callable, Iterable, Sequence

import jax
import numpy as np

from lightjax import errors
from lightjax.train import interrupts
from lightjax.train.checkpoint import Checkpoints
from lightjax.train.metrics_log import MetricsLog

StepFn = Callable[[Any, dict, int], tuple[Any, dict]]
HostHook = Callable[[Any, int], Any]


@dataclasses.dataclass(frozen=True)
class Plateau:
    """Stop when the evaluated metric ``test_<metric>`` has not improved for ``patience`` epochs,
    counting only epochs after the first ``after_epochs`` (e.g. the final fine-tuning stage of a
    staged schedule). Read from the metrics log, so a resumed run decides exactly as an
    uninterrupted one.

    Attributes:
      metric: the task's primary metric. higher_is_better: its direction.
      patience: epochs without a strict improvement on the best value so far (>= 1).
      after_epochs: epochs not counted (the best is taken from epoch ``after_epochs + 1`` on).
    """

    metric: str
    higher_is_better: bool
    patience: int
    after_epochs: int = 0

    def reached(self, rows: Sequence[dict]) -> bool:
        """Whether the logged epochs ``rows`` end ``patience`` epochs after the best one."""
        key = f"test_{self.metric}"
        values = [float(r[key]) for r in rows
                  if int(r.get("epoch", 0)) > self.after_epochs and key in r]
        if not values:
            return False
        best = 0
        for i, v in enumerate(values):
            if (v > values[best]) if self.higher_is_better else (v < values[best]):
                best = i
        return len(values) - 1 - best >= self.patience


@dataclasses.dataclass
class Loop:
    """One training job.

    Attributes:
      steps_per_epoch / total_steps: the schedule (a step is one global batch).
      step: ``(state, batch, step) -> (state, metrics)``, jitted by the caller.
      batches: ``(epoch, start_batch) -> iterable of global batches`` (the epoch's order is a
        function of the epoch, so a resumed epoch continues exactly).
      members: 1 for a run; K for a vmapped sweep group (metrics carry a leading K axis).
      evaluate: ``state -> [metrics per member]``, run every ``eval_every_epochs`` epochs (0:
        never inside the loop) and logged as ``test_*``.
      checkpoints / checkpoint_every_epochs: orbax checkpoints of the state (also written at
        ``stop_at`` and on SIGINT/SIGTERM).
      log: the per-epoch metrics log (one run only).
      before_step: host actions ``(state, step) -> state`` (compression plug-ins).
      divergence: ``'raise'`` (:class:`lightjax.errors.Diverged`, the last good checkpoint kept)
        or ``'mark'`` (flag the member, the others go on: sweeps).
      check_every_steps: how often the loss is read back for the divergence check and the bar.
      progress: show a tqdm bar (process 0 only); ``label`` names it.
      batch_size: global batch (the bar counts images).
      learning_rate: ``state -> lr`` for the log (member 0).
      resume_hint: the end of the one-line interrupt message.
      plateau: stop early (finished) when the evaluated metric stops improving (one run with a
        ``log`` evaluated every epoch; see :class:`Plateau`).
    """

    steps_per_epoch: int
    total_steps: int
    step: StepFn
    batches: Callable[[int, int], Iterable[dict]]
    members: int = 1
    evaluate: Callable[[Any], list[dict[str, float]]] | None = None
    eval_every_epochs: int = 1
    checkpoints: Checkpoints | None = None
    checkpoint_every_epochs: int = 1
    log: MetricsLog | None = None
    before_step: Sequence[HostHook] = ()
    divergence: str = "raise"
    check_every_steps: int = 50
    progress: bool = False
    label: str = ""
    batch_size: int = 1
    learning_rate: Callable[[Any], float] | None = None
    resume_hint: str = "run the same command again to resume"
    plateau: Plateau | None = None


@dataclasses.dataclass
class Result:
    state: Any
    step: int
    finished: bool  # the end reached, or stopped on a plateau
    diverged: np.ndarray  # (members,) bool
    seconds: float
    last: list[dict[str, float]] | None = None  # the last evaluation inside the loop
    plateau_epoch: int | None = None  # the epoch after which a plateau stopped the run


def _members(value: Any, k: int) -> np.ndarray:
    return np.broadcast_to(np.asarray(value, np.float64).reshape(-1), (k,))


class _Epoch:
    """Running sums of one epoch's training metrics (kept on device until read)."""

    def __init__(self, sums: Any = None, n: int = 0):
        self.sums, self.n, self.t0 = sums, n, time.time()

    def add(self, metrics: dict) -> None:
        self.sums = metrics if self.sums is None else jax.tree.map(lambda a, b: a + b,
                                                                   self.sums, metrics)
        self.n += 1

    def means(self, k: int) -> dict[str, np.ndarray]:
        host = jax.device_get(self.sums)
        return {key: _members(v, k) / self.n for key, v in host.items()}


def _progress_file(loop: Loop) -> str | None:
    if loop.checkpoints is None or loop.log is None:
        return None
    return os.path.join(os.path.dirname(loop.checkpoints.directory), "epoch_progress.json")


def _save_partial(loop: Loop, step: int, epoch: _Epoch) -> None:
    """Keep the interrupted epoch's metric sums next to the checkpoint, so its log row after a
    resume equals the uninterrupted one."""
    path = _progress_file(loop)
    if path is None or jax.process_index() != 0 or epoch.sums is None:
        return
    sums = {k: np.asarray(v, np.float64).tolist() for k, v in jax.device_get(epoch.sums).items()}
    with open(path + ".tmp", "w") as f:
        json.dump({"step": step, "n": epoch.n, "sums": sums}, f)
    os.replace(path + ".tmp", path)


def _load_partial(loop: Loop, step: int) -> _Epoch:
    path = _progress_file(loop)
    if path is None or not os.path.exists(path):
        return _Epoch()
    try:
        with open(path) as f:
            saved = json.load(f)
    except (OSError, ValueError):
        return _Epoch()
    if saved.get("step") != step or step % loop.steps_per_epoch == 0:
        return _Epoch()
    return _Epoch({k: np.asarray(v, np.float32) for k, v in saved["sums"].items()},
                  int(saved["n"]))


def _bar(loop: Loop, initial: int):
    if not loop.progress or jax.process_index() != 0:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=loop.total_steps, initial=initial, unit="img", unit_scale=loop.batch_size,
                dynamic_ncols=True, mininterval=1.0, desc=loop.label or None)


def _kept(loop: Loop, step: int | None) -> str:
    if loop.checkpoints is None:
        return "Nothing was saved."
    if step is None:
        return "No checkpoint had been saved yet; lower the learning rate and start again."
    return f"The last good checkpoint (step {step}) is kept in {loop.checkpoints.directory}."


def run(loop: Loop, state: Any, start: int, stop_at: int | None = None) -> Result:
    """Train from step ``start`` (the state's step) to ``stop_at`` (default: the end).

    Raises :class:`lightjax.errors.Interrupted` after checkpointing on SIGINT/SIGTERM, and
    :class:`lightjax.errors.Diverged` on a NaN/Inf loss with ``divergence='raise'``.
    """
    if loop.divergence not in ("raise", "mark"):
        raise ValueError(f"divergence must be 'raise' or 'mark', got {loop.divergence!r}")
    if loop.plateau is not None and (loop.log is None or loop.members != 1 or
                                     loop.evaluate is None or loop.eval_every_epochs != 1):
        raise ValueError("a plateau stop needs one run with a metrics log evaluated every epoch")
    spe, k = loop.steps_per_epoch, loop.members
    stop = loop.total_steps if stop_at is None else min(stop_at, loop.total_steps)
    step = start
    diverged = np.zeros(k, bool)
    last_good = loop.checkpoints.latest_step() if loop.checkpoints is not None else None
    if loop.log is not None:
        loop.log.rewind(step // spe)
    if _plateau(loop, step):  # it stopped here before: nothing more to train
        return Result(state, step, True, diverged, 0.0, None, step // spe)
    epoch_sums = _load_partial(loop, step)
    last_eval = None
    t0 = time.time()
    bar = _bar(loop, start)
    try:
        with interrupts.Guard() as guard:
            while step < stop:
                epoch, offset = divmod(step, spe)
                if offset == 0:
                    epoch_sums = _Epoch()
                for batch in loop.batches(epoch, offset):
                    if step >= stop:
                        break
                    for hook in loop.before_step:
                        state = hook(state, step)
                    state, metrics = loop.step(state, batch, step)
                    epoch_sums.add(metrics)
                    step += 1
                    if bar is not None:
                        bar.update(1)
                    if step % loop.check_every_steps == 0 and "loss" in metrics:
                        losses = _members(jax.device_get(metrics["loss"]), k)
                        _check(loop, losses, diverged, f"at step {step}", last_good)
                        if bar is not None:
                            bar.set_postfix(loss=f"{np.nanmean(losses):.3f}")
                    signum = guard.pending(step, epoch_end=step % spe == 0 or step >= stop)
                    if signum is not None:
                        if loop.checkpoints is not None:
                            loop.checkpoints.save(step, state)
                            loop.checkpoints.wait()
                            _save_partial(loop, step, epoch_sums)
                        where = (f"; checkpoint saved in {loop.checkpoints.directory}"
                                 if loop.checkpoints is not None else "")
                        raise errors.Interrupted(
                            signum, f"interrupted by {_name(signum)} at step {step} of "
                                    f"{loop.total_steps}{where}; {loop.resume_hint}")
                if epoch_sums.n == 0:
                    break
                means = epoch_sums.means(k)
                if "loss" in means:
                    _check(loop, means["loss"], diverged, f"in epoch {epoch + 1}", last_good)
                epoch_done = step % spe == 0
                every = max(1, loop.checkpoint_every_epochs)
                if loop.checkpoints is not None and (
                        step >= stop or (epoch_done and (epoch + 1) % every == 0)):
                    loop.checkpoints.save(step, state)
                    last_good = step
                if epoch_done:
                    row = {"epoch": epoch + 1, "step": step}
                    row.update({f"train_{key}": float(v[0]) for key, v in means.items()})
                    if loop.evaluate is not None and loop.eval_every_epochs and \
                            ((epoch + 1) % loop.eval_every_epochs == 0 or step >= stop):
                        last_eval = loop.evaluate(state)
                        row.update({f"test_{key}": v for key, v in last_eval[0].items()
                                    if isinstance(v, (int, float))})
                    if loop.learning_rate is not None:
                        row["lr"] = float(loop.learning_rate(state))
                    row["images_per_sec"] = epoch_sums.n * loop.batch_size / max(
                        time.time() - epoch_sums.t0, 1e-9)
                    if loop.log is not None:
                        loop.log.append(row)
                    if bar is not None:
                        bar.set_postfix({k_: (f"{v:.4f}" if isinstance(v, float) else v)
                                         for k_, v in row.items()
                                         if k_.startswith(("train_loss", "test_"))})
                    epoch_sums = _Epoch()
                    if step < stop and _plateau(loop, step):
                        if loop.checkpoints is not None:
                            loop.checkpoints.save(step, state)
                        return Result(state, step, True, diverged, time.time() - t0, last_eval,
                                      step // spe)
    finally:
        if loop.checkpoints is not None:
            loop.checkpoints.wait()
        if bar is not None:
            bar.close()
    return Result(state, step, step >= loop.total_steps, diverged, time.time() - t0, last_eval)


def _plateau(loop: Loop, step: int) -> bool:
    """Whether the run, at the end of an epoch at ``step``, has reached its plateau."""
    if loop.plateau is None or step % loop.steps_per_epoch or step == 0:
        return False
    rows = [r for r in loop.log.rows() if int(r.get("epoch", 0)) <= step // loop.steps_per_epoch]
    return loop.plateau.reached(rows)


def _name(signum: int) -> str:
    import signal

    return signal.Signals(signum).name


def _check(loop: Loop, losses: np.ndarray, diverged: np.ndarray, where: str,
           last_good: int | None) -> None:
    bad = ~np.isfinite(losses)
    if not bad.any():
        return
    if loop.divergence == "raise":
        value = losses[bad][0]
        raise errors.Diverged(f"loss became {value} {where}; stopped. " + _kept(loop, last_good))
    diverged |= bad
