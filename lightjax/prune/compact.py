"""Compaction: slice pruned channels out and rebuild the model with explicit ``widths``.

``compact(model, variables, groups, group_masks)`` returns the *same model class* configured with
per-layer ``widths`` (so ``lightjax cost --widths ...`` and checkpoints agree) and variables in
which every pruned channel is gone: a producer's kernel output channels, its bias, the BN
scale/bias/statistics and learnable-activation parameters of those channels, the depthwise
kernels that follow, and every consumer's kernel input channels. The compact network computes
exactly what the masked one does (tested for every model family, train and eval mode).
"""
from __future__ import annotations

from typing import Any, Mapping

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from lightjax.prune import masking
from lightjax.prune.groups import ChannelGroups, widths_for
from lightjax.errors import InvalidTypeError, ValidationError


def kept_slots(groups: ChannelGroups, group_masks: masking.GroupMasks) -> np.ndarray:
    """(num_slots,) bool: which global slots the masks keep (validates the masks)."""
    masking.check(groups, group_masks)
    return np.concatenate([np.asarray(group_masks[g.name]).reshape(g.size) > 0.5
                           for g in groups.groups])


def _keep(slots: np.ndarray, kept: np.ndarray) -> np.ndarray:
    return np.nonzero([s < 0 or kept[s] for s in slots])[0]


def compact_widths(model: nn.Module, groups: ChannelGroups,
                   group_masks: masking.GroupMasks) -> tuple[int, ...]:
    """The ``widths`` of the compact model (``model.prunable_layers()`` order)."""
    _check_model(model, groups)
    return widths_for(model, groups.outputs, kept_slots(groups, group_masks))


def _check_model(model: nn.Module, groups: ChannelGroups) -> None:
    if type(model).__name__ != groups.model_name:
        raise ValidationError(f"these channel groups belong to a {groups.model_name}, not a "
                         f"{type(model).__name__}")
    if not hasattr(model, "resolved_widths"):
        raise InvalidTypeError(f"{type(model).__name__} has no `widths`; compaction rebuilds the model "
                        f"with explicit per-layer widths")
    if tuple(model.resolved_widths()) != groups.widths:
        raise ValidationError(f"the model's widths {model.resolved_widths()} differ from those the "
                         f"groups were derived for {groups.widths}")


def slice_variables(groups: ChannelGroups, variables: Mapping[str, Any],
                    kept: np.ndarray) -> dict[str, Any]:
    """Every collection except ``masks`` with pruned channels removed."""
    out = {}
    for collection, tree in variables.items():
        if collection == "masks":
            continue
        flat = flax.traverse_util.flatten_dict(flax.core.unfreeze(tree), sep="/")
        out[collection] = flax.traverse_util.unflatten_dict(
            {k: _slice_leaf(groups, kept, k, v) for k, v in flat.items()}, sep="/")
    return out


def _slice_leaf(groups: ChannelGroups, kept: np.ndarray, key: str, leaf: Any) -> Any:
    leaf = jnp.asarray(leaf)
    for axis, slots in groups.leaf_axes(key, leaf.shape):
        leaf = jnp.take(leaf, _keep(slots, kept), axis=axis)
    return leaf


def compact(model: nn.Module, variables: Mapping[str, Any], groups: ChannelGroups,
            group_masks: masking.GroupMasks,
            input_shape: tuple[int, ...] | None = None) -> tuple[nn.Module, dict[str, Any]]:
    """(compact model, its variables). ``model`` may be the masked or the plain model; the result
    has no mask hook. ``input_shape`` (NHWC) checks the sliced variables against the compact
    model's own ``init`` shapes (default: 8x8 images with the model's input channels)."""
    model = masking.unmasked(model)
    _check_model(model, groups)
    kept = kept_slots(groups, group_masks)
    widths = widths_for(model, groups.outputs, kept)
    small = model.clone(widths=widths)
    new_vars = slice_variables(groups, variables, kept)
    channels = getattr(model, "input_channels", 3)
    shape = input_shape or (1, 8, 8, channels)
    expected = jax.eval_shape(lambda: small.init(jax.random.PRNGKey(0),
                                                 jnp.zeros(shape, jnp.float32), train=False))
    want = {c: flax.traverse_util.flatten_dict(flax.core.unfreeze(t), sep="/")
            for c, t in expected.items()}
    for c, tree in new_vars.items():
        got = flax.traverse_util.flatten_dict(tree, sep="/")
        if c not in want:
            continue
        for k, v in got.items():
            if k not in want[c] or tuple(want[c][k].shape) != tuple(v.shape):
                raise ValidationError(f"compaction mismatch at {c}/{k}: sliced {tuple(v.shape)}, the "
                                 f"compact model expects "
                                 f"{tuple(want[c][k].shape) if k in want[c] else 'nothing'}")
    return small, new_vars
