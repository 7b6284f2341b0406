"""Binarized (+-1) layers at inference: float32 vs packed bits (XOR + popcount) vs int8.

For each layer (3x3 conv, 1x1 conv, 4x4 stride-2 transposed conv, dense) at MobileNet-like
shapes and each batch size it times, jitted and warmed up, the median of ``--repeats`` calls of

- ``float``: the float32 layer on +-1 values (``lax.conv_general_dilated``, a matmul,
  ``lightjax.layers.transposed.conv_transpose``), the input padded with ``--pad-value``;
- ``packed``: :mod:`lightjax.binary.packed` on a pre-packed input, weights pre-packed;
- ``packed+pack``: the same with the float32 input packed inside the jitted function;
- ``int8``: the ``*_int8`` kernels on an int8 +-1 input, weights pre-converted to int8;
- ``int8+cvt``: the same with the float32 input converted (sign -> int8) inside the function,

and the speed-ups ``time(float) / time(row)`` (> 1: faster than float32), with the weights'
memory in float32 and packed (32x smaller; int8 is 4x smaller). Every packed and int8 result is
checked equal (integers) to the float one before timing. JAX runs on the CPU unless
``JAX_PLATFORMS`` says otherwise.

    python benchmarks/binary_layers.py                 # default shapes, batch 1 and 32
    python benchmarks/binary_layers.py --quick         # smoke run: tiny shapes, 2 repeats
    python benchmarks/binary_layers.py --batch 8 --repeats 50 --pad-value -1
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from typing import Any, Callable

os.environ.setdefault("JAX_PLATFORMS", "cpu")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from jax import lax  # noqa: E402

from lightjax.binary import packed  # noqa: E402
from lightjax.layers import transposed  # noqa: E402
from lightjax.layers.padding import pad_amounts  # noqa: E402
from timing import format_table, load_line, print_machine, ratio, time_calls  # noqa: E402

ISA_PREFIXES = ("avx2", "avx512", "avx_vnni", "popcnt", "amx")


@dataclasses.dataclass(frozen=True)
class Case:
    """One layer: ``kind`` in conv / transposed / dense; dense uses ``cin`` and ``cout`` only."""

    kind: str
    size: int  # input height = width
    cin: int
    cout: int
    k: int = 1
    s: int = 1

    @property
    def label(self) -> str:
        if self.kind == "dense":
            return "dense"
        return f"{'transposed ' if self.kind == 'transposed' else ''}{self.k}x{self.k}/{self.s}"

    @property
    def shape(self) -> str:
        """Input -> output channels, without the batch."""
        if self.kind == "dense":
            return f"{self.cin}->{self.cout}"
        return f"{self.size}x{self.size}x{self.cin}->{self.cout}"


DEFAULT_CASES = (Case("conv", 56, 64, 64, 3), Case("conv", 14, 256, 256),
                 Case("conv", 7, 512, 512), Case("transposed", 16, 64, 32, 4, 2),
                 Case("dense", 1, 1024, 1000))
QUICK_CASES = (Case("conv", 8, 32, 32, 3), Case("conv", 4, 64, 64),
               Case("transposed", 4, 16, 8, 4, 2), Case("dense", 1, 64, 10))


def cpu_flags_line() -> str:
    """The /proc/cpuinfo flags that decide these kernels (AVX2, AVX-512 (VPOPCNTDQ, VNNI, ...),
    popcnt, AMX)."""
    flags = ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            flags = next((line.split(":", 1)[1] for line in f if line.startswith("flags")), "")
    except OSError:
        pass
    wanted = sorted(f for f in flags.split() if f.startswith(ISA_PREFIXES))
    return "cpu flags: " + (" ".join(wanted) or "n/a")


# ----------------------------------------------------------------------------------------------
# The four implementations of one case: jitted functions of (input, weights)
# ----------------------------------------------------------------------------------------------
def to_int8(x: jax.Array) -> jax.Array:
    return jnp.where(x < 0, -1, 1).astype(jnp.int8)


def float_fn(case: Case, pad_value: int) -> Callable[..., Any]:
    if case.kind == "dense":
        return lambda x, w: x @ w
    if case.kind == "transposed":
        return lambda x, w: transposed.conv_transpose(x, w, case.s, "symmetric")

    def conv(x: jax.Array, w: jax.Array) -> jax.Array:
        pads = tuple(pad_amounts(n, case.k, case.s, "symmetric") for n in x.shape[1:3])
        xp = jnp.pad(x, ((0, 0), *pads, (0, 0)), constant_values=pad_value)
        return lax.conv_general_dilated(xp, w, (case.s, case.s), "VALID",
                                        dimension_numbers=("NHWC", "HWIO", "NHWC"))
    return conv


def packed_fn(case: Case, pad_value: int) -> Callable[..., Any]:
    if case.kind == "dense":
        return lambda xb, wb: packed.dense(xb, wb, case.cin)
    if case.kind == "transposed":
        return lambda xb, wb: packed.conv_transpose(xb, wb, case.cin, case.k, case.s)
    return lambda xb, wb: packed.conv2d(xb, wb, case.cin, case.k, case.s, "symmetric", pad_value)


def int8_fn(case: Case, pad_value: int) -> Callable[..., Any]:
    if case.kind == "dense":
        return packed.dense_int8
    if case.kind == "transposed":
        return lambda x8, w8: packed.conv_transpose_int8(x8, w8, case.k, case.s)
    return lambda x8, w8: packed.conv2d_int8(x8, w8, case.k, case.s, "symmetric", pad_value)


def run_case(case: Case, batch: int, pad_value: int, repeats: int, warmup: int
             ) -> tuple[dict[str, float], dict[str, int]]:
    """Median ms per implementation, and weight bytes (float32, packed, int8)."""
    rng = np.random.default_rng(0)
    pm1 = lambda *shape: jnp.asarray(np.where(rng.random(shape) < 0.5, -1.0, 1.0),  # noqa: E731
                                     jnp.float32)
    if case.kind == "dense":
        x, w = pm1(batch, case.cin), pm1(case.cin, case.cout)
        wb, w8 = packed.pack(w.T), to_int8(w.T)  # (Cout, Wd) / (Cout, Cin): one row per output
    else:
        x, w = pm1(batch, case.size, case.size, case.cin), pm1(case.k, case.k, case.cin, case.cout)
        wb, w8 = packed.pack(w, axis=2), to_int8(w)
    xb, x8 = packed.pack(x), to_int8(x)
    f_float, f_packed, f_int8 = (fn(case, pad_value)
                                 for fn in (float_fn, packed_fn, int8_fn))
    fns = {"float": (jax.jit(f_float), x, w),
           "packed": (jax.jit(f_packed), xb, wb),
           "packed+pack": (jax.jit(lambda v, wb: f_packed(packed.pack(v), wb)), x, wb),
           "int8": (jax.jit(f_int8), x8, w8),
           "int8+cvt": (jax.jit(lambda v, w8: f_int8(to_int8(v), w8)), x, w8)}
    want = np.asarray(fns["float"][0](x, w))
    for name, (fn, a, b) in fns.items():
        got = np.asarray(fn(a, b))
        if not np.array_equal(got, want):
            raise AssertionError(f"{case.label} {case.shape} batch {batch}: {name} differs from float "
                                 f"(max abs difference {np.abs(got - want).max()})")
    times = {name: time_calls(lambda: fn(a, b), repeats, warmup, jax.block_until_ready).median_ms
             for name, (fn, a, b) in fns.items()}
    return times, {"float32": w.nbytes, "packed": wb.nbytes, "int8": w8.nbytes}


IMPLS = ("float", "packed", "packed+pack", "int8", "int8+cvt")
HEADERS = (("layer", "shape", "batch") + tuple(f"{i} ms" for i in IMPLS)
           + tuple(f"{i} x" for i in IMPLS[1:]) + ("W f32 bytes", "W packed bytes"))


def table_row(case: Case, batch: int, times: dict[str, float], memory: dict[str, int]
              ) -> tuple[Any, ...]:
    return ((case.label, case.shape, batch) + tuple(times[i] for i in IMPLS)
            + tuple(ratio(times["float"], times[i]) for i in IMPLS[1:])
            + (memory["float32"], memory["packed"]))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 32],
                        help="batch sizes (default 1 32)")
    parser.add_argument("--repeats", type=int, default=20, help="timed calls; median reported")
    parser.add_argument("--warmup", type=int, default=3,
                        help="untimed calls before timing (the first one compiles)")
    parser.add_argument("--pad-value", type=int, default=0, choices=(-1, 0, 1),
                        help="spatial padding constant of the 3x3 convs (default 0)")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: tiny shapes, batch 1 and 2, 2 repeats, 1 warm-up call")
    args = parser.parse_args(argv)
    args.cases = DEFAULT_CASES
    if args.quick:
        args.cases, args.batch, args.repeats, args.warmup = QUICK_CASES, [1, 2], 2, 1
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    print(f"# binarized layers, {jax.default_backend()} backend: median of {args.repeats} calls "
          f"after {args.warmup} warm-up calls, 3x3 pad_value {args.pad_value}")
    print(cpu_flags_line())
    print_machine()
    rows = []
    for case in args.cases:
        for batch in args.batch:
            print(f"timing {case.label} {case.shape} batch {batch} ...", flush=True)
            rows.append(table_row(case, batch, *run_case(case, batch, args.pad_value,
                                                         args.repeats, args.warmup)))
    print()
    print(format_table(HEADERS, rows))
    print("\n<impl> x: speed-up, time(float) / time(impl); > 1 is faster than float32. "
          "packed / int8: input already packed / int8; +pack / +cvt: float32 input converted "
          "inside the call. Weights pre-packed (32x smaller than float32) or int8 (4x).")
    print(load_line("end"))


if __name__ == "__main__":
    main()
