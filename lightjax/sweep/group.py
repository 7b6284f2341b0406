"""Train one group of sweep members together: the training loop with a vmapped step.

A group is the one training loop (:mod:`lightjax.train.loop`) run with ``members = K``: the step is
the ordinary train step (:func:`lightjax.train.step.make_train_step`) under ``jax.vmap``, and the
stacked train state has a leading member axis on every leaf: parameters, BN statistics (per
member), optimizer state, RNG key and compression state. Per-member traced values
(:data:`lightjax.sweep.plan.TRACED`):

- ``train.seed``: parameter init, dropout RNG and data order (members with one seed share batches);
- ``train.lr``: each member's learning rate is ``lr_m * shape(step)``, where ``shape`` is the
  config's schedule at lr = 1, injected into the optimizer state every step
  (``optax.inject_hyperparams``), so one program serves every learning rate;
- ``train.weight_decay``: injected the same way;
- ``train.activation_init``: start value of trainable activation parameters (RReLU slopes, swish
  beta);
- compression settings (``prune.*``): each plug-in keeps per-member state (e.g. masks) and
  per-member schedules run on the host between steps (:mod:`lightjax.train.compression`).

Members and batches are laid out on a ``('sweep', 'data')`` mesh (:mod:`lightjax.sweep.mesh`). A
member whose loss becomes NaN/Inf is marked ``diverged``; the others are unaffected (vmapped
members never mix). The group checkpoints its stacked state every epoch (orbax), on
SIGINT/SIGTERM, and resumes from it.
"""
from __future__ import annotations

import math
from typing import Any, Iterator, Sequence

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec as P

from lightjax.errors import ValidationError
from lightjax.sweep import mesh as mesh_lib
from lightjax.train import checkpoint, optimizer
from lightjax.train import experiment as experiment_lib
from lightjax.train import loop as loop_lib
from lightjax.train import step as step_lib


def activation_inits(cfgs: Sequence[ml_collections.ConfigDict]) -> np.ndarray | None:
    """The members' ``train.activation_init`` values (``None`` when no member sets one)."""
    values = [experiment_lib.activation_init(c) for c in cfgs]
    if all(v is None for v in values):
        return None
    if any(v is None for v in values):
        raise ValidationError("train.activation_init is set for some members of a group and "
                              "not for others; give every member a value (or none)")
    return np.asarray(values, np.float32)


class GroupAccess:
    """:class:`lightjax.train.compression.StateAccess` over a group's stacked state."""

    def __init__(self, trainer: "GroupTrainer"):
        self.trainer = trainer
        self.members = trainer.size
        self._write = None

    def read(self, tree: Any) -> Any:
        return self.trainer.host(tree)

    def write(self, state: step_lib.TrainState, name: str, value: Any) -> step_lib.TrainState:
        t = self.trainer
        if self._write is None:
            plugins = t.plugins

            def one(state, extra):
                state = state.replace(compression=dict(state.compression, **extra))
                for p in plugins:
                    state = p.on_write(state)
                return state

            self._write = jax.jit(jax.vmap(one), out_shardings=t.state_sharding,
                                  donate_argnums=0)
        value = jax.tree.map(lambda v: mesh_lib.per_member(t.mesh, v), value)
        return self._write(state, {name: value})


