"""Helpers shared by the benchmark scripts: timing, thread settings, the machine line, tables.

Nothing here imports JAX or PyTorch at module level, so the scripts decide when each is loaded.
"""
from __future__ import annotations

import dataclasses
import datetime
import importlib.metadata
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from typing import Any, Callable, Sequence


@dataclasses.dataclass(frozen=True)
class Timing:
    """Wall-clock times of ``repeats`` calls, in seconds."""

    times: tuple[float, ...]

    @property
    def median_ms(self) -> float:
        return statistics.median(self.times) * 1e3

    @property
    def min_ms(self) -> float:
        return min(self.times) * 1e3


def time_calls(fn: Callable[[], Any], repeats: int, warmup: int,
               sync: Callable[[Any], Any] = lambda result: result) -> Timing:
    """Call ``fn`` ``warmup`` times untimed, then ``repeats`` times timed, one call at a time.

    ``sync(result)`` must wait until the work behind ``result`` is done (``jax.block_until_ready``
    for JAX's asynchronous dispatch; PyTorch on CPU is synchronous). Each timed call therefore
    includes dispatch overhead, as it would in a real loop that reads its results.
    """
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    for _ in range(warmup):
        sync(fn())
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        sync(fn())
        times.append(time.perf_counter() - start)
    return Timing(tuple(times))


def usable_cores() -> int:
    """CPUs this process may run on (what XLA's CPU thread pool sizes itself to)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def match_torch_threads() -> int:
    """Give PyTorch's intra-op pool one thread per usable core, like XLA's CPU client."""
    import torch

    torch.set_num_threads(usable_cores())
    return torch.get_num_threads()


def _cpuinfo_field(name: str) -> str | None:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.split(":", 1)[0].strip() == name:
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def cpu_model() -> str:
    return _cpuinfo_field("model name") or platform.processor() or platform.machine()


def vector_isa() -> str:
    """The widest SIMD extensions the CPU reports (they decide both libraries' kernels)."""
    flags = set((_cpuinfo_field("flags") or "").split())
    wanted = ("avx2", "fma", "avx512f", "avx512_bf16", "amx_tile")
    return " ".join(f for f in wanted if f in flags) or "unknown"


def load_average() -> tuple[float, float, float] | None:
    return os.getloadavg() if hasattr(os, "getloadavg") else None


def load_line(when: str) -> str:
    """Load average, with a warning when other work competes for the cores."""
    load = load_average()
    if load is None:
        return f"load average ({when}): n/a"
    text = f"load average ({when}, 1/5/15 min): " + " ".join(f"{v:.2f}" for v in load)
    if load[0] > 0.5 * usable_cores():
        text += ("  WARNING: machine busy; timings are unreliable (PyTorch's OpenMP threads "
                 "suffer most from oversubscription)")
    return text


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def accelerator_lines() -> list[str]:
    """JAX's backend and devices (if JAX is imported), ``nvidia-smi``'s GPUs, torch's CUDA
    device."""
    lines = []
    jax = sys.modules.get("jax")
    if jax is not None:
        devices = jax.devices()
        kinds = sorted({d.device_kind for d in devices})
        lines.append(f"jax: backend {jax.default_backend()}, {len(devices)} device(s): "
                     f"{', '.join(kinds)}")
    smi = shutil.which("nvidia-smi")
    if smi:
        try:
            out = subprocess.run([smi, "--query-gpu=name,driver_version,memory.total",
                                  "--format=csv,noheader"], capture_output=True, text=True,
                                 timeout=30).stdout.strip()
        except (OSError, subprocess.SubprocessError) as err:
            out = f"failed: {err}"
        lines.append(f"nvidia-smi: {out or 'no GPU listed'}")
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        lines.append(f"torch CUDA: {torch.cuda.get_device_name(0)}, CUDA {torch.version.cuda}, "
                     f"cuDNN TF32 {torch.backends.cudnn.allow_tf32}, matmul TF32 "
                     f"{torch.backends.cuda.matmul.allow_tf32}")
    return lines


def torch_device_choice(requested: str) -> str:
    """``cpu``, ``cuda`` or ``none``; ``auto`` is ``cuda`` when torch sees a GPU, ``cpu`` when it
    sees none, and ``none`` when torch is not installed."""
    if requested != "auto":
        return requested
    try:
        import torch
    except ImportError:
        return "none"
    return "cuda" if torch.cuda.is_available() else "cpu"


def torch_sync(device: str) -> Callable[[Any], Any]:
    """What waits for a torch result on ``device`` (CUDA kernels run asynchronously)."""
    if device == "cuda":
        import torch

        return lambda result: torch.cuda.synchronize()
    return lambda result: result


def machine_lines() -> list[str]:
    """CPU, cores, thread counts, library versions, accelerators, date and load: one block."""
    lines = [
        f"machine: {cpu_model()} | os.cpu_count()={os.cpu_count()} usable={usable_cores()} | "
        f"ISA: {vector_isa()} | {platform.system()} {platform.release()} | "
        f"Python {platform.python_version()}",
        "versions: " + " ".join(f"{p} {_version(p)}" for p in ("jax", "jaxlib", "flax", "optax",
                                                                 "torch")),
    ]
    try:
        import torch

        lines.append(f"threads: torch.get_num_threads()={torch.get_num_threads()} "
                     f"interop={torch.get_num_interop_threads()} "
                     f"(XLA CPU uses one thread per usable core: {usable_cores()})")
    except ImportError:
        pass
    lines += accelerator_lines()
    lines.append(f"date: {datetime.datetime.now().astimezone().isoformat(timespec='seconds')}")
    lines.append(load_line("start"))
    return lines


def print_machine() -> None:
    for line in machine_lines():
        print(line)
    print(flush=True)


def format_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A plain-text table (also valid Markdown): text left-aligned, numbers right-aligned."""
    def cell(value: Any) -> str:
        if isinstance(value, float):
            return f"{value:.2f}" if abs(value) < 1000 else f"{value:,.0f}"
        if isinstance(value, int) and not isinstance(value, bool):
            return f"{value:,}"
        return str(value)

    cells = [[cell(v) for v in row] for row in rows]
    numeric = [all(isinstance(row[i], (int, float)) for row in rows) for i in range(len(headers))]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]

    def line(values: Sequence[str]) -> str:
        parts = [v.rjust(w) if num else v.ljust(w)
                 for v, w, num in zip(values, widths, numeric)]
        return "| " + " | ".join(parts) + " |"

    rule = "|" + "|".join(("-" * (w + 1) + ":") if num else ("-" * (w + 2))
                          for w, num in zip(widths, numeric)) + "|"
    return "\n".join([line(headers), rule] + [line(r) for r in cells])


def ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator > 0 else float("nan")
