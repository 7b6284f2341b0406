"""Depthwise 3x3 convolution: lightjax's implementations versus PyTorch, forward and backward.

For each case (N, H, W, C, stride) it times, jitted and warmed up, the median of ``--repeats``:

- ``fwd``: ``depthwise_conv(x, kernel, stride, 'symmetric', impl)`` for ``impl`` in
  ``xla``/``shifted``, and ``nn.Conv2d(C, C, 3, stride, padding=1, groups=C, bias=False)`` in
  PyTorch (``torch.no_grad()``), channels_last (the NHWC peer) and default NCHW memory format;
- ``fwd+bwd``: the output *and* the gradients with respect to input and kernel for a fixed random
  cotangent (``jax.vjp`` / ``torch.autograd.grad``), i.e. what one training step needs of the layer.

Before timing, every implementation's output and gradients are checked against the ``xla`` one.

    python benchmarks/depthwise.py                 # the default cases, batch 128
    python benchmarks/depthwise.py --quick         # smoke run: batch 4, 2 repeats
    python benchmarks/depthwise.py --case 32x32x64s2 --batch 64
"""
from __future__ import annotations

import argparse
import dataclasses
import functools
import os
import re
import sys
from typing import Any, Callable

os.environ.setdefault("JAX_PLATFORMS", "cpu")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from lightjax.layers.depthwise import depthwise_conv  # noqa: E402
from timing import (Timing, format_table, load_line, match_torch_threads,  # noqa: E402
                    print_machine, ratio, time_calls)

JAX_IMPLS = ("xla", "shifted")
TORCH_LAYOUTS = {"torch channels_last": torch.channels_last,
                 "torch NCHW": torch.contiguous_format}
#: The torch row the "vs torch" columns compare against (same NHWC memory layout as JAX).
TORCH_PEER = "torch channels_last"
DEFAULT_CASES = ("16x16x256s1", "16x16x256s2", "32x32x64s1", "8x8x512s1")
KERNEL_SIZE = 3


@dataclasses.dataclass(frozen=True)
class Case:
    height: int
    width: int
    channels: int
    stride: int

    @classmethod
    def parse(cls, text: str) -> "Case":
        match = re.fullmatch(r"(\d+)x(\d+)x(\d+)s(\d+)", text)
        if not match:
            raise argparse.ArgumentTypeError(f"case must look like 16x16x256s1, got {text!r}")
        return cls(*(int(g) for g in match.groups()))

    def shape(self, batch: int) -> str:
        return f"{batch}x{self.height}x{self.width}x{self.channels}"


@dataclasses.dataclass(frozen=True)
class Inputs:
    """One case's data in NHWC / HWIO (JAX layout); torch gets the same values transposed."""

    x: np.ndarray  # (N, H, W, C)
    kernel: np.ndarray  # (k, k, 1, C)
    cotangent: np.ndarray  # (N, H', W', C)


@dataclasses.dataclass(frozen=True)
class Result:
    name: str
    fwd: Timing
    fwd_bwd: Timing


