"""A trained run opened for pruning: masked model, channel groups, evaluation, fine-tuning.

``PruningSession.open(workdir)`` loads the run's config and latest checkpoint (written by
``lightjax train``) into an :class:`~lightjax.train.experiment.Experiment` with the pruning
plug-in (:mod:`lightjax.prune.plugin`) installed and all-ones masks. Methods prune (by a criterion
and ranking), evaluate (the task's metrics), re-estimate BN statistics, fine-tune through the one
training loop (:mod:`lightjax.train.loop`) and compact; :func:`save_compact` writes the compact
model as an ordinary run directory whose config carries the new ``widths``, so ``lightjax eval
--workdir OUT`` reloads it without any mask.
"""
from __future__ import annotations

import copy
import dataclasses
import json
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
from lightjax.prune import masking, ranking
from lightjax.prune.plugin import Pruning, Schedule, derive_groups
from lightjax.train import checkpoint, optimizer
from lightjax.train import loop as loop_lib
from lightjax.train import run as run_lib
from lightjax.train import step as step_lib
from lightjax.train import workdir as workdir_lib
from lightjax.train.experiment import Experiment

NAME = Pruning.name


@dataclasses.dataclass
class PruningSession:
    """Mutable pruning state around one trained run.

    Attributes:
      cfg: the run's config.
      experiment: data, task, masked model, optimizer (learning rate held in its state).
      plugin: the pruning plug-in (groups, schedule).
      state: train state; ``state.compression['prune']`` are the current group masks.
    """

    cfg: ml_collections.ConfigDict
    experiment: Experiment
    plugin: Pruning
    state: step_lib.TrainState
    _bn_fn: Callable | None = None

    @classmethod
    def open(cls, workdir: str, skip: Sequence[str] = (), skip_first: bool = True
             ) -> "PruningSession":
        cfg = run_lib.read_config(workdir)
        built: list[Pruning] = []

        def plugins(exp: Experiment) -> list[Pruning]:
            groups = derive_groups(exp.base_model, exp.dataset.image_shape[-1], skip, skip_first)
            built.append(Pruning(groups, exp.base_model, [Schedule()], None, exp.input_shape))
            return built

        exp = Experiment(cfg, plugins=plugins, learning_rate=float(cfg.train.lr))
        like = exp.init_state()
        # the checkpoint holds the run's own optimizer state and no masks
        trained_tx = optimizer.from_config(cfg.train, exp.steps_per_epoch, exp.cost)
        abstract = like.replace(compression=None,
                                opt_state=jax.eval_shape(trained_tx.init, like.params))
        ckpt = checkpoint.Checkpoints(workdir)
        try:
            trained = ckpt.restore(abstract)
        finally:
            ckpt.close()
        # start from what the run deploys (its moving average, if it keeps one)
        params = step_lib.eval_params(trained)
        state = trained.replace(params=params, compression=like.compression,
                                opt_state=exp.tx.init(params),
                                ema=None if trained.ema is None else params)
        return cls(cfg, exp, built[0], jax.device_put(state, exp.replicated))

    @property
    def groups(self) -> groups_lib.ChannelGroups:
        return self.plugin.groups

    @property
    def task(self):
        return self.experiment.task

    # --- masks ------------------------------------------------------------------------------
    @property
    def masks(self) -> dict[str, np.ndarray]:
        return {k: np.asarray(v) for k, v in self.state.compression[NAME].items()}

    def set_masks(self, group_masks: Mapping[str, Any]) -> None:
        """Install ``group_masks`` (validated) and zero the pruned parameters."""
        masking.check(self.groups, group_masks)
        stacked = {k: np.asarray(v, np.float32)[None] for k, v in group_masks.items()}
        self.state = self.experiment.access.write(self.state, NAME, stacked)

    def scores(self, criterion: str = "l1") -> dict[str, np.ndarray]:
        variables = {"params": step_lib.eval_params(self.state),
                     "batch_stats": self.state.batch_stats}
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
        return self.experiment.evaluate(self.state, split)

    def cost(self) -> cost.CostReport:
        """Params/MACs of the compact model the current masks describe."""
        base = self.experiment.base_model
        small = base.clone(widths=compact_lib.compact_widths(base, self.groups, self.masks))
        return cost.count(small, self.experiment.input_shape)

    def reestimate_bn(self, batches: int = 10, seed: int = 0) -> None:
        """Replace BN running statistics by the average of ``batches`` training batches' statistics
        (no augmentation), as recommended after pruning."""
        if batches <= 0:
            return
        exp = self.experiment
        if self._bn_fn is None:
            model = exp.model.clone(layers=dataclasses.replace(exp.model.layers, bn_momentum=0.0))
            plugins = exp.plugins

            @jax.jit
            def stats(state, images):
                variables = step_lib.model_variables(state, state.params, plugins)
                _, upd = model.apply(variables, images, train=True, mutable=["batch_stats"])
                return upd["batch_stats"]

            self._bn_fn = stats
        total, n = None, 0
        for batch in exp.train_batches(0, seed=seed, augment=False):
            s = self._bn_fn(self.state, batch["image"])
            total = s if total is None else jax.tree.map(jnp.add, total, s)
            n += 1
            if n >= batches:
                break
        if total is not None:
            self.state = self.state.replace(batch_stats=jax.tree.map(lambda t: t / n, total))

    # --- fine-tuning --------------------------------------------------------------------------
    def finetune(self, epochs: float, lr_scale: float = 0.1, seed: int = 0,
                 schedule: Schedule | None = None, progress: bool = False) -> dict[str, Any]:
        """Train with masked updates for ``epochs`` (fractions allowed) through the training loop,
        starting at ``lr_scale`` times the run's learning rate, cosine-decayed to 0. A
        ``schedule`` (e.g. a gradual ramp) re-selects masks between steps meanwhile."""
        exp = self.experiment
        steps = int(round(epochs * exp.steps_per_epoch))
        if steps <= 0:
            return {"steps": 0}
        lr = optax.cosine_decay_schedule(float(self.cfg.train.lr) * lr_scale, steps)
        train_fn = exp.train_fn

        def step(state, batch, i):
            state = state.replace(opt_state=optimizer.with_lr(state.opt_state, lr(i)))
            return train_fn(state, batch)

        state = self.state.replace(opt_state=exp.tx.init(self.state.params))
        self.plugin.schedules = (schedule or Schedule(),)
        loop = loop_lib.Loop(
            steps_per_epoch=exp.steps_per_epoch, total_steps=steps, step=step,
            batches=lambda epoch, start: exp.train_batches(epoch, start, seed=seed),
            before_step=exp.before_step_hooks(), divergence="raise",
            check_every_steps=1, progress=progress, batch_size=exp.batch_size,
            label="fine-tuning",
            resume_hint="nothing was written; run the same command again to start over")
        try:
            result = loop_lib.run(loop, state, 0)
        finally:
            self.plugin.schedules = (Schedule(),)
        self.state = result.state
        return {"steps": result.step}

    # --- compaction ---------------------------------------------------------------------------
    def compact(self) -> tuple[Any, dict[str, Any]]:
        variables = {"params": step_lib.eval_params(self.state),
                     "batch_stats": self.state.batch_stats}
        return compact_lib.compact(self.experiment.base_model, variables, self.groups,
                                   self.masks, self.experiment.input_shape)


