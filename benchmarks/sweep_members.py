"""Vmapped sweep members vs sequential runs: aggregate training throughput on this machine.

K members of one group (MobileNetV1 alpha 0.25, CIFAR stem, 32x32 digits batches of 64, SGD; members
differ in learning rate, so they share the batches) train in one compiled ``jax.vmap`` step
(:class:`lightjax.sweep.group.GroupTrainer`). Sequential = K times the K = 1 step. Reported:
member-steps per second and members/hour for a 660-step run (the digits default), and the ratio
vmapped / sequential (> 1: vmapping pays).

    python benchmarks/sweep_members.py --members 1 2 4 8 --steps 20
"""
from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import timing  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--members", type=int, nargs="+", default=[1, 2, 4, 8])
    p.add_argument("--steps", type=int, default=20, help="timed steps (median reported)")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--config", default="digits")
    args = p.parse_args(argv)

    import jax
    import jax.numpy as jnp

    from lightjax.sweep import Sweep, product
    from lightjax.sweep.group import GroupTrainer

    print("\n".join(timing.machine_lines()))
    rows, single = [], None
    for k in args.members:
        sweep = Sweep(args.config, product({"train.lr": [0.1 * (1 + i / 10) for i in range(k)]}))
        trainer = GroupTrainer(sweep.configs())
        state = trainer.init_state()
        batch = next(trainer._batches(0, 0))
        lrs = jnp.asarray(trainer.lrs)
        holder = [state]

        def step():
            holder[0], metrics = trainer.train_fn(holder[0], lrs, batch, jnp.float32(1.0))
            return metrics["loss"]

        t = timing.time_calls(step, args.steps, args.warmup, jax.block_until_ready)
        ms = t.median_ms
        if k == 1:
            single = ms
        seq = (single or ms) * k
        total_steps = trainer.setup.total_steps
        rows.append((k, f"{ms:.1f}", f"{seq:.1f}", f"{1e3 * k / ms:.1f}",
                     f"{3600e3 * k / (ms * total_steps):.1f}",
                     f"{3600e3 * k / (seq * total_steps):.1f}", f"{seq / ms:.2f}"))
    print(timing.load_line("end"))
    print(timing.format_table(("K", "vmapped step ms", "sequential ms (K x K=1)",
                               "member-steps/s", "members/hour vmapped",
                               "members/hour sequential", "vmapped / sequential"), rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
