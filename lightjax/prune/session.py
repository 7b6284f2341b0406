"""A trained run opened for pruning: masked model, channel groups, evaluation, fine-tuning.

``PruningSession.open(workdir)`` loads the run's config and latest checkpoint (written by
``lightjax train``), derives the channel groups and installs all-ones masks. Methods prune (by a
criterion and ranking), evaluate, re-estimate BN statistics, fine-tune with masked updates and
compact; :func:`save_compact` writes the compact model as an ordinary run directory whose config
carries the new ``widths``, so ``lightjax eval --workdir OUT`` reloads it without any mask.
"""
from __future__ import annotations

import copy
import dataclasses
import json
import math
import os
from typing import Any, Callable, Mapping, Sequence

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from lightjax import cost
from lightjax.prune import compact as compact_lib
from lightjax.prune import groups as groups_lib
from lightjax.prune import masking, optim, ranking
from lightjax.train import checkpoint, optimizer
from lightjax.train import run as run_lib
from lightjax.train import step as step_lib
from lightjax.errors import ValidationError


class Diverged(RuntimeError):
    """Fine-tuning produced a NaN/Inf loss."""


@dataclasses.dataclass
class PruningSession:
    """Mutable pruning state around one trained run.

    Attributes:
      cfg: the run's config.
      setup: data, model, shardings of the run (:class:`lightjax.train.run._Setup`).
      groups: the model's channel groups.
      model: the masked model.
      state: train state; ``state.masks`` are the current group masks.
    """

    cfg: ml_collections.ConfigDict
    setup: Any
    groups: groups_lib.ChannelGroups
    model: Any
    state: step_lib.TrainState
    _eval_fn: Callable | None = None
    _train: tuple | None = None
    _bn_fn: Callable | None = None

    @classmethod
    def open(cls, workdir: str, skip: Sequence[str] = (), skip_first: bool = True,
             split_check: str | None = None) -> "PruningSession":
        cfg, setup, state = run_lib.load_run(workdir)
        if not hasattr(setup.model, "prunable_layers"):
            raise ValidationError(f"{type(setup.model).__name__} lists no prunable layers")
        channels = setup.dataset.image_shape[-1]
        groups = groups_lib.derive(setup.model, (1, 8, 8, channels), skip=skip,
                                   skip_first=skip_first)
        if not groups.prunable:
            raise ValidationError(f"{type(setup.model).__name__}: no channel group can be pruned:\n"
                             + groups.describe())
        state = state.replace(masks=jax.tree.map(jnp.asarray, groups.ones()))
        return cls(cfg, setup, groups, masking.masked(setup.model), state)

    # --- masks ------------------------------------------------------------------------------
    @property
    def masks(self) -> dict[str, np.ndarray]:
        return {k: np.asarray(v) for k, v in self.state.masks.items()}

    def set_masks(self, group_masks: Mapping[str, Any]) -> None:
        """Install ``group_masks`` (validated) and zero the pruned parameters."""
        masking.check(self.groups, group_masks)
        gm = {k: jnp.asarray(v, jnp.float32) for k, v in group_masks.items()}
        pm = masking.param_masks(self.groups, gm, self.state.params)
        params = jax.tree.map(lambda p, m: p * m.astype(p.dtype), self.state.params, pm)
        self.state = self.state.replace(params=params, masks=gm)

    def scores(self, criterion: str = "l1") -> dict[str, np.ndarray]:
        variables = {"params": self.state.params, "batch_stats": self.state.batch_stats}
        return ranking.scores(self.groups, variables, criterion)

    def prune(self, ratio: float | Mapping[str, float], criterion: str = "l1",
              ranking_mode: str = "local", round_to: int = 1,
              max_ratio: float | Mapping[str, float] = 0.9) -> dict[str, np.ndarray]:
        """Prune (on top of the current masks) and install the result; returns the masks."""
        new = ranking.select(self.groups, self.masks, self.scores(criterion), ratio,
                             ranking_mode, round_to, max_ratio)
        self.set_masks(new)
        return new

    # --- evaluation ---------------------------------------------------------------------------
    def evaluate(self, split: str = "test") -> dict[str, float]:
        if self._eval_fn is None:
            self._eval_fn = jax.jit(step_lib.make_eval_step(
                self.model, self.setup.dataset.num_classes, self.groups))
        return run_lib.evaluate_state(self.setup, self.state, split, self._eval_fn)

    def cost(self) -> cost.CostReport:
        """Params/MACs of the compact model the current masks describe."""
        small = self.setup.model.clone(widths=compact_lib.compact_widths(
            self.setup.model, self.groups, self.masks))
        return cost.count(small, self.setup.input_shape)

    def reestimate_bn(self, batches: int = 10, seed: int = 0) -> None:
        """Replace BN running statistics by the average of ``batches`` training batches' statistics
        (no augmentation), as recommended after pruning."""
        if batches <= 0:
            return
        if self._bn_fn is None:
            factory = self.model.layers
            model = self.model.clone(layers=dataclasses.replace(factory, bn_momentum=0.0))
            groups = self.groups

            @jax.jit
            def stats(state, images):
                variables = {"params": state.params, "batch_stats": state.batch_stats,
                             "masks": masking.layer_masks(groups, state.masks)}
                _, upd = model.apply(variables, images, train=True, mutable=["batch_stats"])
                return upd["batch_stats"]

            self._bn_fn = stats
        stats = self._bn_fn
        total, n = None, 0
        for local in self.setup.dataset.batches("train", self.setup.batch_size, seed=seed,
                                                epoch=0, augment=False):
            s = stats(self.state, self.setup.global_batch(local)["image"])
            total = s if total is None else jax.tree.map(jnp.add, total, s)
            n += 1
            if n >= batches:
                break
        if total is not None:
            self.state = self.state.replace(batch_stats=jax.tree.map(lambda t: t / n, total))

    # --- fine-tuning --------------------------------------------------------------------------
    def finetune(self, epochs: float, lr_scale: float = 0.1, seed: int = 0,
                 on_step: Callable[["PruningSession", int], None] | None = None,
                 progress: bool = False) -> dict[str, float]:
        """Train with masked updates for ``epochs`` (fractions allowed), starting at ``lr_scale``
        times the run's learning rate, cosine-decayed to 0. ``on_step(session, step)`` runs after
        every step (gradual pruning updates masks there). Returns the mean train loss/top-1."""
        spe = self.setup.steps_per_epoch
        steps = int(round(epochs * spe))
        if steps <= 0:
            return {"steps": 0}
        tx, train_fn = self._trainer()
        lr = optax.cosine_decay_schedule(float(self.cfg.train.lr) * lr_scale, steps)
        state = self.state.replace(opt_state=tx.init(self.state.params))
        done, loss_sum, top1_sum, epoch = 0, 0.0, 0.0, 0
        bar = run_lib._progress(progress, steps, 0, self.setup.batch_size)
        while done < steps:
            for local in self.setup.dataset.batches("train", self.setup.batch_size, seed=seed,
                                                    epoch=epoch):
                state = state.replace(opt_state=optimizer.with_lr(state.opt_state, lr(done)))
                state, metrics = train_fn(state, self.setup.global_batch(local))
                loss = float(metrics["loss"])
                if not math.isfinite(loss):
                    raise Diverged(f"fine-tuning loss became {loss} at step {done + 1}")
                loss_sum, top1_sum, done = loss_sum + loss, top1_sum + float(metrics["top1"]), \
                    done + 1
                if bar is not None:
                    bar.update(1)
                if on_step is not None:
                    self.state = state
                    on_step(self, done)
                    state = self.state
                if done >= steps:
                    break
            epoch += 1
        if bar is not None:
            bar.close()
        self.state = state
        return {"steps": done, "train_loss": loss_sum / done, "train_top1": top1_sum / done}

    def _trainer(self):
        """The masked optimizer and jitted train step, built once per session (the learning
        rate lives in the optimizer state)."""
        if self._train is None:
            t = self.cfg.train
            tx = optim.masked_updates(optimizer.from_config(
                t, self.setup.steps_per_epoch, self.setup.cost, learning_rate=float(t.lr)))
            train_fn = jax.jit(step_lib.make_train_step(
                self.model, tx, self.setup.dataset.num_classes,
                float(t.get("label_smoothing", 0.0)), self.groups))
            self._train = (tx, train_fn)
        return self._train

    # --- compaction ---------------------------------------------------------------------------
    def compact(self) -> tuple[Any, dict[str, Any]]:
        variables = {"params": self.state.params, "batch_stats": self.state.batch_stats}
        return compact_lib.compact(self.setup.model, variables, self.groups, self.masks,
                                   self.setup.input_shape)


