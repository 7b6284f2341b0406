"""Train one group of sweep members together: one compiled step, ``jax.vmap`` over members.

The stacked train state has a leading member axis on every leaf: parameters, BN statistics
(per member), optimizer state, RNG key. Per-member traced values (:data:`lightjax.sweep.plan.TRACED`):

- ``train.seed``: parameter init, dropout RNG and data order (members with one seed share batches);
- ``train.lr``: each member's learning rate is ``lr_m * shape(step)``, where ``shape`` is the
  config's schedule at lr = 1, injected into the optimizer state every step
  (``optax.inject_hyperparams``), so one program serves every learning rate;
- ``train.weight_decay``: injected the same way;
- ``train.activation_init``: start value of trainable activation parameters (RReLU slopes, swish
  beta);
- ``prune.*``: pruning masks, held per member in ``state.masks`` (:mod:`lightjax.sweep.pruning`).

Members and batches are laid out on a ``('sweep', 'data')`` mesh (:mod:`lightjax.sweep.mesh`). A
member whose loss becomes NaN/Inf is marked ``diverged``; the others are unaffected (vmapped
members never mix). The group checkpoints its stacked state every epoch (orbax) and resumes from it.
"""
from __future__ import annotations

import math
import time
from typing import Any, Callable, Iterator, Sequence

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec as P

from lightjax.prune import optim as prune_optim
from lightjax.sweep import mesh as mesh_lib
from lightjax.sweep import pruning
from lightjax.train import checkpoint, optimizer
from lightjax.train import run as run_lib
from lightjax.train import step as step_lib
from lightjax.errors import ValidationError


def activation_inits(cfgs: Sequence[ml_collections.ConfigDict]) -> np.ndarray | None:
    """The members' ``train.activation_init`` values (``None`` when no member sets one)."""
    values = [run_lib.activation_init(c) for c in cfgs]
    if all(v is None for v in values):
        return None
    if any(v is None for v in values):
        raise ValidationError("train.activation_init is set for some members of a group and not for "
                         "others; give every member a value (or none)")
    return np.asarray(values, np.float32)


