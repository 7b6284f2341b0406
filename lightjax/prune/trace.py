"""Channel tracing: which producer channels reach which input channel of every module.

Structured pruning needs to know, for every convolution/dense layer and every module with
per-channel variables (BatchNorm, learnable activations), which *producer channels* its input
channels carry: through residual adds, concatenations, splits, channel shuffles, pooling and SE
gating. Instead of a hand-written table per model, :func:`trace_channels` measures it:

1. every convolution / dense output is replaced by ``ones + probe`` (its real value is cut off with
   ``stop_gradient``), where ``probe`` is a slice of one flat vector, one entry per output channel;
   each entry is a channel *id*;
2. the model runs in eval mode (BN is then a per-channel affine map) and a forward-mode derivative
   with respect to one-hot probe tangents (``jax.vmap`` over a chunk of ids, ``jax.jvp``) tells, for
   each recorded module input, which ids reach each of its channels: exactly those with a non-zero
   tangent there.

Between two cut points the network only applies per-channel affine maps, activations (with
non-zero slope at the positive operating point the probes set), additions, products, pooling,
concatenation, slicing and permutations, so the non-zero pattern of the tangent is the channel
dependency structure. It costs one jitted, vmapped forward pass per chunk of ids at a tiny
spatial size; no convolution is evaluated (their outputs are constants).
"""
from __future__ import annotations

import dataclasses
from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from lightjax.layers import conv as conv_lib
from lightjax.errors import ValidationError

LAYER_TYPES = conv_lib.LAYER_TYPES


def is_layer(module: nn.Module) -> bool:
    """A lightjax convolution or dense layer (has a kernel with output channels last)."""
    return isinstance(module, LAYER_TYPES)


@dataclasses.dataclass(frozen=True)
class LayerRecord:
    """One call of a convolution/dense layer.

    Attributes:
      path: module path, e.g. ``'unit3/pw/conv'``.
      kind: ``'standard'``, ``'pointwise'``, ``'group'``, ``'depthwise'``, ``'transposed'`` or
        ``'fc'``.
      groups: group count of a grouped conv (1 otherwise; depthwise: its channel count).
      in_channels / out_channels: channel counts.
      first_id: the ids of its output channels are ``first_id + c``.
    """

    path: str
    kind: str
    groups: int
    in_channels: int
    out_channels: int
    first_id: int


@dataclasses.dataclass(frozen=True)
class ChannelTrace:
    """Result of :func:`trace_channels`.

    Attributes:
      layers: the convolution/dense layers in call order.
      inputs: module path -> per input channel, the sorted tuple of ids reaching it (an empty
        tuple: only the network input reaches it). Recorded for every layer and for every other
        module that owns variables (BN, learnable activations).
      num_ids: total number of output channel ids.
    """

    layers: tuple[LayerRecord, ...]
    inputs: dict[str, tuple[tuple[int, ...], ...]]
    num_ids: int

    def layer(self, path: str) -> LayerRecord:
        for rec in self.layers:
            if rec.path == path:
                return rec
        raise KeyError(path)

    def owner(self, channel_id: int) -> tuple[LayerRecord, int]:
        """(layer, output channel) of an id."""
        for rec in self.layers:
            if rec.first_id <= channel_id < rec.first_id + rec.out_channels:
                return rec, channel_id - rec.first_id
        raise KeyError(channel_id)


def _variable_owners(variables: Any) -> set[str]:
    owners = set()
    for collection in variables.values():
        for path, _ in jax.tree_util.tree_flatten_with_path(collection)[0]:
            owners.add("/".join(str(getattr(k, "key", k)) for k in path[:-1]))
    return owners


def _groups_of(module: nn.Module, in_channels: int) -> int:
    if isinstance(module, conv_lib.DepthwiseConv):
        return in_channels
    return getattr(module, "groups", 1)


def strip_hooks(model: nn.Module) -> nn.Module:
    """``model`` without compression hooks and rules (when it has a ``layers`` factory)."""
    factory = getattr(model, "layers", None)
    if factory is None or not dataclasses.is_dataclass(factory):
        return model
    if getattr(factory, "kernel_hook", None) is None and \
            getattr(factory, "input_hook", None) is None and not getattr(factory, "rules", ()):
        return model
    fields = {f.name for f in dataclasses.fields(factory)}
    cleared = {k: v for k, v in (("kernel_hook", None), ("input_hook", None), ("rules", ()))
               if k in fields}
    return model.clone(layers=dataclasses.replace(factory, **cleared))