def save_compact(session: PruningSession, out: str, summary: Mapping[str, Any],
                 finetune_epochs: int) -> dict[str, Any]:
    """Write the compact model as a run directory ``out``: ``config.json`` (with ``widths``),
    an orbax checkpoint, ``summary.json`` and ``prune.json``. ``out`` must not exist or be
    empty."""
    if os.path.exists(out) and (not os.path.isdir(out) or os.listdir(out)):
        raise ValidationError(f"{out} already exists and is not empty; choose a new --out directory")
    small, variables = session.compact()
    cfg = copy.deepcopy(session.cfg)
    cfg.model.widths = tuple(int(w) for w in small.widths)
    cfg.train.epochs = max(1, int(finetune_epochs))
    setup = run_lib._Setup(cfg)
    state = setup.init_state()
    state = state.replace(params=variables["params"],
                          batch_stats=variables.get("batch_stats", {}),
                          opt_state=setup.tx.init(variables["params"]),
                          step=jnp.asarray(setup.total_steps, jnp.int32))
    run_lib._prepare_workdir(cfg, out)
    ckpt = checkpoint.Checkpoints(out, keep=1)
    ckpt.save(setup.total_steps, jax.device_put(state, setup.replicated))
    ckpt.wait()
    ckpt.close()
    test = run_lib.evaluate_state(setup, jax.device_put(state, setup.replicated), "test")
    result = {"top1": test["top1"], "top5": test["top5"], "loss": test["loss"],
              "params": setup.cost.params, "macs": setup.cost.macs,
              "steps": setup.total_steps, "finished": True}
    with open(os.path.join(out, "summary.json"), "w") as f:
        json.dump(result, f, indent=2)
    with open(os.path.join(out, "prune.json"), "w") as f:
        json.dump({**summary, "compact": result, "widths": list(cfg.model.widths)}, f, indent=2)
    return result