class GroupTrainer:
    """Setup shared by a group's members (built from the first member's config)."""

    def __init__(self, cfgs: Sequence[ml_collections.ConfigDict],
                 devices: Sequence[jax.Device] | None = None):
        self.cfgs = list(cfgs)
        self.setup = run_lib._Setup(self.cfgs[0])
        t = self.cfgs[0].train
        self.seeds = np.array([int(c.train.seed) for c in self.cfgs])
        self.hyper = {
            "learning_rate": np.array([float(c.train.lr) for c in self.cfgs], np.float32),
            "weight_decay": np.array([float(c.train.weight_decay) for c in self.cfgs],
                                     np.float32)}
        self.activation_inits = activation_inits(self.cfgs)
        unit = ml_collections.ConfigDict(t.to_dict())
        unit.lr = 1.0
        self.shape = optimizer.schedule(unit, self.setup.steps_per_epoch)
        self.pruning = pruning.MemberPruning.build(self.cfgs, self.setup)
        groups = None if self.pruning is None else self.pruning.groups
        tx = optimizer.from_config(t, self.setup.steps_per_epoch, self.setup.cost,
                                   learning_rate=1.0, traced_weight_decay=True)
        self.tx = tx if groups is None else prune_optim.masked_updates(tx)
        self.model = self.setup.model if groups is None else self.pruning.model
        self.shared_data = len(set(self.seeds.tolist())) == 1
        self.mesh = mesh_lib.member_mesh(self.size, self.setup.batch_size, devices)
        self.data_sharding = NamedSharding(
            self.mesh, P("data") if self.shared_data else P("sweep", "data"))
        self.eval_sharding = NamedSharding(self.mesh, P("data"))
        self.replicated = NamedSharding(self.mesh, P())
        # one compiled copy of any member-stacked tree onto every device, for host reads
        self._replicate = jax.jit(lambda tree: tree, out_shardings=self.replicated)
        self._install_fn = None
        base = step_lib.make_train_step(self.model, self.tx, self.setup.dataset.num_classes,
                                        float(t.get("label_smoothing", 0.0)), groups)

        def member_step(state, hyper, batch, factor):
            values = dict(hyper, learning_rate=hyper["learning_rate"] * factor)
            state = state.replace(opt_state=optimizer.with_hyperparams(state.opt_state, **values))
            return base(state, batch)

        self.state_sharding = jax.tree.map(lambda _: NamedSharding(self.mesh, P("sweep")),
                                           jax.eval_shape(self._init, jnp.asarray(self.seeds),
                                                          self._inits_or_zeros()))
        self.train_fn = jax.jit(
            jax.vmap(member_step, in_axes=(0, 0, None if self.shared_data else 0, None)),
            out_shardings=(self.state_sharding, self.replicated), donate_argnums=0)
        evaluate = step_lib.make_eval_step(self.model, self.setup.dataset.num_classes, groups)
        self.eval_fn = jax.jit(jax.vmap(evaluate, in_axes=(0, None)),
                               out_shardings=self.replicated)

    @property
    def size(self) -> int:
        return len(self.cfgs)

    # --- state --------------------------------------------------------------------------------
    def _inits_or_zeros(self) -> jax.Array:
        values = self.activation_inits
        return jnp.zeros(self.size, jnp.float32) if values is None else jnp.asarray(values)

    def _init(self, seeds: jax.Array, activation_inits: jax.Array) -> step_lib.TrainState:
        model, tx, shape = self.setup.model, self.tx, self.setup.input_shape
        use_init = self.activation_inits is not None

        def one(seed, act):
            state = step_lib.init_state(model, tx, seed, shape, act if use_init else None)
            if self.pruning is not None:
                state = self.pruning.init_member(state, tx)
            return state

        return jax.vmap(one)(seeds, activation_inits)

    def init_state(self) -> step_lib.TrainState:
        """The stacked initial state, sharded over the mesh's ``'sweep'`` axis."""
        init = jax.jit(self._init, out_shardings=self.state_sharding)
        return init(mesh_lib.replicated(self.mesh, self.seeds),
                    mesh_lib.replicated(self.mesh, np.asarray(self._inits_or_zeros())))

    def host(self, tree: Any) -> Any:
        """A member-stacked tree (e.g. the state) as host numpy arrays, on every process."""
        return jax.device_get(self._replicate(tree))

    def member(self, state: step_lib.TrainState, m: int) -> step_lib.TrainState:
        """Member ``m``'s state as host numpy arrays (on every process)."""
        return jax.tree.map(lambda a: a[m], self.host(state))

    # --- data ---------------------------------------------------------------------------------
    def _global(self, local: dict[str, np.ndarray], sharding: NamedSharding,
                lead: tuple[int, ...]) -> dict[str, jax.Array]:
        return {k: jax.make_array_from_process_local_data(sharding, v, lead + v.shape[len(lead):])
                for k, v in local.items()}

    def _batches(self, epoch: int, start: int) -> Iterator[dict[str, jax.Array]]:
        """Train batches from batch ``start`` of ``epoch``: (B, ...) shared by every member, or
        (K, B, ...) with each member's own data order; each process loads only its part."""
        ds, b = self.setup.dataset, self.setup.batch_size
        lead = (b,) if self.shared_data else (self.size, b)
        block = mesh_lib.local_block(self.data_sharding, lead)
        index, count = mesh_lib.row_partition(block[-1], b)
        seeds = self.seeds[:1] if self.shared_data else self.seeds[block[0]]
        iters = [ds.batches("train", b, seed=int(s), epoch=epoch, start_batch=start,
                            process_index=index, process_count=count) for s in seeds]
        for parts in zip(*iters):
            local = parts[0] if self.shared_data else \
                {k: np.stack([p[k] for p in parts]) for k in parts[0]}
            yield self._global(local, self.data_sharding, lead)

    def _eval_batches(self, split: str) -> Iterator[dict[str, jax.Array]]:
        data = self.mesh.shape["data"]
        size = int(self.cfgs[0].train.get("eval_batch_size", self.setup.batch_size))
        size = max(size - size % data, data)
        index, count = mesh_lib.row_partition(
            mesh_lib.local_block(self.eval_sharding, (size,))[0], size)
        for local in self.setup.dataset.batches(split, size, shuffle=False, augment=False,
                                                drop_remainder=False, process_index=index,
                                                process_count=count):
            yield self._global(local, self.eval_sharding, (size,))

    # --- train / evaluate ---------------------------------------------------------------------
    def evaluate(self, state: step_lib.TrainState, split: str = "test") -> list[dict[str, float]]:
        totals = None
        for batch in self._eval_batches(split):
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
        hyper = {k: mesh_lib.per_member(self.mesh, v) for k, v in self.hyper.items()}
        diverged = np.zeros(self.size, bool)
        t0 = time.time()
        step = int(self.host(state.step)[0])
        try:
            while step < stop:
                epoch, offset = divmod(step, spe)
                losses = []
                for batch in self._batches(epoch, offset):
                    if step >= stop:
                        break
                    if self.pruning is not None:
                        state = self.pruning.update(self, state, step)
                    state, metrics = self.train_fn(state, hyper, batch,
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
        stacked = None if self.pruning is None else self.host(state)
        for m, row in enumerate(metrics):
            row["status"] = "diverged" if diverged[m] or not math.isfinite(row["loss"]) \
                else "finished"
            if stacked is not None:
                row.update(self.pruning.summary(jax.tree.map(lambda a: a[m], stacked)))
        return {"finished": True, "steps": step, "seconds": seconds, "members": metrics,
                "state": state}

    def _install_masks(self, state: step_lib.TrainState,
                       masks: dict[str, np.ndarray]) -> step_lib.TrainState:
        """``state`` with the stacked group ``masks`` (host, member axis first) installed and every
        member's pruned parameters zeroed."""
        if self._install_fn is None:
            zero = jax.vmap(self.pruning.zero_pruned)
            self._install_fn = jax.jit(lambda s, m: zero(s.replace(masks=m)),
                                       out_shardings=self.state_sharding, donate_argnums=0)
        return self._install_fn(state, {k: mesh_lib.per_member(self.mesh, v)
                                        for k, v in masks.items()})
