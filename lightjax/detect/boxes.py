"""Box geometry in ``jax.numpy``: ``(..., 4)`` boxes ``(x_min, y_min, x_max, y_max)``."""
from __future__ import annotations

import jax
import jax.numpy as jnp

EPS = 1e-9


def area(boxes: jax.Array) -> jax.Array:
    """(..., 4) -> (...): width * height (0 for inverted boxes)."""
    wh = jnp.maximum(boxes[..., 2:] - boxes[..., :2], 0.0)
    return wh[..., 0] * wh[..., 1]


def iou(a: jax.Array, b: jax.Array) -> jax.Array:
    """Pairwise IoU: (..., N, 4) x (..., M, 4) -> (..., N, M)."""
    lo = jnp.maximum(a[..., :, None, :2], b[..., None, :, :2])
    hi = jnp.minimum(a[..., :, None, 2:], b[..., None, :, 2:])
    wh = jnp.maximum(hi - lo, 0.0)
    inter = wh[..., 0] * wh[..., 1]
    union = area(a)[..., :, None] + area(b)[..., None, :] - inter
    return inter / jnp.maximum(union, EPS)


def wh_iou(a: jax.Array, b: jax.Array) -> jax.Array:
    """IoU of boxes sharing one centre, from their sizes: (..., N, 2) x (M, 2) -> (..., N, M)."""
    inter = (jnp.minimum(a[..., :, None, 0], b[:, 0]) * jnp.minimum(a[..., :, None, 1], b[:, 1]))
    union = a[..., :, None, 0] * a[..., :, None, 1] + b[:, 0] * b[:, 1] - inter
    return inter / jnp.maximum(union, EPS)


def to_center(boxes: jax.Array) -> jax.Array:
    """(x_min, y_min, x_max, y_max) -> (center x, center y, width, height)."""
    return jnp.concatenate([(boxes[..., :2] + boxes[..., 2:]) / 2, boxes[..., 2:] - boxes[..., :2]],
                           axis=-1)


def to_corners(boxes: jax.Array) -> jax.Array:
    """(center x, center y, width, height) -> (x_min, y_min, x_max, y_max)."""
    half = boxes[..., 2:] / 2
    return jnp.concatenate([boxes[..., :2] - half, boxes[..., :2] + half], axis=-1)
