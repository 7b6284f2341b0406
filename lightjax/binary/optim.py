"""Optax integration for binary training: clip latent weights to [-c, c] after every step.

With a straight-through estimator whose gradient is 0 beyond ``clip_value``, a latent weight that
drifts past the bound never changes sign again ("starves"); ``weight_clip`` keeps it in range::

    tx = optax.chain(optax.adam(1e-3), weight_clip(1.0, mask=is_binary_kernel))

It rewrites the updates so that ``optax.apply_updates(params, updates)`` lands in ``[-c, c]``.
"""
from __future__ import annotations

import math
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax

from lightjax.errors import ValidationError


def _clip_leaf(update: jax.Array, param: jax.Array, c: float) -> jax.Array:
    """``update`` where ``param + update`` is inside [-c, c] (bit for bit), else the update that
    lands on the bound, ``clip(param + update) - param``, moved one ulp inwards where rounding
    would overshoot it."""
    if not all(jnp.issubdtype(a.dtype, jnp.inexact) for a in (update, param)):
        return update
    dtype = jnp.result_type(param, update)
    p, u = param.astype(dtype), update.astype(dtype)
    new = p + u
    inside = jnp.abs(new) <= c
    to_bound = jnp.clip(new, -c, c) - p
    landed = p + to_bound
    inf = jnp.array(jnp.inf, dtype)
    to_bound = jnp.where(landed > c, jnp.nextafter(to_bound, -inf),
                         jnp.where(landed < -c, jnp.nextafter(to_bound, inf), to_bound))
    return jnp.where(inside, update, to_bound.astype(update.dtype))


def weight_clip(clip_value: float = 1.0,
                mask: Any | Callable[[Any], Any] | None = None) -> optax.GradientTransformation:
    """Chain *after* the optimizer: clip ``params + updates`` to ``[-clip_value, clip_value]``.

    ``updates' = clip(params + updates, -c, c) - params`` for the selected leaves; entries whose
    step stays in range and unselected leaves keep the inner updates bit for bit. ``mask`` selects
    leaves as in ``optax.masked``: ``None`` (all), a pytree of bools like the params (or a prefix),
    or a callable ``params -> such a pytree``. ``update`` needs ``params``. The bound is exact when
    params and updates share a dtype; non-float leaves pass through.
    """
    array = np.asarray(clip_value)
    if array.ndim or array.dtype.kind not in "iuf" or not 0 < float(array) < math.inf:
        raise ValidationError(f"weight_clip: clip_value must be a positive finite number, "
                              f"got {clip_value!r}")
    c = float(clip_value)

    def clip_update(updates, state, params=None):
        return jax.tree.map(lambda u, p: _clip_leaf(u, p, c), updates, params), state

    inner = optax.GradientTransformation(lambda params: optax.EmptyState(), clip_update)
    if mask is not None:
        inner = optax.masked(inner, mask)

    def update(updates, state, params=None):
        if params is None:
            raise ValidationError("weight_clip: update needs the params: "
                                  "tx.update(grads, state, params)")
        return inner.update(updates, state, params)

    return optax.GradientTransformation(inner.init, update)