def trace_channels(model: nn.Module, input_shape: Sequence[int], chunk: int = 512,
                   **call_kwargs: Any) -> ChannelTrace:
    """Trace the channel dependencies of ``model`` on inputs of ``input_shape`` (NHWC).

    ``input_shape``'s spatial size only needs to be valid for the model; a small one is fastest.
    Compression hooks and rules are removed first (:func:`strip_hooks`). ``call_kwargs`` go to the model's
    ``__call__`` (``train=False`` is forced).
    """
    model = strip_hooks(model)
    input_shape = tuple(int(d) for d in input_shape)
    call_kwargs = dict(call_kwargs, train=False)
    x = jnp.zeros(input_shape, jnp.float32)
    # every variable = 1: BN is then the identity up to 1/sqrt(1 + eps), learnable activations
    # have positive slopes; convolution kernels are never used
    shapes = jax.eval_shape(lambda: model.init(jax.random.PRNGKey(0), x, **call_kwargs))
    variables = jax.tree.map(lambda s: jnp.ones(s.shape, s.dtype), shapes)
    owners = _variable_owners(variables)

    layers: list[LayerRecord] = []
    out_shapes: dict[str, tuple[tuple[int, ...], Any]] = {}
    record_order: list[str] = []

    def count_layers(next_fun, args, kwargs, context):
        out = next_fun(*args, **kwargs)
        module = context.module
        if context.method_name == "__call__" and is_layer(module):
            path = "/".join(module.path)
            if all(rec.path != path for rec in layers):
                first = layers[-1].first_id + layers[-1].out_channels if layers else 0
                layers.append(LayerRecord(path, module.kind, _groups_of(module, args[0].shape[-1]),
                                          int(args[0].shape[-1]), int(out.shape[-1]), first))
                out_shapes[path] = (out.shape, out.dtype)
        return out

    with nn.intercept_methods(count_layers):
        jax.eval_shape(lambda: model.apply(variables, x, **call_kwargs))
    if not layers:
        raise ValidationError(f"{type(model).__name__} has no lightjax convolution or dense layers to "
                         f"trace; build it from lightjax.layers")
    num_ids = layers[-1].first_id + layers[-1].out_channels
    first_ids = {rec.path: rec.first_id for rec in layers}

    def forward(probe: jax.Array) -> dict[str, jax.Array]:
        captured: dict[str, jax.Array] = {}

        def interceptor(next_fun, args, kwargs, context):
            module = context.module
            if context.method_name != "__call__" or not args or not hasattr(args[0], "shape"):
                return next_fun(*args, **kwargs)
            path = "/".join(module.path)
            if (is_layer(module) or path in owners) and path not in captured:
                captured[path] = args[0]
            if not is_layer(module):
                return next_fun(*args, **kwargs)
            # the layer is not evaluated: its output is a constant plus its probes
            shape, dtype = out_shapes[path]
            start = first_ids[path]
            return (jnp.ones(shape, jnp.float32) + probe[start:start + shape[-1]]).astype(dtype)

        with nn.intercept_methods(interceptor):
            model.apply(variables, x, **call_kwargs)
        # any channel's dependence, summed over batch and space: (C,) per module
        return {p: jnp.abs(v).reshape(-1, v.shape[-1]).sum(0) for p, v in captured.items()}

    probe0 = jnp.zeros((num_ids,), jnp.float32)

    @jax.jit
    def reach(ids: jax.Array) -> dict[str, jax.Array]:
        def one(i):
            tangent = jnp.zeros((num_ids,), jnp.float32).at[i].set(1.0, mode="drop")
            return jax.jvp(forward, (probe0,), (tangent,))[1]
        return jax.vmap(one)(ids)

    chunk = max(1, min(chunk, num_ids))
    hits: dict[str, list[list[int]]] = {}
    for start in range(0, num_ids, chunk):
        ids = np.arange(start, start + chunk)
        ids = np.where(ids < num_ids, ids, num_ids)  # padding lanes probe nothing
        out = jax.device_get(reach(jnp.asarray(ids)))
        for path, tangents in out.items():
            lists = hits.setdefault(path, [[] for _ in range(tangents.shape[1])])
            lanes, channels = np.nonzero(tangents)
            for lane, ch in zip(lanes, channels):
                if ids[lane] < num_ids:
                    lists[ch].append(int(ids[lane]))
            record_order.append(path) if path not in record_order else None
    inputs = {p: tuple(tuple(sorted(ch)) for ch in hits[p]) for p in record_order}
    return ChannelTrace(tuple(layers), inputs, num_ids)
