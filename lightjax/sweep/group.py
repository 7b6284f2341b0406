"""Train one group of sweep members together: one compiled step, ``jax.vmap`` over members.

The stacked train state has a leading member axis on every leaf: parameters, BN statistics
(per member), optimizer state, RNG key. Each member's learning rate is ``lr_m * shape(step)``,
where ``shape`` is the config's schedule at lr = 1, injected into the optimizer state every step
(``optax.inject_hyperparams``), so one program serves every learning rate. With different seeds
each member also has its own data order (as it would alone); members with one seed share the
batches. A member whose loss becomes NaN/Inf is marked ``diverged``; the others are unaffected
(vmapped members never mix). The group checkpoints its stacked state every epoch (orbax) and
resumes from it.
"""
from __future__ import annotations

import math
import time
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from lightjax.train import checkpoint, optimizer
from lightjax.train import run as run_lib
from lightjax.train import step as step_lib


class GroupTrainer:
    """Setup shared by a group's members (built from the first member's config)."""

    def __init__(self, cfgs: Sequence[ml_collections.ConfigDict]):
        self.cfgs = list(cfgs)
        self.setup = run_lib._Setup(self.cfgs[0])
        t = self.cfgs[0].train
        self.seeds = np.array([int(c.train.seed) for c in self.cfgs])
        self.lrs = np.array([float(c.train.lr) for c in self.cfgs], np.float32)
        unit = ml_collections.ConfigDict(t.to_dict())
        unit.lr = 1.0
        self.shape = optimizer.schedule(unit, self.setup.steps_per_epoch)
        self.tx = optimizer.from_config(t, self.setup.steps_per_epoch, self.setup.cost,
                                        learning_rate=1.0)
        self.shared_data = len(set(self.seeds.tolist())) == 1
        base = step_lib.make_train_step(self.setup.model, self.tx,
                                        self.setup.dataset.num_classes,
                                        float(t.get("label_smoothing", 0.0)))

        def member_step(state, lr, batch, factor):
            state = state.replace(opt_state=optimizer.with_lr(state.opt_state, lr * factor))
            return base(state, batch)

        self.train_fn = jax.jit(jax.vmap(member_step,
                                         in_axes=(0, 0, None if self.shared_data else 0, None)))
        evaluate = step_lib.make_eval_step(self.setup.model, self.setup.dataset.num_classes)
        self.eval_fn = jax.jit(jax.vmap(evaluate, in_axes=(0, None)))

    @property
    def size(self) -> int:
        return len(self.cfgs)

    def init_state(self) -> step_lib.TrainState:
        model, tx, shape = self.setup.model, self.tx, self.setup.input_shape

        @jax.jit
        def init(seeds):
            return jax.vmap(lambda s: step_lib.init_state(model, tx, s, shape))(seeds)

        return init(jnp.asarray(self.seeds))

    def _batches(self, epoch: int, start: int):
        ds, b = self.setup.dataset, self.setup.batch_size
        if self.shared_data:
            for local in ds.batches("train", b, seed=int(self.seeds[0]), epoch=epoch,
                                    start_batch=start):
                yield self.setup.global_batch(local)
            return
        iters = [ds.batches("train", b, seed=int(s), epoch=epoch, start_batch=start)
                 for s in self.seeds]
        for parts in zip(*iters):
            yield {k: jnp.stack([jnp.asarray(p[k]) for p in parts]) for k in parts[0]}

    def evaluate(self, state: step_lib.TrainState, split: str = "test") -> list[dict[str, float]]:
        totals = None
        for batch in self.setup.eval_batches(split):
            sums = self.eval_fn(state, batch)
            totals = sums if totals is None else jax.tree.map(jnp.add, totals, sums)
        totals = jax.device_get(totals)
        out = []
        for m in range(self.size):
            count = float(totals["count"][m])
            out.append({k: float(totals[k][m]) / count for k in ("loss", "top1", "top5")})
        return out

    def train(self, workdir: str, on_step: Callable[[int], None] | None = None,
              max_steps: int | None = None) -> dict[str, Any]:
        """Train (or resume) in ``workdir``; returns per-member metrics, status and seconds."""
        ckpt = checkpoint.Checkpoints(workdir, keep=1)
        state = self.init_state()
        start = ckpt.latest_step()
        if start is not None:
            state = ckpt.restore(state, start)
        spe, total = self.setup.steps_per_epoch, self.setup.total_steps
        stop = total if max_steps is None else min(total, max_steps)
        lrs = jnp.asarray(self.lrs)
        diverged = np.zeros(self.size, bool)
        t0 = time.time()
        step = int(np.asarray(state.step)[0])
        try:
            while step < stop:
                epoch, offset = divmod(step, spe)
                losses = []
                for batch in self._batches(epoch, offset):
                    if step >= stop:
                        break
                    state, metrics = self.train_fn(state, lrs, batch,
                                                   jnp.float32(self.shape(step)))
                    losses.append(metrics["loss"])
                    step += 1
                    if on_step is not None:
                        on_step(step)
                if losses:
                    finite = np.isfinite(np.asarray(jnp.stack(losses))).all(axis=0)
                    diverged |= ~finite
                if step % spe == 0 or step >= stop:
                    ckpt.save(step, state)
        finally:
            ckpt.wait()
            ckpt.close()
        seconds = time.time() - t0
        if step < total:
            return {"finished": False, "steps": step, "seconds": seconds}
        metrics = self.evaluate(state)
        for m, row in enumerate(metrics):
            if diverged[m] or not math.isfinite(row["loss"]):
                row["status"] = "diverged"
            else:
                row["status"] = "finished"
        return {"finished": True, "steps": step, "seconds": seconds, "members": metrics,
                "state": state}
