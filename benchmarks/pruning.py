"""Does pruning pay? CPU inference latency of MobileNetV1 before and after compaction.

The compact model of a pruning run is the same class with explicit ``widths`` (the tests show that
it computes exactly what the masked model does), so this script times ``widths`` variants
directly: the full model and the model with a fraction of every pointwise layer's filters
removed (the stem kept, as ``lightjax prune`` does), in eval mode (jitted forward, BN folded by
nothing but XLA), against PyTorch (channels_last, ``torch.no_grad``) on the same machine in the
same run. It prints MACs ratio next to latency ratio.

    python benchmarks/pruning.py                    # alpha 0.25 @ 32 (digits) and 1.0 @ 224
    python benchmarks/pruning.py --ratios 0.25 0.5 0.75 --batch 1 32
"""
from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import timing  # noqa: E402


def pruned_widths(alpha: float, ratio: float) -> tuple[int, ...]:
    from lightjax.models import mobilenet_v1 as mv1
    full = [int(mv1.STEM_CHANNELS * alpha)] + [int(c * alpha) for c, _ in mv1.UNITS]
    return tuple([full[0]] + [w - int(ratio * w) for w in full[1:]])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--settings", nargs="+", default=["0.25:32:1", "1.0:224:2"],
                   help="alpha:resolution:stem_stride")
    p.add_argument("--ratios", type=float, nargs="+", default=[0.5])
    p.add_argument("--batch", type=int, nargs="+", default=[1, 32])
    p.add_argument("--num-classes", type=int, default=10)
    p.add_argument("--repeats", type=int, default=30)
    p.add_argument("--warmup", type=int, default=5)
    args = p.parse_args(argv)

    import jax
    import jax.numpy as jnp
    import numpy as np
    import torch

    import torch_models
    from lightjax import cost, models

    threads = timing.match_torch_threads()
    print("\n".join(timing.machine_lines()))
    rows = []
    for setting in args.settings:
        alpha, size, stem = float(setting.split(":")[0]), *map(int, setting.split(":")[1:])
        variants = [("full", None)] + [(f"-{int(100 * r)}% pw", pruned_widths(alpha, r))
                                       for r in args.ratios]
        base = {}
        for label, widths in variants:
            model = models.create("mobilenet_v1", alpha=alpha, num_classes=args.num_classes,
                                  stem_stride=stem, widths=widths)
            report = cost.count(model, (1, size, size, 3))
            tmodel = torch_models.MobileNetV1(args.num_classes, alpha, stem,
                                              widths=widths).eval()
            tmodel = tmodel.to(memory_format=torch.channels_last)
            for batch in args.batch:
                x = np.random.default_rng(0).standard_normal((batch, size, size, 3), np.float32)
                variables = jax.jit(lambda: model.init(jax.random.PRNGKey(0),
                                                       jnp.zeros((1, size, size, 3)),
                                                       train=False))()
                fwd = jax.jit(lambda v, x: model.apply(v, x, train=False))
                xj = jnp.asarray(x)
                tj = timing.time_calls(lambda: fwd(variables, xj), args.repeats, args.warmup,
                                       jax.block_until_ready)
                xt = torch.from_numpy(x.transpose(0, 3, 1, 2).copy()).to(
                    memory_format=torch.channels_last)
                with torch.no_grad():
                    tt = timing.time_calls(lambda: tmodel(xt), args.repeats, args.warmup)
                key = (setting, batch)
                if label == "full":
                    base[key] = (report.macs, tj.median_ms, tt.median_ms, report.params)
                macs0, j0, t0, p0 = base[key]
                rows.append((f"{alpha} @ {size}", label, batch, report.params,
                             f"{report.macs / 1e6:.2f}M", f"{report.macs / macs0:.3f}",
                             f"{tj.median_ms:.2f}", f"{tj.median_ms / j0:.3f}",
                             f"{tt.median_ms:.2f}", f"{tt.median_ms / t0:.3f}",
                             f"{tt.median_ms / tj.median_ms:.2f}"))
    print(timing.load_line("end"))
    print(f"torch threads: {threads}; median of {args.repeats} calls after {args.warmup} warm-up")
    print(timing.format_table(
        ("MobileNetV1", "variant", "batch", "params", "MACs", "MAC ratio", "lightjax ms",
         "lightjax latency ratio", "torch CL ms", "torch latency ratio", "lightjax speed vs torch"),
        rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
