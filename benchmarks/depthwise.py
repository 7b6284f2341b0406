"""Depthwise 3x3 convolution: lightjax's implementations versus PyTorch, forward and backward.

For each case (N, H, W, C, stride) it times, jitted and warmed up, the median of ``--repeats``:

- ``fwd``: ``depthwise_conv(x, kernel, stride, 'symmetric', impl)`` for ``impl`` in ``--impls``
  (``xla``, ``shifted``, ``auto`` = what lightjax picks on this backend), and
  ``nn.Conv2d(C, C, 3, stride, padding=1, groups=C, bias=False)`` in PyTorch
  (``torch.no_grad()``) on ``--torch-device`` (``cpu``, ``cuda``, ``auto``, ``none``: no torch
  rows), channels_last (the NHWC peer) and default NCHW memory format;
- ``fwd+bwd``: the output *and* the gradients with respect to input and kernel for a fixed random
  cotangent (``jax.vjp`` / ``torch.autograd.grad``), i.e. what one training step needs of the layer.

Before timing, every implementation's output and gradients are checked against the ``xla`` one.
JAX runs on CPU unless ``JAX_PLATFORMS`` says otherwise (``JAX_PLATFORMS=cuda``, or empty for
JAX's own choice, as ``benchmarks/gpu.sh`` does).

    python benchmarks/depthwise.py                 # the default cases, batch 128
    python benchmarks/depthwise.py --quick         # smoke run: batch 4, 2 repeats
    python benchmarks/depthwise.py --case 32x32x64s2 --batch 64
    JAX_PLATFORMS=cuda python benchmarks/depthwise.py --impls xla shifted auto --torch-device cuda
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

from lightjax.layers import depthwise as depthwise_lib  # noqa: E402
from lightjax.layers.depthwise import depthwise_conv  # noqa: E402
from timing import (Timing, format_table, load_line, match_torch_threads,  # noqa: E402
                    print_machine, ratio, time_calls, torch_device_choice, torch_sync)

JAX_IMPLS = ("xla", "shifted", "auto")
#: torch row name -> memory format name (``torch.<name>``).
TORCH_LAYOUTS = {"torch channels_last": "channels_last", "torch NCHW": "contiguous_format"}
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


def impl_label(impl: str) -> str:
    """``auto`` is shown with what it resolves to on this backend, e.g. ``auto (xla)``."""
    return f"auto ({depthwise_lib.resolve('auto')})" if impl == "auto" else impl


def run_jax(impl: str, case: Case, inputs: Inputs, repeats: int, warmup: int
            ) -> tuple[Result, list[np.ndarray]]:
    fwd, fwd_bwd = jax_functions(impl, case.stride)
    x, k, g = (jnp.asarray(a) for a in (inputs.x, inputs.kernel, inputs.cotangent))
    out, (dx, dk) = fwd_bwd(x, k, g)
    reference = [np.asarray(a) for a in (out, dx, dk)]
    result = Result(impl_label(impl),
                    time_calls(lambda: fwd(x, k), repeats, warmup, jax.block_until_ready),
                    time_calls(lambda: fwd_bwd(x, k, g), repeats, warmup,
                               jax.block_until_ready))
    return result, reference


# ----------------------------------------------------------------------------------------------
# PyTorch
# ----------------------------------------------------------------------------------------------
def torch_conv(case: Case, kernel: np.ndarray, layout: Any, device: str) -> Any:
    import torch

    conv = torch.nn.Conv2d(case.channels, case.channels, KERNEL_SIZE, stride=case.stride,
                           padding=KERNEL_SIZE // 2, groups=case.channels, bias=False)
    with torch.no_grad():
        conv.weight.copy_(torch.from_numpy(kernel.transpose(3, 2, 0, 1)))  # HWIO -> OIHW
    return conv.to(device=device, memory_format=layout)


def nhwc_to_torch(a: np.ndarray, layout: Any, device: str) -> Any:
    """NHWC numpy array -> NCHW-shaped tensor stored in ``layout`` on ``device``."""
    import torch

    return torch.from_numpy(a.transpose(0, 3, 1, 2)).to(device).contiguous(memory_format=layout)


def run_torch(name: str, layout_name: str, device: str, case: Case, inputs: Inputs, repeats: int,
              warmup: int) -> tuple[Result, list[np.ndarray]]:
    import torch

    layout = getattr(torch, layout_name)
    conv = torch_conv(case, inputs.kernel, layout, device)
    x = nhwc_to_torch(inputs.x, layout, device).requires_grad_(True)
    g = nhwc_to_torch(inputs.cotangent, layout, device)
    sync = torch_sync(device)

    def fwd() -> Any:
        with torch.no_grad():
            return conv(x)

    def fwd_bwd() -> Any:
        out = conv(x)
        return out, torch.autograd.grad(out, (x, conv.weight), g)

    out, (dx, dw) = fwd_bwd()
    host = lambda t: t.detach().cpu().numpy()  # noqa: E731
    reference = [host(out).transpose(0, 2, 3, 1), host(dx).transpose(0, 2, 3, 1),
                 host(dw).transpose(2, 3, 1, 0)]
    label = name if device == "cpu" else f"{name} ({device})"
    result = Result(label, time_calls(fwd, repeats, warmup, sync),
                    time_calls(fwd_bwd, repeats, warmup, sync))
    return result, reference


# ----------------------------------------------------------------------------------------------
# Checks, table
# ----------------------------------------------------------------------------------------------
def tolerance() -> float:
    """Max relative error against ``xla``: float32 round-off on CPU; on GPUs convolutions may
    run in TF32 (JAX's and PyTorch's default precision there), about 1e-3 per product."""
    return 1e-4 if jax.default_backend() == "cpu" else 2e-2


def check_close(name: str, got: list[np.ndarray], want: list[np.ndarray]) -> None:
    """Outputs and both gradients must agree with the reference (``xla``) implementation."""
    for label, a, b in zip(("output", "d input", "d kernel"), got, want):
        scale = float(np.abs(b).max()) or 1.0
        err = float(np.abs(a - b).max()) / scale
        if a.shape != b.shape or not err < tolerance():
            raise AssertionError(f"{name}: {label} differs from xla (shape {a.shape} vs "
                                 f"{b.shape}, max relative error {err:.2e})")


def run_case(case: Case, batch: int, repeats: int, warmup: int, impls: tuple[str, ...] = JAX_IMPLS,
             torch_device: str = "cpu") -> list[Result]:
    """``xla`` first (the reference every other row is checked against), then ``impls``, then
    the torch rows (none for ``torch_device='none'``)."""
    inputs = make_inputs(case, batch)
    results, reference = [], None
    impls = ("xla",) + tuple(i for i in dict.fromkeys(impls) if i != "xla")
    runs = [functools.partial(run_jax, impl) for impl in impls]
    if torch_device != "none":
        runs += [functools.partial(run_torch, name, layout, torch_device)
                 for name, layout in TORCH_LAYOUTS.items()]
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


def headers(with_torch: bool) -> tuple[str, ...]:
    return HEADERS if with_torch else HEADERS[:-2]


def table_rows(case: Case, batch: int, results: list[Result]) -> list[tuple[Any, ...]]:
    """Speed-ups are time(other) / time(this row): > 1 means this row is faster."""
    by_name = {r.name: r for r in results}
    xla = by_name["xla"]
    peer = next((r for r in results if r.name.startswith(TORCH_PEER)), None)
    rows = []
    for r in results:
        row = (case.shape(batch), case.stride, r.name, r.fwd.median_ms, r.fwd_bwd.median_ms,
               ratio(xla.fwd.median_ms, r.fwd.median_ms),
               ratio(xla.fwd_bwd.median_ms, r.fwd_bwd.median_ms))
        if peer is not None:
            row += (ratio(peer.fwd.median_ms, r.fwd.median_ms),
                    ratio(peer.fwd_bwd.median_ms, r.fwd_bwd.median_ms))
        rows.append(row)
    return rows


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=128, help="N (default 128)")
    parser.add_argument("--repeats", type=int, default=20, help="timed calls; median reported")
    parser.add_argument("--warmup", type=int, default=3,
                        help="untimed calls before timing (the first one compiles)")
    parser.add_argument("--case", type=Case.parse, action="append", dest="cases",
                        help="HxWxCsS, repeatable (default: " + ", ".join(DEFAULT_CASES) + ")")
    parser.add_argument("--impls", nargs="+", default=["xla", "shifted"], choices=JAX_IMPLS,
                        help="lightjax implementations (xla is always run: the reference)")
    parser.add_argument("--torch-device", default="cpu", choices=("cpu", "cuda", "auto", "none"),
                        help="where the PyTorch rows run (auto: cuda if torch sees a GPU; "
                             "none: no PyTorch rows, torch not needed)")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: batch 4, 2 repeats, 1 warm-up call")
    args = parser.parse_args(argv)
    args.torch_device = torch_device_choice(args.torch_device)
    if args.quick:
        args.batch, args.repeats, args.warmup = 4, 2, 1
    args.cases = args.cases or [Case.parse(c) for c in DEFAULT_CASES]
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    with_torch = args.torch_device != "none"
    if with_torch:
        match_torch_threads()
    print(f"# depthwise 3x3 conv, float32, {jax.default_backend()} backend: "
          f"median of {args.repeats} calls after {args.warmup} warm-up calls"
          + ("" if with_torch else " (no PyTorch rows)"))
    print_machine()
    rows = []
    for case in args.cases:
        print(f"timing {case.shape(args.batch)} stride {case.stride} ...", flush=True)
        rows += table_rows(case, args.batch, run_case(case, args.batch, args.repeats,
                                                      args.warmup, tuple(args.impls),
                                                      args.torch_device))
    print()
    print(format_table(headers(with_torch), rows))
    peer = f"{TORCH_PEER}" + ("" if args.torch_device in ("cpu", "none") else
                              f" ({args.torch_device})")
    print(f"\nvs xla{' / vs torch' if with_torch else ''}: speed-up, time(xla"
          f"{' or ' + peer if with_torch else ''}) / time(row); > 1 is faster."
          "\nfwd+bwd: output and gradients w.r.t. input and kernel for a random cotangent.")
    print(load_line("end"))


if __name__ == "__main__":
    main()
