"""Vmapped sweep members vs sequential runs: aggregate training throughput on this machine.

K members of one group (MobileNetV1 alpha 0.25, CIFAR stem, 32x32 digits batches of 64, SGD; members
differ in learning rate, so they share the batches) train in one compiled ``jax.vmap`` step
(:class:`lightjax.sweep.group.GroupTrainer`). Sequential = K times the K = 1 step. Reported:
member-steps per second and members/hour for a 660-step run (the digits default), the ratio
vmapped / sequential (> 1: vmapping pays), and vmapped against the PyTorch peer training the same
model one member after another (channels_last, SGD Nesterov, same batch, same machine and run).

    python benchmarks/sweep_members.py --members 1 2 4 8 --steps 20
"""
from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402
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
        hyper = {k: jnp.asarray(v) for k, v in trainer.hyper.items()}
        holder = [state]

        def step():
            holder[0], metrics = trainer.train_fn(holder[0], hyper, batch, jnp.float32(1.0))
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
    torch_ms = _torch_step_ms(trainer, np.asarray(batch["image"]), np.asarray(batch["label"]),
                              args.steps, args.warmup)
    torch_rate = 3600e3 / (torch_ms * trainer.setup.total_steps)
    rows = [(*r, f"{float(r[4]) / torch_rate:.2f}") for r in rows]
    print(timing.load_line("end"))
    print(f"PyTorch peer (channels_last, SGD momentum, {timing.match_torch_threads()} threads): "
          f"{torch_ms:.1f} ms/step = {torch_rate:.1f} members/hour sequential")
    print(timing.format_table(("K", "vmapped step ms", "sequential ms (K x K=1)",
                               "member-steps/s", "members/hour vmapped",
                               "members/hour sequential", "vmapped / sequential",
                               "vmapped / PyTorch sequential"), rows))
    return 0


def _torch_step_ms(trainer, images: np.ndarray, labels: np.ndarray, steps: int,
                   warmup: int) -> float:
    """Median ms of one PyTorch train step of the same MobileNetV1 on the same batch."""
    import torch
    import torch.nn.functional as F

    import torch_models

    timing.match_torch_threads()
    model_cfg = trainer.cfgs[0].model
    model = torch_models.MobileNetV1(trainer.setup.dataset.num_classes, model_cfg.alpha,
                                     model_cfg.stem_stride, images.shape[-1])
    model = model.to(memory_format=torch.channels_last).train()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True)
    x = torch.from_numpy(images.transpose(0, 3, 1, 2).copy()).contiguous(
        memory_format=torch.channels_last)
    y = torch.from_numpy(labels.copy()).long()

    def step():
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss

    return timing.time_calls(step, steps, warmup, lambda v: v.item()).median_ms


if __name__ == "__main__":
    sys.exit(main())