class GroupTrainer:
    """Setup shared by a group's members (the first member's config; its plug-ins from all)."""

    def __init__(self, cfgs: Sequence[ml_collections.ConfigDict],
                 devices: Sequence[jax.Device] | None = None):
        self.cfgs = list(cfgs)
        exp = experiment_lib.Experiment(self.cfgs[0], member_configs=self.cfgs,
                                        learning_rate=1.0, traced_weight_decay=True)
        self.experiment = exp
        self.plugins = exp.plugins
        self.model, self.tx, self.task = exp.model, exp.tx, exp.task
        t = self.cfgs[0].train
        self.seeds = np.array([int(c.train.seed) for c in self.cfgs])
        self.hyper = {
            "learning_rate": np.array([float(c.train.lr) for c in self.cfgs], np.float32),
            "weight_decay": np.array([float(c.train.weight_decay) for c in self.cfgs],
                                     np.float32)}
        self.activation_inits = activation_inits(self.cfgs)
        unit = ml_collections.ConfigDict(t.to_dict())
        unit.lr = 1.0
        self.shape = optimizer.schedule(unit, exp.steps_per_epoch)
        self.shared_data = len(set(self.seeds.tolist())) == 1
        self.mesh = mesh_lib.member_mesh(self.size, exp.batch_size, devices)
        self.data_sharding = NamedSharding(
            self.mesh, P("data") if self.shared_data else P("sweep", "data"))
        self.eval_sharding = NamedSharding(self.mesh, P("data"))
        self.replicated = NamedSharding(self.mesh, P())
        # one compiled copy of any member-stacked tree onto every device, for host reads
        self._replicate = jax.jit(lambda tree: tree, out_shardings=self.replicated)
        base = step_lib.make_train_step(self.model, self.tx, self.task, self.plugins,
                                        exp.ema_decay)

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
        evaluate = step_lib.make_eval_step(self.model, self.task, self.plugins)
        self.eval_fn = jax.jit(jax.vmap(evaluate, in_axes=(0, None)),
                               out_shardings=self.replicated)
        self.access = GroupAccess(self)

    @property
    def size(self) -> int:
        return len(self.cfgs)

    @property
    def steps_per_epoch(self) -> int:
        return self.experiment.steps_per_epoch

    # --- state --------------------------------------------------------------------------------
    def _inits_or_zeros(self) -> jax.Array:
        values = self.activation_inits
        return jnp.zeros(self.size, jnp.float32) if values is None else jnp.asarray(values)

    def _init(self, seeds: jax.Array, activation_inits: jax.Array) -> step_lib.TrainState:
        model, tx, shape = self.model, self.tx, self.experiment.input_shape
        use_init = self.activation_inits is not None
        plugins, ema = self.plugins, self.experiment.ema_decay is not None

        def one(seed, act):
            return step_lib.init_state(model, tx, seed, shape, act if use_init else None, plugins,
                                       ema)

        return jax.vmap(one)(seeds, activation_inits)

    def init_state(self) -> step_lib.TrainState:
        """The stacked initial state, sharded over the mesh's ``'sweep'`` axis."""
        init = jax.jit(self._init, out_shardings=self.state_sharding,
                       compiler_options=step_lib.init_compiler_options())
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
        ds, b = self.experiment.dataset, self.experiment.batch_size
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
        size = int(self.cfgs[0].train.get("eval_batch_size", self.experiment.batch_size))
        size = max(size - size % data, data)
        index, count = mesh_lib.row_partition(
            mesh_lib.local_block(self.eval_sharding, (size,))[0], size)
        for local in self.experiment.dataset.batches(split, size, shuffle=False, augment=False,
                                                     drop_remainder=False, process_index=index,
                                                     process_count=count):
            yield self._global(local, self.eval_sharding, (size,))

    # --- train / evaluate ---------------------------------------------------------------------
    def evaluate(self, state: step_lib.TrainState, split: str = "test") -> list[dict[str, Any]]:
        """The task's metrics of every member over the whole ``split``."""
        evaluators = [self.task.evaluator() for _ in range(self.size)]
        for batch in self._eval_batches(split):
            outputs = jax.device_get(self.eval_fn(state, batch))
            for m, ev in enumerate(evaluators):
                ev.update({k: v[m] for k, v in outputs.items()})
        return [ev.result() for ev in evaluators]

    def train(self, workdir: str, max_steps: int | None = None, progress: bool = False,
              label: str = "") -> dict[str, Any]:
        """Train (or resume) in ``workdir`` through the training loop; returns per-member
        metrics, status and seconds."""
        exp = self.experiment
        ckpt = checkpoint.Checkpoints(workdir, keep=1)
        try:
            state = self.init_state()
            if ckpt.latest_step() is not None:
                state = ckpt.restore(state)
            start = int(self.host(state.step)[0])
            hyper = {k: mesh_lib.per_member(self.mesh, v) for k, v in self.hyper.items()}
            loop = loop_lib.Loop(
                steps_per_epoch=exp.steps_per_epoch, total_steps=exp.total_steps,
                step=lambda s, b, i: self.train_fn(s, hyper, b, jnp.float32(self.shape(i))),
                batches=self._batches, members=self.size, checkpoints=ckpt,
                before_step=[lambda s, i, p=p: p.before_step(self.access, s, i)
                             for p in self.plugins],
                divergence="mark", check_every_steps=max(1, exp.steps_per_epoch),
                progress=progress, batch_size=exp.batch_size,
                label=label or f"{self.size} members",
                resume_hint="run the same `lightjax sweep` command again to resume")
            result = loop_lib.run(loop, state, start, max_steps)
        finally:
            ckpt.close()
        if not result.finished:
            return {"finished": False, "steps": result.step, "seconds": result.seconds}
        metrics = self.evaluate(result.state)
        extras = {p.name: self.host(result.state.compression[p.name]) for p in self.plugins}
        for m, row in enumerate(metrics):
            diverged = result.diverged[m] or not math.isfinite(row.get("loss", 0.0))
            row["status"] = "diverged" if diverged else "finished"
            row["metric"] = self.task.primary
            for p in self.plugins:
                row.update(p.summary(extras[p.name], m))
        return {"finished": True, "steps": result.step, "seconds": result.seconds,
                "members": metrics, "state": result.state}
