"""Masks: group masks -> the ``masks`` variable collection and per-parameter masks.

A pruning state is a dict of *group masks*, ``{group name: (size,) 0/1 float32}`` (see
:mod:`lightjax.prune.groups`). It is an ordinary pytree: checkpointed, sharded and vmapped like
params. Two things are derived from it, inside ``jit`` and ``vmap`` (index gathers only):

- :func:`layer_masks`: the flax ``masks`` collection, one ``input`` mask per convolution/dense
  layer, read by :class:`MaskInputs` (installed as a rule with :func:`masked`). Every layer
  multiplies its input channels by it, so a pruned channel contributes nothing downstream even
  though its BN shift (beta) makes it non-zero after BN: the masked network computes exactly what
  the compact one does, in train and eval mode. (With a rule's ``pad_value`` c != 0 a masked
  input channel is still padded with c; its contribution vanishes because :func:`apply` and
  ``masked_updates`` keep the consumer's weights of that channel at zero.)
- :func:`param_masks`: a params-like tree of 0/1 masks (a producer's output channels, a
  consumer's input channels, BN scale/bias of pruned channels) for
  :func:`lightjax.prune.optim.masked_updates` and for zeroing pruned weights (:func:`apply`).
"""
from __future__ import annotations

import dataclasses
from typing import Any, Mapping

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from lightjax.layers import hooks
from lightjax.layers.factory import LayerFactory
from lightjax.layers.rules import Rule
from lightjax.prune.groups import ChannelGroups
from lightjax.errors import InvalidTypeError, ValidationError

GroupMasks = Mapping[str, Any]


@dataclasses.dataclass(frozen=True)
class MaskInputs:
    """Input hook: ``x * masks[<layer>/input]`` (after an optional inner hook).

    The mask variable is created as ones at ``init``; pass the real ones with
    ``apply({'params': ..., 'masks': layer_masks(groups, group_masks)}, ...)``. :func:`masked`
    installs it as the last rule of the model's factory, so every other input hook (e.g.
    binarization) runs first and the mask multiplies its result.
    """

    inner: hooks.InputHook | None = None

    def __call__(self, layer: nn.Module, x: jax.Array, train: bool = False) -> jax.Array:
        if self.inner is not None:
            x = self.inner(layer, x, train)
        mask = layer.variable("masks", "input", lambda: jnp.ones((x.shape[-1],), jnp.float32))
        return x * mask.value.astype(x.dtype)


def _is_mask_rule(rule: Rule) -> bool:
    return isinstance(rule.input_hook, MaskInputs)


def _factory(model: nn.Module) -> LayerFactory:
    factory = getattr(model, "layers", None)
    if not isinstance(factory, LayerFactory):
        raise InvalidTypeError(f"{type(model).__name__} has no `layers` LayerFactory field; build it "
                               f"from lightjax.layers with a `layers: LayerFactory` field")
    return factory


def masked(model: nn.Module) -> nn.Module:
    """``model`` with :class:`MaskInputs` installed as the last rule of its layer factory
    (every layer; after all other input hooks). Idempotent."""
    factory = _factory(model)
    if isinstance(factory.input_hook, MaskInputs) or any(map(_is_mask_rule, factory.rules)):
        return model
    rule = Rule(input_hook=MaskInputs())
    return model.clone(layers=dataclasses.replace(factory, rules=factory.rules + (rule,)))


def unmasked(model: nn.Module) -> nn.Module:
    """``model`` without :class:`MaskInputs` (other hooks and rules are kept)."""
    factory = getattr(model, "layers", None)
    if not isinstance(factory, LayerFactory):
        return model
    rules = tuple(r for r in factory.rules if not _is_mask_rule(r))
    input_hook = factory.input_hook
    if isinstance(input_hook, MaskInputs):  # installed by hand as the catch-all hook
        input_hook = input_hook.inner
    if rules == factory.rules and input_hook is factory.input_hook:
        return model
    return model.clone(layers=dataclasses.replace(factory, rules=rules, input_hook=input_hook))


