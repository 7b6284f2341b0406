"""Packed-bit inference of a binarized model: XNOR + popcount in place of the float +-1 layers.

``PackedModel(model, variables, layers)`` pre-packs the weights of the binarized standard,
pointwise, transposed-conv and dense layers (signs along the input-channel axis, 32 per uint32
word, :mod:`lightjax.binary.packed`) with their scales ``alpha``, and ``apply(x)`` runs the model
with those layers computed as ``alpha * (K - 2 popcount(x XOR w))`` (+ bias) on the packed signs
of their inputs — intercepting the layers' calls (``flax.linen.intercept_methods``), so the model
code is unchanged; XNOR-Net's input scale ``K`` multiplies after the popcount. Every other layer
(first and last layers, depthwise convs, layers with HORQ or partially selected inputs) runs as
in training. The result equals ``model.apply`` up to
float rounding of the scale (tested).
"""
from __future__ import annotations

from typing import Any

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from lightjax.binary import hooks, packed
from lightjax.layers import conv as conv_lib
from lightjax.layers import rules as rules_lib

#: Layer kinds computed with packed bits.
PACKED_KINDS = ("standard", "pointwise", "transposed", "fc")


def _full(selection: Any) -> bool:
    return selection is None or bool(np.all(np.asarray(selection) == 1))


class PackedModel:
    """A binarized model whose eligible binary layers compute with packed bits.

    Args:
      model: the model with its binarization rule (``Experiment.model``).
      variables: its variables, the ``binary`` selections included.
      layers: ``{path: kind}`` of the binarized layers (e.g. from the plug-in's cost rows).
      binary_inputs: whether the layers' inputs are +-1 signs (BNN/XNOR, order 1).
      input_scale: whether the layers multiply by XNOR-Net's ``K`` (computed from the float input,
        :func:`lightjax.binary.hooks.input_scale`, after the popcount).
    """

    def __init__(self, model: nn.Module, variables: dict[str, Any], layers: dict[str, str],
                 binary_inputs: bool = True, input_scale: bool = False):
        self.model = model
        self.input_scale = input_scale
        self.variables = variables
        params = flax.traverse_util.flatten_dict(flax.core.unfreeze(variables["params"]),
                                                 sep="/")
        selections = flax.traverse_util.flatten_dict(
            flax.core.unfreeze(variables.get(hooks.COLLECTION, {})), sep="/")
        self.packed: dict[str, dict[str, Any]] = {}
        for path, kind in layers.items():
            if kind not in PACKED_KINDS or not binary_inputs:
                continue
            if not (_full(selections.get(f"{path}/weights"))
                    and _full(selections.get(f"{path}/inputs"))):
                continue
            kernel = np.asarray(params[f"{path}/kernel"], np.float32)
            alpha = np.abs(kernel).reshape(-1, kernel.shape[-1]).mean(axis=0)
            bits = packed.pack(jnp.asarray(kernel.T if kind == "fc" else kernel),
                               axis=-1 if kind == "fc" else -2)
            self.packed[path] = {"bits": bits, "alpha": jnp.asarray(alpha),
                                 "channels": kernel.shape[-2], "kind": kind,
                                 "bias": params.get(f"{path}/bias")}

    @property
    def paths(self) -> tuple[str, ...]:
        """The layers computed with packed bits."""
        return tuple(self.packed)

    def _layer(self, module: Any, x: jax.Array, entry: dict[str, Any]) -> jax.Array:
        kind, c = entry["kind"], entry["channels"]
        xb = packed.pack(x)
        if kind == "fc":
            y = packed.dense(xb, entry["bits"], c)
        elif kind == "transposed":
            y = packed.conv_transpose(xb, entry["bits"], c, module.kernel_size, module.strides,
                                      module.padding)
        else:
            k = getattr(module, "kernel_size", 1)
            pad = rules_lib.resolve(module.rules, "/".join(module.path), module.kind,
                                    pad_value=module.pad_value).pad_value if k > 1 else 0.0
            y = packed.conv2d(xb, entry["bits"], c, k, module.strides,
                              getattr(module, "padding", "symmetric"), pad)
        y = y.astype(jnp.float32) * entry["alpha"]
        if self.input_scale:
            y = y * hooks.input_scale(module, x).astype(y.dtype)
        if entry["bias"] is not None:
            y = y + entry["bias"]
        return y

    def apply(self, x: jax.Array, **kwargs: Any) -> jax.Array:
        """``model.apply(variables, x, train=False)`` with the packed layers."""

        def interceptor(next_fun, args, kw, context):
            module = context.module
            if context.method_name == "__call__" and isinstance(module, conv_lib.LAYER_TYPES):
                path = "/".join(module.path)
                if path in self.packed:
                    return self._layer(module, args[0], self.packed[path])
            return next_fun(*args, **kw)

        with nn.intercept_methods(interceptor):
            return self.model.apply(self.variables, x, train=False, **kwargs)


def from_plugin(model: nn.Module, variables: dict[str, Any], plugin: Any) -> PackedModel:
    """The packed model of a run's binarization plug-in (its layers and input mode)."""
    settings = plugin.settings
    binary_inputs = settings.binarizes_inputs and settings.order == 1
    return PackedModel(model, variables, {row.name: row.type for row in plugin.layers},
                       binary_inputs, settings.input_scale)

