"""One MobileNetV1 training step: lightjax (per depthwise implementation) versus PyTorch.

A step is forward + backward + SGD-momentum update with BatchNorm in train mode and mean softmax
cross-entropy on integer labels, on one fixed batch of random float32 images:

- lightjax: ``models.create('mobilenet_v1', layers=LayerFactory(depthwise_impl=impl))``; the step
  is one ``jax.jit`` with the train state (params, batch_stats, optax ``sgd(0.1, momentum=0.9)``
  state) donated, as a real training loop would do;
- PyTorch: ``benchmarks/torch_models.MobileNetV1`` (same architecture; the script asserts equal
  parameter counts and equal eval-mode logits with lightjax's weights copied over), eager,
  ``torch.optim.SGD(lr=0.1, momentum=0.9)``, ``zero_grad(set_to_none=True)``, channels_last
  memory format (the NHWC peer) and default NCHW; ``--torch-compile`` adds a ``torch.compile``
  row.

``fwd ms`` is a forward pass alone with BatchNorm in train mode (batch statistics), no gradients.
Both frameworks start from the same weights and see the same data. JAX runs on CPU unless
``JAX_PLATFORMS`` says otherwise (``cuda``, or empty for JAX's choice, as ``gpu.sh`` does); the
PyTorch rows run on ``--torch-device`` (``cpu``, ``cuda``, ``auto``, or ``none`` for no rows and no
torch import). ``auto`` (lightjax's choice on the backend) compiles the same program as the
implementation it resolves to, so its row repeats that row's timing instead of compiling again.

    python benchmarks/train_step.py               # alpha 1 and 0.25, stem stride 2 and 1
    python benchmarks/train_step.py --quick       # smoke run
    python benchmarks/train_step.py --alpha 0.25 --stem-stride 1 --impls shifted
    JAX_PLATFORMS=cuda python benchmarks/train_step.py --impls xla shifted auto --torch-device cuda
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from typing import Any, Callable, NamedTuple

os.environ.setdefault("JAX_PLATFORMS", "cpu")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import flax.linen as nn  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402
from lightjax import models  # noqa: E402
from lightjax.layers import LayerFactory  # noqa: E402
from lightjax.layers import depthwise as depthwise_lib  # noqa: E402
from timing import (Timing, format_table, load_line, match_torch_threads,  # noqa: E402
                    print_machine, ratio, time_calls, torch_device_choice, torch_sync)

LEARNING_RATE = 0.1
MOMENTUM = 0.9
#: torch layout name -> memory format name (``torch.<name>``).
TORCH_LAYOUTS = {"channels_last": "channels_last", "NCHW": "contiguous_format"}
#: The row the throughput ratios are taken against (same NHWC memory layout as JAX); without
#: PyTorch rows, the lightjax ``xla`` row.
TORCH_PEER = "torch channels_last"
JAX_PEER = "lightjax xla"


@dataclasses.dataclass(frozen=True)
class Setting:
    alpha: float
    stem_stride: int
    num_classes: int

    def lightjax_model(self, impl: str) -> nn.Module:
        return models.create("mobilenet_v1", num_classes=self.num_classes, alpha=self.alpha,
                             stem_stride=self.stem_stride,
                             layers=LayerFactory(depthwise_impl=impl))

    def torch_model(self) -> Any:
        import torch_models

        return torch_models.MobileNetV1(self.num_classes, self.alpha, self.stem_stride)


@dataclasses.dataclass(frozen=True)
class Batch:
    images: np.ndarray  # (N, H, W, 3) float32
    labels: np.ndarray  # (N,) int


@dataclasses.dataclass(frozen=True)
class Result:
    name: str
    fwd: Timing
    step: Timing


def make_batch(batch: int, size: int, num_classes: int, seed: int = 0) -> Batch:
    rng = np.random.default_rng(seed)
    return Batch(rng.standard_normal((batch, size, size, 3), dtype=np.float32),
                 rng.integers(0, num_classes, batch))


# ----------------------------------------------------------------------------------------------
# lightjax
# ----------------------------------------------------------------------------------------------
class TrainState(NamedTuple):
    params: Any
    batch_stats: Any
    opt_state: Any


def lightjax_functions(model: Any, tx: optax.GradientTransformation
                       ) -> tuple[Callable[..., Any], Callable[..., Any]]:
    """Jitted ``forward(variables, x)`` (train-mode BN) and ``train_step(state, x, y)``."""
    def forward(variables: Any, x: jax.Array) -> tuple[jax.Array, Any]:
        return model.apply(variables, x, train=True, mutable=["batch_stats"])

    def loss_fn(params: Any, batch_stats: Any, x: jax.Array, y: jax.Array):
        logits, updates = forward({"params": params, "batch_stats": batch_stats}, x)
        loss = optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
        return loss, updates["batch_stats"]

    def train_step(state: TrainState, x: jax.Array, y: jax.Array) -> tuple[TrainState, jax.Array]:
        grad_fn = jax.value_and_grad(loss_fn, has_aux=True)
        (loss, batch_stats), grads = grad_fn(state.params, state.batch_stats, x, y)
        updates, opt_state = tx.update(grads, state.opt_state, state.params)
        return TrainState(optax.apply_updates(state.params, updates), batch_stats,
                          opt_state), loss

    return jax.jit(forward), jax.jit(train_step, donate_argnums=0)


def init_variables(setting: Setting, batch: Batch) -> dict[str, Any]:
    model = setting.lightjax_model("xla")
    return jax.jit(model.init, static_argnames="train")(
        jax.random.key(0), jnp.asarray(batch.images[:1]), train=False)


def parameter_count(params: Any) -> int:
    return sum(int(np.prod(p.shape)) for p in jax.tree_util.tree_leaves(params))


def time_lightjax(setting: Setting, impl: str, variables: dict[str, Any], batch: Batch,
                  repeats: int, warmup: int) -> Result:
    tx = optax.sgd(LEARNING_RATE, momentum=MOMENTUM)
    forward, train_step = lightjax_functions(setting.lightjax_model(impl), tx)
    x, y = jnp.asarray(batch.images), jnp.asarray(batch.labels)
    fwd = time_calls(lambda: forward(variables, x), repeats, warmup, jax.block_until_ready)

    # Fresh device copies: the step donates (consumes) its state argument.
    params, stats = jax.tree_util.tree_map(jnp.array, (variables["params"],
                                                       variables["batch_stats"]))
    state = [TrainState(params, stats, tx.init(params))]

    def step() -> tuple[TrainState, jax.Array]:
        state[0], loss = train_step(state[0], x, y)
        return state[0], loss

    initial = jax.tree_util.tree_leaves(state[0])
    start = time.perf_counter()
    jax.block_until_ready(step())
    compile_s = time.perf_counter() - start
    if not all(leaf.is_deleted() for leaf in initial):
        print(f"  WARNING: lightjax {impl}: the train state was not donated", flush=True)
    timing = time_calls(step, repeats, max(warmup - 1, 0), jax.block_until_ready)
    print(f"  lightjax {impl}: first step (compile) {compile_s:.1f} s", flush=True)
    return Result(f"lightjax {impl}", fwd, timing)


def time_lightjax_impls(setting: Setting, impls: list[str], variables: dict[str, Any],
                        batch: Batch, repeats: int, warmup: int) -> list[Result]:
    """One row per implementation; ``auto`` reuses the row of what it resolves to (the same
    compiled program), measuring it only if that implementation is not listed."""
    measured: dict[str, Result] = {}
    order = sorted(dict.fromkeys(impls), key=lambda i: i == "auto")  # concrete ones first
    for impl in order:
        concrete = depthwise_lib.resolve(impl)
        if concrete not in measured:
            measured[concrete] = time_lightjax(setting, concrete, variables, batch, repeats,
                                               warmup)
    rows = []
    for impl in dict.fromkeys(impls):
        r = measured[depthwise_lib.resolve(impl)]
        rows.append(r if impl != "auto" else dataclasses.replace(
            r, name=f"lightjax auto ({depthwise_lib.resolve(impl)})"))
    return rows


# ----------------------------------------------------------------------------------------------
# PyTorch
# ----------------------------------------------------------------------------------------------
def torch_inputs(batch: Batch, layout: Any, device: str = "cpu") -> tuple[Any, Any]:
    import torch

    x = torch.from_numpy(batch.images.transpose(0, 3, 1, 2)).to(device).contiguous(
        memory_format=layout)
    return x, torch.from_numpy(batch.labels).long().to(device)


def torch_reference(setting: Setting, variables: dict[str, Any]) -> Any:
    import torch_models

    model = setting.torch_model()
    torch_models.load_lightjax_variables(model, variables)
    return model


def time_torch(setting: Setting, layout_name: str, variables: dict[str, Any], batch: Batch,
               repeats: int, warmup: int, compile_model: bool = False,
               device: str = "cpu") -> Result:
    import torch
    import torch.nn.functional as F

    layout = getattr(torch, TORCH_LAYOUTS[layout_name])
    model = torch_reference(setting, variables).to(device=device, memory_format=layout).train()
    opt = torch.optim.SGD(model.parameters(), lr=LEARNING_RATE, momentum=MOMENTUM)
    net = torch.compile(model) if compile_model else model
    x, y = torch_inputs(batch, layout, device)
    sync = torch_sync(device)

    def forward() -> Any:
        with torch.no_grad():
            return net(x)

    def step() -> Any:
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(net(x), y)
        loss.backward()
        opt.step()
        return loss

    name = f"torch {layout_name}" + (" compiled" if compile_model else "") + (
        "" if device == "cpu" else f" ({device})")
    return Result(name, time_calls(forward, repeats, warmup, sync),
                  time_calls(step, repeats, warmup, sync))


# ----------------------------------------------------------------------------------------------
# Equivalence check, table
# ----------------------------------------------------------------------------------------------
def check_equivalent(setting: Setting, variables: dict[str, Any], batch: Batch) -> int:
    """Same parameter count and same eval-mode logits as lightjax (torch on CPU, JAX at full
    float32 precision: no TF32 on GPUs); returns the count."""
    import torch
    import torch_models

    count = parameter_count(variables["params"])
    torch_model = torch_reference(setting, variables).eval()
    torch_count = torch_models.parameter_count(torch_model)
    assert count == torch_count, (
        f"{setting}: lightjax has {count:,} parameters, torch {torch_count:,}")
    images = batch.images[:4]
    with jax.default_matmul_precision("highest"):
        want = np.asarray(setting.lightjax_model("xla").apply(variables, jnp.asarray(images)))
    with torch.no_grad():
        got = torch_model(torch_inputs(Batch(images, batch.labels[:4]),
                                       torch.contiguous_format)[0]).numpy()
    err = float(np.abs(got - want).max()) / (float(np.abs(want).max()) or 1.0)
    assert err < 1e-3, f"{setting}: torch and lightjax logits differ (max rel. error {err:.1e})"
    return count


HEADERS = ("alpha", "stem", "implementation", "params", "fwd ms", "step ms", "img/s",
           "vs torch CL")


def headers(with_torch: bool) -> tuple[str, ...]:
    return HEADERS if with_torch else HEADERS[:-1] + ("vs lightjax xla",)


def table_rows(setting: Setting, params: int, batch_size: int,
               results: list[Result]) -> list[tuple[Any, ...]]:
    peer = next((r for r in results if r.name.startswith(TORCH_PEER)), None) or next(
        (r for r in results if r.name == JAX_PEER), results[0])
    rows = []
    for r in results:
        throughput = batch_size / (r.step.median_ms / 1e3)
        rows.append((setting.alpha, setting.stem_stride, r.name, params,
                     r.fwd.median_ms, r.step.median_ms, throughput,
                     ratio(peer.step.median_ms, r.step.median_ms)))
    return rows


def run_setting(setting: Setting, args: argparse.Namespace) -> list[tuple[Any, ...]]:
    batch = make_batch(args.batch, args.size, setting.num_classes)
    variables = init_variables(setting, batch)
    with_torch = args.torch_device != "none"
    params = (check_equivalent(setting, variables, batch) if with_torch
              else parameter_count(variables["params"]))
    print(f"timing alpha={setting.alpha} stem stride {setting.stem_stride} "
          f"({params:,} parameters{', same in torch' if with_torch else ''}) ...", flush=True)
    results = time_lightjax_impls(setting, args.impls, variables, batch, args.repeats,
                                  args.warmup)
    if with_torch:
        results += [time_torch(setting, name, variables, batch, args.repeats, args.warmup,
                               device=args.torch_device) for name in TORCH_LAYOUTS]
    if args.torch_compile and with_torch:
        try:
            results.append(time_torch(setting, "channels_last", variables, batch, args.repeats,
                                      args.warmup + 2, compile_model=True,
                                      device=args.torch_device))
        except Exception as e:  # noqa: BLE001 - optional row; report why it is missing
            print(f"  torch.compile failed, row skipped: {type(e).__name__}: {e}", flush=True)
    return table_rows(setting, params, args.batch, results)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--size", type=int, default=32, help="input height and width")
    parser.add_argument("--num-classes", type=int, default=10)
    parser.add_argument("--alpha", type=float, nargs="+", default=[1.0, 0.25])
    parser.add_argument("--stem-stride", type=int, nargs="+", default=[2, 1], choices=(1, 2))
    parser.add_argument("--impls", nargs="+", default=["shifted", "xla"],
                        choices=("shifted", "xla", "auto"), help="lightjax depthwise impls")
    parser.add_argument("--repeats", type=int, default=10, help="timed steps; median reported")
    parser.add_argument("--warmup", type=int, default=3,
                        help="untimed steps before timing (the first one compiles)")
    parser.add_argument("--torch-compile", action="store_true",
                        help="add a torch.compile(model) channels_last row")
    parser.add_argument("--torch-device", default="cpu", choices=("cpu", "cuda", "auto", "none"),
                        help="where the PyTorch rows run (auto: cuda if torch sees a GPU; "
                             "none: no PyTorch rows, torch not needed)")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: batch 8, alpha 0.25, stem stride 2, 2 repeats")
    args = parser.parse_args(argv)
    args.torch_device = torch_device_choice(args.torch_device)
    if args.quick:
        args.batch, args.alpha, args.stem_stride = 8, [0.25], [2]
        args.repeats, args.warmup = 2, 1
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    with_torch = args.torch_device != "none"
    if with_torch:
        match_torch_threads()
    print(f"# {jax.default_backend()} backend: MobileNetV1 train step, float32, batch "
          f"{args.batch}, {args.size}x{args.size} inputs, {args.num_classes} classes, "
          f"SGD(lr={LEARNING_RATE}, momentum={MOMENTUM}): median of {args.repeats} steps after "
          f"{args.warmup} warm-up steps")
    print_machine()
    rows = []
    for alpha in args.alpha:
        for stem_stride in args.stem_stride:
            rows += run_setting(Setting(alpha, stem_stride, args.num_classes), args)
    print()
    print(format_table(headers(with_torch), rows))
    print("\nstep: forward + backward + SGD update, BN in train mode. fwd: forward alone "
          "(train-mode BN, no gradients).")
    if with_torch:
        print(f"vs torch CL: throughput ratio, img/s(row) / img/s({TORCH_PEER}"
              f"{'' if args.torch_device == 'cpu' else ' on ' + args.torch_device}); > 1 means "
              f"faster than PyTorch.")
    else:
        print(f"vs lightjax xla: throughput ratio, img/s(row) / img/s({JAX_PEER}); > 1 means "
              f"faster than XLA's grouped convolution.")
    print(load_line("end"))


if __name__ == "__main__":
    main()