def check(groups: ChannelGroups, group_masks: GroupMasks) -> None:
    """``ValueError`` unless ``group_masks`` fit ``groups``: same names and sizes, 0/1 values,
    fixed groups all ones, at least one channel kept in every group. Runs on concrete arrays."""
    if not isinstance(group_masks, Mapping):
        raise InvalidTypeError(f"group masks must be a dict {{group name: 0/1 array}}, got "
                        f"{type(group_masks).__name__}")
    names = set(groups.names)
    unknown = sorted(set(group_masks) - names)
    missing = sorted(names - set(group_masks))
    if unknown or missing:
        raise ValidationError(f"masks do not fit this {groups.model_name} model (from another "
                         f"architecture or configuration?): unknown groups {unknown[:5]}, missing "
                         f"groups {missing[:5]}")
    for g in groups.groups:
        m = np.asarray(group_masks[g.name])
        if m.shape != (g.size,):
            raise ValidationError(f"mask of group {g.name} has shape {m.shape}, expected ({g.size},) "
                             f"(masks from another architecture or width?)")
        if not np.all((m == 0) | (m == 1)):
            raise ValidationError(f"mask of group {g.name} must contain only 0 and 1")
        if not m.any():
            raise ValidationError(f"mask of group {g.name} prunes all {g.size} channels; at least one "
                             f"must stay")
        if not g.prunable and not m.all():
            raise ValidationError(f"group {g.name} cannot be pruned ({g.reason}) but its mask prunes "
                             f"{int(g.size - m.sum())} channels")


def flat(groups: ChannelGroups, group_masks: GroupMasks) -> jax.Array:
    """All group masks concatenated in group order (global slot order)."""
    return jnp.concatenate([jnp.asarray(group_masks[g.name], jnp.float32).reshape(g.size)
                            for g in groups.groups])


def _gather(slots: np.ndarray, all_masks: jax.Array) -> jax.Array:
    return jnp.where(jnp.asarray(slots) < 0, 1.0, all_masks[jnp.asarray(np.maximum(slots, 0))])


def _nest(flat_tree: dict[str, Any]) -> dict[str, Any]:
    return flax.traverse_util.unflatten_dict(flat_tree, sep="/")


def layer_masks(groups: ChannelGroups, group_masks: GroupMasks) -> dict[str, Any]:
    """The ``masks`` collection: ``{<layer path>: {'input': (Cin,)}}`` nested by module."""
    all_masks = flat(groups, group_masks)
    return _nest({f"{path}/input": _gather(groups.inputs[path], all_masks)
                  for path in groups.kinds})


def param_masks(groups: ChannelGroups, group_masks: GroupMasks, params: Any) -> Any:
    """0/1 masks shaped like (broadcastable to) every leaf of ``params``."""
    all_masks = flat(groups, group_masks)
    out = {}
    for key, leaf in flax.traverse_util.flatten_dict(flax.core.unfreeze(params), sep="/").items():
        mask = jnp.ones((), jnp.float32)
        for axis, slots in groups.leaf_axes(key, leaf.shape):
            shape = [1] * (leaf.ndim - axis)
            shape[0] = len(slots)
            mask = mask * _gather(slots, all_masks).reshape(shape)
        out[key] = mask
    return _nest(out)


def apply(variables: Mapping[str, Any], groups: ChannelGroups,
          group_masks: GroupMasks) -> dict[str, Any]:
    """``variables`` with the ``masks`` collection set and pruned parameters zeroed."""
    out = dict(variables)
    pm = param_masks(groups, group_masks, variables["params"])
    out["params"] = jax.tree.map(lambda p, m: p * m.astype(p.dtype), variables["params"], pm)
    out["masks"] = layer_masks(groups, group_masks)
    return out
