"""Parameter and multiply-add (MAC) accounting, counted from the module itself.

``count(model, input_shape)`` traces ``model.init`` abstractly (``jax.eval_shape``: no FLOPs, no
memory) with a flax method interceptor that records, for every convolution, dense layer, norm and
parameterised activation, the layer's actual variables and its actual input and output shapes.
Nothing is recomputed from a hand-written formula, so the count cannot drift from the model.

Convention (what papers call "FLOPs" or "Mult-Adds"):

- MACs count conv and FC multiply-adds only: ``kernel.size * H_out * W_out`` for every conv
  (= k²·Cin/groups·Cout·Hout·Wout, depthwise k²·C·Hout·Wout), ``kernel.size * H_in * W_in``
  for a transposed conv (= k²·Cin·Cout·Hin·Win: every input pixel is multiplied by the whole
  kernel) and ``in * out`` for dense layers, per image. Bias adds, BN, activations, pooling and
  residual adds are not counted.
- params are the trainable parameters (the ``params`` collection): conv/dense kernels and biases,
  BN scale and shift, trainable activation parameters. BN running statistics are excluded.

Types: ``standard``, ``depthwise``, ``pointwise``, ``group``, ``transposed``, ``fc`` (the
layers' ``kind``), ``norm`` (BN), ``activation`` (trainable activations), ``other`` (parameters
of any module this module does not know; reported so that totals always equal the model's real
parameter count).
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from lightjax.layers import activations
from lightjax.layers import conv as conv_lib

TYPES = (*conv_lib.LAYER_KINDS, "norm", "activation", "other")


@dataclasses.dataclass(frozen=True)
class LayerCost:
    """One layer: its module path, type, parameter count and MACs per image."""

    name: str
    type: str
    params: int
    macs: int
    kernel_shape: tuple[int, ...] | None = None
    output_shape: tuple[int, ...] | None = None
    input_shape: tuple[int, ...] | None = None

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class CostReport:
    """Totals and per-layer rows for one model at one input shape (MACs per image)."""

    input_shape: tuple[int, ...]
    layers: tuple[LayerCost, ...]

    @property
    def params(self) -> int:
        return sum(layer.params for layer in self.layers)

    @property
    def macs(self) -> int:
        return sum(layer.macs for layer in self.layers)

    def by_type(self) -> dict[str, dict[str, int]]:
        """{type: {'params': n, 'macs': n, 'layers': n}} for the types present, in TYPES order."""
        out: dict[str, dict[str, int]] = {}
        for t in TYPES:
            rows = [layer for layer in self.layers if layer.type == t]
            if rows:
                out[t] = {"params": sum(r.params for r in rows),
                          "macs": sum(r.macs for r in rows), "layers": len(rows)}
        return out

    def as_dict(self) -> dict[str, Any]:
        return {"input_shape": list(self.input_shape), "params": self.params, "macs": self.macs,
                "by_type": self.by_type(), "layers": [layer.as_dict() for layer in self.layers]}


def _size(tree: Any) -> int:
    return sum(math.prod(leaf.shape) for leaf in jax.tree.leaves(tree))


def _module_type(module: nn.Module) -> str | None:
    if isinstance(module, conv_lib.LAYER_TYPES):
        return module.kind
    if isinstance(module, (nn.BatchNorm, nn.LayerNorm, nn.GroupNorm)):
        return "norm"
    if isinstance(module, (activations.RReLU, activations.Swish)):
        return "activation"
    return None


def count(model: nn.Module, input_shape: Sequence[int], **call_kwargs: Any) -> CostReport:
    """Count params and MACs of ``model`` for inputs of ``input_shape`` (NHWC, batch included).

    MACs are per image (independent of the batch size). ``call_kwargs`` go to ``model.__call__``
    (``train=False`` by default).
    """
    input_shape = tuple(int(d) for d in input_shape)
    call_kwargs.setdefault("train", False)
    records: list[tuple[str, str, Any, Any, Any]] = []

    def interceptor(next_fun, args, kwargs, context):
        out = next_fun(*args, **kwargs)
        module = context.module
        if context.method_name == "__call__":
            kind = _module_type(module)
            if kind is not None:
                x = args[0] if args else kwargs.get("x")
                records.append(("/".join(module.path), kind, module.variables,
                                getattr(x, "shape", None), out.shape))
        return out

    def init():
        with nn.intercept_methods(interceptor):
            return model.init(jax.random.PRNGKey(0), jnp.zeros(input_shape, jnp.float32),
                              **call_kwargs)

    variables = jax.eval_shape(init)
    rows, seen = [], set()
    for path, kind, module_vars, in_shape, out_shape in records:
        if path in seen:  # a module called twice shares its parameters: count them once
            continue
        seen.add(path)
        own = module_vars.get("params", {})
        params = _size(own)
        macs = 0
        kernel_shape = None
        if kind not in ("norm", "activation"):
            kernel_shape = tuple(own["kernel"].shape)
            # a transposed conv multiplies every INPUT pixel by the whole kernel
            shape = in_shape if kind == "transposed" else out_shape
            positions = math.prod(shape[1:-1]) if len(shape) > 2 else 1
            macs = math.prod(kernel_shape) * positions
        rows.append(LayerCost(path, kind, params, macs, kernel_shape, tuple(out_shape),
                              None if in_shape is None else tuple(in_shape)))
    unattributed = _size(variables.get("params", {})) - sum(r.params for r in rows)
    if unattributed:
        rows.append(LayerCost("(unattributed)", "other", unattributed, 0))
    return CostReport(input_shape, tuple(rows))


def format_table(report: CostReport, per_layer: bool = False) -> str:
    """Readable table: per type, share of MACs and params (MobileNet paper Table 2 style)."""
    lines: list[str] = []
    if per_layer:
        lines.append(f"{'layer':<36} {'type':<10} {'params':>12} {'MACs':>15}")
        lines += [f"{r.name:<36} {r.type:<10} {r.params:>12,} {r.macs:>15,}" for r in report.layers]
        lines.append("")
    total_p, total_m = report.params, report.macs
    lines.append(f"{'type':<12} {'layers':>6} {'params':>12} {'params %':>9} {'MACs':>15} "
                 f"{'MACs %':>8}")
    for t, v in report.by_type().items():
        lines.append(f"{t:<12} {v['layers']:>6} {v['params']:>12,} "
                     f"{100 * v['params'] / max(total_p, 1):>8.2f}% {v['macs']:>15,} "
                     f"{100 * v['macs'] / max(total_m, 1):>7.2f}%")
    lines.append(f"{'total':<12} {len(report.layers):>6} {total_p:>12,} {'100.00%':>9} "
                 f"{total_m:>15,} {'100.00%':>8}")
    lines.append("MACs: conv + FC multiply-adds per image; params: trainable (BN scale/shift "
                 "included, running statistics excluded).")
    return "\n".join(lines)