def save_compact(session: PruningSession, out: str, summary: Mapping[str, Any],
                 finetune_epochs: int) -> dict[str, Any]:
    """Write the compact model as a run directory ``out``: ``config.json`` (with ``widths``),
    an orbax checkpoint, ``summary.json`` and ``prune.json``. ``out`` must not exist or be
    empty."""
    workdir_lib.check_new(out)
    small, variables = session.compact()
    cfg = copy.deepcopy(session.cfg)
    cfg.model.widths = tuple(int(w) for w in small.widths)
    cfg.train.epochs = max(1, int(finetune_epochs))
    exp = Experiment(cfg, plugins=[])
    state = exp.init_state()
    state = state.replace(params=variables["params"],
                          batch_stats=variables.get("batch_stats", {}),
                          opt_state=exp.tx.init(variables["params"]),
                          step=jnp.asarray(exp.total_steps, jnp.int32),
                          ema=None if state.ema is None else variables["params"])
    state = jax.device_put(state, exp.replicated)
    run_lib.claim(cfg, out)
    ckpt = checkpoint.Checkpoints(out, keep=1)
    ckpt.save(exp.total_steps, state)
    ckpt.wait()
    ckpt.close()
    metrics = exp.evaluate(state, "test")
    result = run_lib.summary_of(exp, metrics, exp.total_steps, 0.0)
    with open(os.path.join(out, "summary.json"), "w") as f:
        json.dump(result, f, indent=2)
    with open(os.path.join(out, "prune.json"), "w") as f:
        json.dump({**summary, "compact": result, "widths": list(cfg.model.widths)}, f, indent=2)
    return result
