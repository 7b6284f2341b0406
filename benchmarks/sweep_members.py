"""Vmapped sweep members vs sequential runs: aggregate training throughput on this machine.

K members of one group (MobileNetV1 alpha 0.25, CIFAR stem, 32x32 digits batches of 64, SGD; members
differ in learning rate, so they share the batches) train in one compiled ``jax.vmap`` step
(:class:`lightjax.sweep.group.GroupTrainer`). Sequential = K times the K = 1 step. Reported:
member-steps per second and members/hour for a 660-step run (the digits default), the ratio
vmapped / sequential (> 1: vmapping pays), and vmapped against the PyTorch peer training the same
model one member after another (channels_last, SGD Nesterov, same batch, same machine and run).

``--depthwise-impl`` times each listed depthwise implementation (``auto`` = lightjax's choice on
this backend; it reuses the rows of the implementation it resolves to when that one is listed
too). JAX uses its default backend (``JAX_PLATFORMS`` chooses); the PyTorch peer runs on
``--torch-device`` (``none``: no peer, torch not needed).

    python benchmarks/sweep_members.py --members 1 2 4 8 --steps 20
    python benchmarks/sweep_members.py --quick --torch-device none     # smoke run
    python benchmarks/sweep_members.py --members 1 8 --depthwise-impl xla shifted auto \\
        --torch-device cuda                                             # on a GPU
"""
from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402
import timing  # noqa: E402

IMPLS = ("auto", "xla", "shifted")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--members", type=int, nargs="+", default=[1, 2, 4, 8],
                   help="group sizes K (K = 1 is always timed: the sequential reference)")
    p.add_argument("--steps", type=int, default=20, help="timed steps (median reported)")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--config", default="digits")
    p.add_argument("--depthwise-impl", nargs="+", default=["auto"], choices=IMPLS,
                   help="depthwise implementations to time (default: auto)")
    p.add_argument("--torch-device", default="cpu", choices=("cpu", "cuda", "auto", "none"),
                   help="where the PyTorch peer runs (none: no peer)")
    p.add_argument("--quick", action="store_true",
                   help="smoke run: K = 1 and 2, 2 steps, 1 warm-up step, digits:tiny")
    args = p.parse_args(argv)
    if args.quick:
        args.members, args.steps, args.warmup, args.config = [1, 2], 2, 1, "digits:tiny"
    args.members = sorted(set(args.members) | {1})
    args.torch_device = timing.torch_device_choice(args.torch_device)
    return args


def use_depthwise(impl: str) -> str:
    """Make every model built from here on use ``impl`` for its (``'auto'``) depthwise convs;
    returns the concrete implementation."""
    from lightjax.layers import depthwise as dw

    original = getattr(dw, "_benchmark_original_resolve", dw.resolve)
    dw._benchmark_original_resolve = original
    concrete = original(impl)
    dw.resolve = lambda requested: concrete if dw.check(requested) == "auto" else requested
    return concrete


def time_group(config: str, k: int, steps: int, warmup: int):
    """(median ms of one vmapped step of K members, the trainer, one batch)."""
    import jax
    import jax.numpy as jnp

    from lightjax.sweep import Sweep, product
    from lightjax.sweep.group import GroupTrainer

    sweep = Sweep(config, product({"train.lr": [0.1 * (1 + i / 10) for i in range(k)]}))
    trainer = GroupTrainer(sweep.configs())
    state = trainer.init_state()
    batch = next(trainer._batches(0, 0))
    hyper = {name: jnp.asarray(v) for name, v in trainer.hyper.items()}
    holder = [state]

    def step():
        holder[0], metrics = trainer.train_fn(holder[0], hyper, batch, jnp.float32(1.0))
        return metrics["loss"]

    t = timing.time_calls(step, steps, warmup, jax.block_until_ready)
    return t.median_ms, trainer, batch


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import jax

    with_torch = args.torch_device != "none"
    if with_torch:
        timing.match_torch_threads()
    print(f"# vmapped sweep members vs sequential, {jax.default_backend()} backend, config "
          f"{args.config}: median of {args.steps} steps after {args.warmup} warm-up steps")
    print("\n".join(timing.machine_lines()))
    rows, measured = [], {}
    trainer = batch = None
    order = sorted(dict.fromkeys(args.depthwise_impl), key=lambda i: i == "auto")
    for impl in order:
        concrete = use_depthwise(impl)
        if concrete in measured:
            continue
        times = {}
        for k in args.members:
            ms, trainer, batch = time_group(args.config, k, args.steps, args.warmup)
            times[k] = ms
            print(f"  {concrete}: K={k} {ms:.1f} ms/step", flush=True)
        measured[concrete] = (times, trainer.experiment.total_steps)
    for impl in dict.fromkeys(args.depthwise_impl):
        concrete = use_depthwise(impl)
        label = f"auto ({concrete})" if impl == "auto" else impl
        times, total_steps = measured[concrete]
        for k, ms in times.items():
            seq = times[1] * k
            rows.append([label, k, f"{ms:.1f}", f"{seq:.1f}", f"{1e3 * k / ms:.1f}",
                         f"{3600e3 * k / (ms * total_steps):.1f}",
                         f"{3600e3 * k / (seq * total_steps):.1f}", f"{seq / ms:.2f}"])
    headers = ["depthwise", "K", "vmapped step ms", "sequential ms (K x K=1)", "member-steps/s",
               "members/hour vmapped", "members/hour sequential", "vmapped / sequential"]
    if with_torch:
        torch_ms = _torch_step_ms(trainer, np.asarray(batch["image"]), np.asarray(batch["label"]),
                                  args.steps, args.warmup, args.torch_device)
        torch_rate = 3600e3 / (torch_ms * trainer.experiment.total_steps)
        rows = [r + [f"{float(r[5]) / torch_rate:.2f}"] for r in rows]
        headers.append("vmapped / PyTorch sequential")
        print(f"PyTorch peer (channels_last, SGD momentum, {args.torch_device}, "
              f"{timing.match_torch_threads()} threads): {torch_ms:.1f} ms/step = "
              f"{torch_rate:.1f} members/hour sequential")
    print(timing.load_line("end"))
    print(timing.format_table(headers, rows))
    print("\nsequential = K x the K = 1 step; vmapped / sequential > 1: one vmapped step of K "
          "members beats K single steps.")
    return 0


def _torch_step_ms(trainer, images: np.ndarray, labels: np.ndarray, steps: int,
                   warmup: int, device: str = "cpu") -> float:
    """Median ms of one PyTorch train step of the same MobileNetV1 on the same batch."""
    import torch
    import torch.nn.functional as F

    import torch_models

    timing.match_torch_threads()
    model_cfg = trainer.cfgs[0].model
    model = torch_models.MobileNetV1(trainer.experiment.dataset.num_classes, model_cfg.alpha,
                                     model_cfg.stem_stride, images.shape[-1])
    model = model.to(device=device, memory_format=torch.channels_last).train()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True)
    x = torch.from_numpy(images.transpose(0, 3, 1, 2).copy()).to(device).contiguous(
        memory_format=torch.channels_last)
    y = torch.from_numpy(labels.copy()).long().to(device)

    def step():
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss

    return timing.time_calls(step, steps, warmup, lambda v: v.item()).median_ms


if __name__ == "__main__":
    sys.exit(main())
