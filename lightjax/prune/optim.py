"""Optax integration: pruned weights receive no update and keep no optimizer state.

``masked_updates(inner)`` wraps any optax transformation. Its ``update`` takes the current
parameter masks (a pytree like the params, 0/1 arrays broadcastable to each leaf, e.g. per output
channel) as the extra argument ``param_masks``. Gradients of pruned entries are zeroed before the
inner transformation, its outputs are masked, and every params-shaped part of its state (momentum,
Adam moments, ...) is masked too, so momentum accumulated before pruning cannot revive a filter.
Pruned weights that are zero stay exactly zero (``apply_updates`` adds exactly 0).
"""
from __future__ import annotations

from typing import Any, NamedTuple

import jax
import optax
from lightjax.errors import ValidationError


class MaskedState(NamedTuple):
    inner: Any


def _mask(tree: Any, masks: Any) -> Any:
    return jax.tree.map(lambda x, m: x * m.astype(x.dtype), tree, masks)


def masked_updates(inner: optax.GradientTransformation) -> optax.GradientTransformationExtraArgs:
    """Wrap ``inner`` so masked (pruned) parameter entries never move."""

    def init(params):
        return MaskedState(inner.init(params))

    def update(updates, state, params=None, *, param_masks=None, **extra):
        if param_masks is None:
            raise ValidationError("masked_updates: pass param_masks=<pytree of 0/1 masks like params>")
        grads = _mask(updates, param_masks)
        new_updates, inner_state = inner.update(grads, state.inner, params)
        inner_state = optax.tree_map_params(
            inner, lambda leaf, m: leaf * m.astype(leaf.dtype), inner_state, param_masks,
            transform_non_params=lambda leaf: leaf)
        return _mask(new_updates, param_masks), MaskedState(inner_state)

    return optax.GradientTransformationExtraArgs(init, update)
