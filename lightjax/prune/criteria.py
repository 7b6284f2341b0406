"""Filter importance criteria and mask-aware selection of the filters to prune.

Kernels are in lightjax's layout, output channels on the last axis: (k, k, Cin/g, Cout) for convs,
(Cin, Cout) for dense layers. Every criterion returns one score per output channel, shape (Cout,);
**lower scores are pruned first**.

- ``l0``: number of non-zero weights of the filter.
- ``l1``: sum of absolute weights; ``l2``: Euclidean norm.
- ``fpgm`` (He et al., filter pruning via geometric median): sum of Euclidean distances from the
  filter to every other filter of the layer; filters near the geometric median have the lowest
  score (most replaceable by the others).
- ``bn_gamma``: |BN scale| of the channel (pass the BN ``scale`` vector, shape (C,)).

:func:`select` picks new filters to prune among those still active, so filters pruned in earlier
rounds are never chosen again and never count towards the new ones.
"""
from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
from lightjax.errors import ValidationError

Criterion = Callable[[jax.Array], jax.Array]


def _filters(kernel: jax.Array) -> jax.Array:
    """(Cout, fan_in) float32 view of a kernel with output channels last."""
    if kernel.ndim < 1:
        raise ValidationError(f"kernel must have an output-channel axis, got shape {kernel.shape}")
    return jnp.moveaxis(kernel, -1, 0).reshape(kernel.shape[-1], -1).astype(jnp.float32)


def l0(kernel: jax.Array) -> jax.Array:
    return (_filters(kernel) != 0).sum(axis=1).astype(jnp.float32)


def l1(kernel: jax.Array) -> jax.Array:
    return jnp.abs(_filters(kernel)).sum(axis=1)


def l2(kernel: jax.Array) -> jax.Array:
    return jnp.sqrt((_filters(kernel) ** 2).sum(axis=1))


def fpgm(kernel: jax.Array) -> jax.Array:
    f = _filters(kernel)
    sq = (f ** 2).sum(axis=1)
    d2 = jnp.maximum(sq[:, None] + sq[None, :] - 2.0 * f @ f.T, 0.0)
    return jnp.sqrt(d2).sum(axis=1)


def bn_gamma(scale: jax.Array) -> jax.Array:
    if scale.ndim != 1:
        raise ValidationError(f"bn_gamma takes the BN scale vector (C,), got shape {scale.shape}")
    return jnp.abs(scale.astype(jnp.float32))


CRITERIA: dict[str, Criterion] = {"l0": l0, "l1": l1, "l2": l2, "fpgm": fpgm,
                                  "bn_gamma": bn_gamma}


def get(name: str) -> Criterion:
    if name not in CRITERIA:
        raise ValidationError(f"unknown pruning criterion {name!r}; allowed: {', '.join(CRITERIA)}")
    return CRITERIA[name]


def kept_count(channels: int, ratio: float, round_to: int = 1) -> int:
    """Channels kept when pruning ``ratio`` of ``channels``, rounded up to a multiple of
    ``round_to`` (never more than ``channels``, at least one multiple)."""
    if not 0.0 <= ratio < 1.0:
        raise ValidationError(f"pruning ratio must be in [0, 1), got {ratio!r}")
    if round_to < 1:
        raise ValidationError(f"round_to must be >= 1, got {round_to!r}")
    keep = channels - int(ratio * channels)
    keep = -(-keep // round_to) * round_to
    return max(min(keep, channels), min(round_to, channels))


def select(scores: jax.Array, mask: jax.Array, keep: int) -> jax.Array:
    """New 0/1 mask keeping the ``keep`` highest-scoring *active* channels.

    ``mask`` is the current mask (1 active, 0 pruned): pruned channels stay pruned whatever their
    score. Ties break towards the lower channel index (kept first). ``keep`` larger than the
    number of active channels keeps them all.
    """
    if scores.shape != mask.shape or scores.ndim != 1:
        raise ValidationError(f"scores {scores.shape} and mask {mask.shape} must be equal 1-D shapes")
    if keep < 1:
        raise ValidationError(f"pruning would leave the layer with {keep} channels; at least 1 must stay")
    active = mask > 0
    ranked = jnp.where(active, scores.astype(jnp.float32), -jnp.inf)
    order = jnp.argsort(-ranked, stable=True)  # best first, pruned channels last
    chosen = jnp.zeros(scores.shape, bool).at[order[:keep]].set(True)
    return (chosen & active).astype(mask.dtype)
