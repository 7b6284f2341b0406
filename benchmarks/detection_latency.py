"""YOLOv3-Mobile inference latency on the CPU: standard neck vs depthwise-separable neck vs the
separable neck pruned (batch 1, 416x416 and 608x608), against PyTorch eager on the same machine
in the same run.

The source (the YOLOv3-Mobile paper) reports 5.0 -> 9.6 -> 12.0 FPS on an embedded GPU for the
standard head, the separable head and the pruned separable head (1.92x and 2.4x). Pruning here is
the compact architecture PaddleSlim's published ratios give: 50/70/80 % of the filters of the 18
detection-block convs at strides 32/16/8 removed (transitions and outputs kept), i.e.
``yolov3_mobilenet_v1(widths=...)`` as ``lightjax prune`` compacts it (tested: a compacted model
computes what the masked one does). Latency depends on the architecture only, so the weights are
the initial ones. Both frameworks' models have the same parameter count (checked).

    python benchmarks/detection_latency.py                       # alpha 1, 20 classes
    python benchmarks/detection_latency.py --sizes 416 --repeats 5
"""
from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import timing  # noqa: E402

#: PaddleSlim's head-pruning ratios per scale, coarsest (stride 32) first
RATIOS = (0.5, 0.7, 0.8)


def neck_widths(model, ratios=None) -> tuple[int, ...]:
    widths = list(model.resolved_widths())
    neck = widths[14:]
    if ratios:
        neck = [w - int(ratios[i // 6] * w) for i, w in enumerate(neck)]
    return tuple(widths[:14] + neck)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[416, 608])
    p.add_argument("--num-classes", type=int, default=20)
    p.add_argument("--alpha", type=float, default=1.0)
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--warmup", type=int, default=2)
    args = p.parse_args(argv)

    import jax
    import jax.numpy as jnp
    import numpy as np
    import torch

    import torch_models
    from lightjax import cost, models

    timing.match_torch_threads()
    print("\n".join(timing.machine_lines()))
    print(timing.load_line("before"))
    variants = [("standard", "standard", None), ("separable", "separable", None),
                ("separable pruned", "separable", RATIOS)]
    rows, base = [], {}
    for size in args.sizes:
        for label, head, ratios in variants:
            ref = models.create("yolov3_mobilenet_v1", num_classes=args.num_classes,
                                alpha=args.alpha, head_conv=head)
            widths = neck_widths(ref, ratios)
            model = models.create("yolov3_mobilenet_v1", num_classes=args.num_classes,
                                  alpha=args.alpha, head_conv=head, widths=widths)
            report = cost.count(model, (1, size, size, 3))
            x = jnp.asarray(np.random.default_rng(0).normal(size=(1, size, size, 3)),
                            jnp.float32)
            variables = jax.jit(model.init)(jax.random.PRNGKey(0), x)
            forward = jax.jit(lambda v, x: model.apply(v, x, train=False))
            jt = timing.time_calls(lambda: forward(variables, x), args.repeats, args.warmup,
                                   jax.block_until_ready)
            transitions = model.neck_channels()[1:]
            net = torch_models.YOLOv3MobileNetV1(args.num_classes, args.alpha, widths[14:],
                                                 transitions, head == "separable").eval()
            n_torch = sum(t.numel() for t in net.parameters())
            assert n_torch == report.params, (label, n_torch, report.params)
            xt = torch.randn(1, 3, size, size).contiguous(memory_format=torch.channels_last)
            net = net.to(memory_format=torch.channels_last)
            with torch.no_grad():
                tt = timing.time_calls(lambda: net(xt), args.repeats, args.warmup)
            base.setdefault(size, (jt.median_ms, tt.median_ms, report.params, report.macs))
            b = base[size]
            rows.append([f"{size}", label, f"{report.params:,}", f"{report.macs / 1e9:.2f}",
                         f"{jt.median_ms:.1f}", f"{b[0] / jt.median_ms:.2f}x",
                         f"{tt.median_ms:.1f}", f"{tt.median_ms / jt.median_ms:.2f}x",
                         f"{1 - report.params / b[2]:+.1%}".replace("+", "-")
                         if report.params != b[2] else "0"])
            print(" | ".join(rows[-1]), flush=True)
    print(timing.load_line("after"))
    print(timing.format_table(["size", "neck", "params", "GMACs", "jax ms", "speed-up vs standard",
                        "torch eager ms", "torch/jax", "size change"], rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