# ----------------------------------------------------------------------------------------------
# Data
# ----------------------------------------------------------------------------------------------
def make_inputs(case: Case, batch: int, seed: int = 0) -> Inputs:
    rng = np.random.default_rng(seed)
    out_h, out_w = -(-case.height // case.stride), -(-case.width // case.stride)
    normal = lambda *shape: rng.standard_normal(shape, dtype=np.float32)  # noqa: E731
    return Inputs(x=normal(batch, case.height, case.width, case.channels),
                  kernel=normal(KERNEL_SIZE, KERNEL_SIZE, 1, case.channels) / KERNEL_SIZE,
                  cotangent=normal(batch, out_h, out_w, case.channels))


# ----------------------------------------------------------------------------------------------
# JAX
# ----------------------------------------------------------------------------------------------
def jax_functions(impl: str, stride: int) -> tuple[Callable[..., Any], Callable[..., Any]]:
    """Jitted ``fwd(x, k) -> y`` and ``fwd_bwd(x, k, g) -> (y, (dx, dk))``."""
    conv = functools.partial(depthwise_conv, stride=stride, padding="symmetric", impl=impl)

    def fwd_bwd(x: jax.Array, kernel: jax.Array, cotangent: jax.Array):
        out, vjp = jax.vjp(conv, x, kernel)
        return out, vjp(cotangent)  # returning ``out`` keeps the forward pass in the graph

    return jax.jit(conv), jax.jit(fwd_bwd)


def run_jax(impl: str, case: Case, inputs: Inputs, repeats: int, warmup: int
            ) -> tuple[Result, list[np.ndarray]]:
    fwd, fwd_bwd = jax_functions(impl, case.stride)
    x, k, g = (jnp.asarray(a) for a in (inputs.x, inputs.kernel, inputs.cotangent))
    out, (dx, dk) = fwd_bwd(x, k, g)
    reference = [np.asarray(a) for a in (out, dx, dk)]
    result = Result(impl,
                    time_calls(lambda: fwd(x, k), repeats, warmup, jax.block_until_ready),
                    time_calls(lambda: fwd_bwd(x, k, g), repeats, warmup,
                               jax.block_until_ready))
    return result, reference


# ----------------------------------------------------------------------------------------------
# PyTorch
# ----------------------------------------------------------------------------------------------
def torch_conv(case: Case, kernel: np.ndarray, layout: torch.memory_format) -> torch.nn.Conv2d:
    conv = torch.nn.Conv2d(case.channels, case.channels, KERNEL_SIZE, stride=case.stride,
                           padding=KERNEL_SIZE // 2, groups=case.channels, bias=False)
    with torch.no_grad():
        conv.weight.copy_(torch.from_numpy(kernel.transpose(3, 2, 0, 1)))  # HWIO -> OIHW
    return conv.to(memory_format=layout)


def nhwc_to_torch(a: np.ndarray, layout: torch.memory_format) -> torch.Tensor:
    """NHWC numpy array -> NCHW-shaped tensor stored in ``layout``."""
    return torch.from_numpy(a.transpose(0, 3, 1, 2)).contiguous(memory_format=layout)


def run_torch(name: str, layout: torch.memory_format, case: Case, inputs: Inputs, repeats: int,
              warmup: int) -> tuple[Result, list[np.ndarray]]:
    conv = torch_conv(case, inputs.kernel, layout)
    x = nhwc_to_torch(inputs.x, layout).requires_grad_(True)
    g = nhwc_to_torch(inputs.cotangent, layout)

    def fwd() -> torch.Tensor:
        with torch.no_grad():
            return conv(x)

    def fwd_bwd() -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        out = conv(x)
        return out, torch.autograd.grad(out, (x, conv.weight), g)

    out, (dx, dw) = fwd_bwd()
    reference = [out.detach().numpy().transpose(0, 2, 3, 1), dx.numpy().transpose(0, 2, 3, 1),
                 dw.numpy().transpose(2, 3, 1, 0)]
    result = Result(name, time_calls(fwd, repeats, warmup), time_calls(fwd_bwd, repeats, warmup))
    return result, reference


# ----------------------------------------------------------------------------------------------
# Checks, table
# ----------------------------------------------------------------------------------------------
def check_close(name: str, got: list[np.ndarray], want: list[np.ndarray]) -> None:
    """Outputs and both gradients must agree with the reference (``xla``) implementation."""
    for label, a, b in zip(("output", "d input", "d kernel"), got, want):
        scale = float(np.abs(b).max()) or 1.0
        err = float(np.abs(a - b).max()) / scale
        if a.shape != b.shape or not err < 1e-4:
            raise AssertionError(f"{name}: {label} differs from xla (shape {a.shape} vs "
                                 f"{b.shape}, max relative error {err:.2e})")


def run_case(case: Case, batch: int, repeats: int, warmup: int) -> list[Result]:
    inputs = make_inputs(case, batch)
    results, reference = [], None
    runs = [functools.partial(run_jax, impl) for impl in JAX_IMPLS] + [
        functools.partial(run_torch, name, layout) for name, layout in TORCH_LAYOUTS.items()]
    for run in runs:
        result, outputs = run(case, inputs, repeats, warmup)
        if reference is None:
            reference = outputs
        else:
            check_close(result.name, outputs, reference)
        results.append(result)
    return results


HEADERS = ("shape (NHWC)", "stride", "impl", "fwd ms", "fwd+bwd ms",
           "fwd vs xla", "f+b vs xla", "fwd vs torch", "f+b vs torch")


def table_rows(case: Case, batch: int, results: list[Result]) -> list[tuple[Any, ...]]:
    """Speed-ups are time(other) / time(this row): > 1 means this row is faster."""
    by_name = {r.name: r for r in results}
    xla, peer = by_name["xla"], by_name[TORCH_PEER]
    return [(case.shape(batch), case.stride, r.name, r.fwd.median_ms, r.fwd_bwd.median_ms,
             ratio(xla.fwd.median_ms, r.fwd.median_ms),
             ratio(xla.fwd_bwd.median_ms, r.fwd_bwd.median_ms),
             ratio(peer.fwd.median_ms, r.fwd.median_ms),
             ratio(peer.fwd_bwd.median_ms, r.fwd_bwd.median_ms)) for r in results]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=128, help="N (default 128)")
    parser.add_argument("--repeats", type=int, default=20, help="timed calls; median reported")
    parser.add_argument("--warmup", type=int, default=3,
                        help="untimed calls before timing (the first one compiles)")
    parser.add_argument("--case", type=Case.parse, action="append", dest="cases",
                        help="HxWxCsS, repeatable (default: " + ", ".join(DEFAULT_CASES) + ")")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: batch 4, 2 repeats, 1 warm-up call")
    args = parser.parse_args(argv)
    if args.quick:
        args.batch, args.repeats, args.warmup = 4, 2, 1
    args.cases = args.cases or [Case.parse(c) for c in DEFAULT_CASES]
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    match_torch_threads()
    print(f"# depthwise 3x3 conv, float32, {jax.default_backend()} backend: "
          f"median of {args.repeats} calls after {args.warmup} warm-up calls")
    print_machine()
    rows = []
    for case in args.cases:
        print(f"timing {case.shape(args.batch)} stride {case.stride} ...", flush=True)
        rows += table_rows(case, args.batch, run_case(case, args.batch, args.repeats,
                                                      args.warmup))
    print()
    print(format_table(HEADERS, rows))
    print(f"\nvs xla / vs torch: speed-up, time(xla or {TORCH_PEER}) / time(row); > 1 is faster."
          "\nfwd+bwd: output and gradients w.r.t. input and kernel for a random cotangent.")
    print(load_line("end"))


if __name__ == "__main__":
    main()
