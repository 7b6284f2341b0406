"""A whole binarized MobileNetV1 at inference: float32 vs binary (float +-1) vs packed bits.

XNOR binarization of every conv/dense layer but the first and the last (``lightjax.binary``
plug-in rule, all selections 1, ``pad_value`` -1). Times, jitted and warmed up, the median of
``--repeats`` eval-mode forward calls of

- ``float``: the same model without binarization;
- ``binary``: the binarized model as trained (hooks: alpha * sign(W), sign(x), float convs);
- ``packed``: :class:`lightjax.binary.inference.PackedModel` (pointwise convs by XOR + popcount
  on packed signs; depthwise, first and last layers as in ``binary``),

at batch 1 and 32, with the model size in bits (``lightjax cost --binary``'s count) and the CPU's
ISA flags. ``agree`` is the share of images whose arg-max class is the same in ``packed`` and
``binary``: the packed layers compute ``alpha * integer`` exactly while the float path rounds, so
an output that is exactly 0 in integers can come out as +-1e-7 in float and flip the next layer's
sign. BN shifts are set to random values (as in a trained network) so such ties are rare; each
packed layer equals the float one to rounding (``tests/binary``).

    python benchmarks/binary.py                  # alpha 1, 224x224, 1000 classes
    python benchmarks/binary.py --quick          # alpha 0.25, 64x64 smoke run
"""
from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import flax  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from lightjax import cost, models  # noqa: E402
from lightjax.binary import inference, plugin  # noqa: E402


def _isa() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            flags = next(line for line in f if line.startswith("flags")).split()
        model = next(line for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        return "unknown CPU"
    wanted = ("avx2", "avx512f", "avx512_vpopcntdq", "avx512_vnni", "popcnt")
    return f"{model.split(':', 1)[1].strip()}; {' '.join(f for f in wanted if f in flags)}"


def _time(fn, x, repeats: int) -> float:
    jax.block_until_ready(fn(x))
    jax.block_until_ready(fn(x))
    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(fn(x))
        samples.append(time.perf_counter() - t0)
    return 1000 * statistics.median(samples)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--alpha", type=float, default=1.0)
    ap.add_argument("--resolution", type=int, default=224)
    ap.add_argument("--batches", default="1,32")
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    if args.quick:
        args.alpha, args.resolution, args.repeats = 0.25, 64, 3
    shape = (1, args.resolution, args.resolution, 3)
    base = models.create("mobilenet_v1", alpha=args.alpha)
    report = cost.count(base, shape)
    rows = plugin.select_layers(report, None)
    b = plugin.section()
    b.method, b.pad_value = "xnor", -1.0
    binarizer = plugin.Binarization(plugin.layer_settings(b), rows, [], None, None, report)
    model = binarizer.transform(base)
    variables = jax.jit(lambda: model.init(jax.random.PRNGKey(0), jnp.zeros(shape)))()
    flat = flax.traverse_util.flatten_dict(variables["params"], sep="/")
    rng = np.random.default_rng(0)
    flat = {k: (jnp.asarray(rng.normal(0, 0.5, v.shape), v.dtype) if k.endswith("bn/bias") else v)
            for k, v in flat.items()}  # BN shifts of a trained network: no ties at 0
    variables = {**variables, "params": flax.traverse_util.unflatten_dict(flat, sep="/")}
    ones = {r.name: {"weights": jnp.ones(r.kernel_shape[-1:]),
                     "inputs": jnp.ones(plugin.input_positions(r))} for r in rows}
    variables = {**variables, **binarizer.collections(ones)}
    float_vars = {"params": variables["params"], "batch_stats": variables["batch_stats"]}
    packed = inference.from_plugin(model, variables, binarizer)
    size = plugin.binary_cost(report, {r.name: (1.0, 1.0) for r in rows})
    print(f"cpu: {_isa()}; jax {jax.__version__}; {os.cpu_count()} cores")
    print(f"mobilenet_v1 alpha {args.alpha} at {args.resolution}x{args.resolution}: "
          f"{len(rows)} binarized layers, {len(packed.paths)} packed (pointwise); size "
          f"{size['float_model_bits'] / 8e6:.2f} MB float -> {size['model_bits'] / 8e6:.2f} MB")
    fns = {"float": jax.jit(lambda x: base.apply(float_vars, x)),
           "binary": jax.jit(lambda x: model.apply(variables, x)),
           "packed": jax.jit(packed.apply)}
    print("| batch | float ms | binary ms | packed ms | packed vs float | packed vs binary | "
          "agree |")
    print("|------:|---------:|----------:|----------:|----------------:|-----------------:|"
          "------:|")
    for batch in (int(v) for v in args.batches.split(",")):
        x = jax.random.normal(jax.random.PRNGKey(1), (batch, *shape[1:]))
        agree = np.mean(np.argmax(np.asarray(fns["packed"](x)), -1)
                        == np.argmax(np.asarray(fns["binary"](x)), -1))
        ms = {k: _time(f, x, args.repeats) for k, f in fns.items()}
        print(f"| {batch:5d} | {ms['float']:8.1f} | {ms['binary']:9.1f} | {ms['packed']:9.1f} | "
              f"{ms['float'] / ms['packed']:14.2f}x | {ms['binary'] / ms['packed']:15.2f}x | "
              f"{agree:5.0%} |")


if __name__ == "__main__":
    main()
