"""Vectorised rasterisation of the synthetic ``shapes`` scenes (see :mod:`lightjax.data.shapes`).

A scene is up to ``MAX_SHAPES`` shapes on a textured background, described in image fractions
(so the same scene can be drawn at any resolution). Each shape is a signed distance field (SDF,
in pixels, negative inside) evaluated at pixel centres: a pixel belongs to a shape's mask when its
centre is inside (SDF <= 0); the image blends the shape's colour with coverage
``clip(0.5 - SDF, 0, 1)``, a one-pixel anti-aliased edge. Shapes are drawn in slot order, so
later ones occlude earlier ones.
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np

from lightjax.data import boxes as box_lib

KINDS = ("circle", "square", "triangle", "ring", "cross")
MAX_SHAPES = 8  # slots per scene
MIN_VISIBLE = 0.25  # with ``visibility=True`` a shape needs this fraction of its pixels visible

# Shape geometry relative to the size r (a bounding-circle radius, fraction of the image side).
SQUARE_HALF_SIDE = 0.8       # corners at 1.13 r
RING_MID, RING_HALF_WIDTH = 0.75, 0.25  # outer radius r, inner 0.5 r
CROSS_HALF_LENGTH, CROSS_HALF_WIDTH = 0.95, 0.3
TRIANGLE_NORMALS = np.array([[math.cos(a), math.sin(a)] for a in
                             (math.pi / 2, math.pi / 2 + 2 * math.pi / 3,
                              math.pi / 2 + 4 * math.pi / 3)], np.float32)  # inradius r / 2


@dataclasses.dataclass
class Scenes:
    """``n`` scenes of ``MAX_SHAPES`` slots: per slot (n, K) arrays, colours (n, K, 3) RGB in
    [0, 1]; background (n, 3) base colour and (n, 2, 5) gratings (cycles per image, orientation,
    phase, amplitude, tinted 0/1); ``tint`` (n, 3); ``noise`` per-pixel Gaussian sigma."""

    kind: np.ndarray
    cx: np.ndarray
    cy: np.ndarray
    size: np.ndarray
    angle: np.ndarray
    colour: np.ndarray
    active: np.ndarray
    base: np.ndarray
    gratings: np.ndarray
    tint: np.ndarray
    noise: float

    def head(self, m: int) -> "Scenes":
        """The first ``m`` scenes."""
        return dataclasses.replace(self, **{f.name: getattr(self, f.name)[:m]
                                            for f in dataclasses.fields(self)
                                            if f.name != "noise"})


def hsv_to_rgb(h: np.ndarray, s: np.ndarray, v: np.ndarray) -> np.ndarray:
    """HSV in [0, 1] (any equal shapes) -> RGB (..., 3) in [0, 1]."""
    k = (np.array([5.0, 3.0, 1.0]) + h[..., None] * 6.0) % 6.0
    return v[..., None] - (v * s)[..., None] * np.clip(np.minimum(k, 4.0 - k), 0.0, 1.0)


def _sdf(kind: int, u: np.ndarray, v: np.ndarray, r: np.ndarray) -> np.ndarray:
    """SDF of ``KINDS[kind]`` at shape-frame coordinates u, v (pixels), size r (pixels)."""
    if kind == 0:
        return np.sqrt(u * u + v * v) - r
    if kind == 1:
        return np.maximum(np.abs(u), np.abs(v)) - SQUARE_HALF_SIDE * r
    if kind == 2:
        d = [u * nx + v * ny for nx, ny in TRIANGLE_NORMALS]
        return np.maximum(np.maximum(d[0], d[1]), d[2]) - 0.5 * r
    if kind == 3:
        return np.abs(np.sqrt(u * u + v * v) - RING_MID * r) - RING_HALF_WIDTH * r
    au, av = np.abs(u), np.abs(v)
    long, wide = CROSS_HALF_LENGTH * r, CROSS_HALF_WIDTH * r
    return np.minimum(np.maximum(au - long, av - wide), np.maximum(au - wide, av - long))


def distance_fields(scenes: Scenes, resolution: int) -> np.ndarray:
    """(K, n, H, W) float32 SDFs in pixels; +inf for empty slots."""
    n, k = scenes.kind.shape
    grid = (np.arange(resolution, dtype=np.float32) + 0.5)
    out = np.empty((k, n, resolution, resolution), np.float32)
    for s in range(k):
        out[s, ~scenes.active[:, s]] = np.inf
        for kind in range(len(KINDS)):
            idx = np.nonzero(scenes.active[:, s] & (scenes.kind[:, s] == kind))[0]
            if not idx.size:
                continue
            col = lambda a: (a[idx, s] * resolution).astype(np.float32)[:, None, None]  # noqa
            dx = grid[None, None, :] - col(scenes.cx)
            dy = grid[None, :, None] - col(scenes.cy)
            if KINDS[kind] in ("circle", "ring"):  # rotation-invariant
                u, v = dx, dy
            else:
                c = np.cos(scenes.angle[idx, s]).astype(np.float32)[:, None, None]
                sn = np.sin(scenes.angle[idx, s]).astype(np.float32)[:, None, None]
                u, v = dx * c + dy * sn, dy * c - dx * sn
            out[s, idx] = _sdf(kind, u, v, col(scenes.size))
    return out


def visible_slots(sdf: np.ndarray, active: np.ndarray) -> np.ndarray:
    """(n, K) bool: active shapes covering a pixel centre with at least ``MIN_VISIBLE`` of their
    pixels not occluded by later slots. Dropping the others never lowers a kept one's share."""
    k = sdf.shape[0]
    covered = np.zeros(sdf.shape[1:], bool)
    keep = np.zeros(active.shape, bool)
    for s in range(k - 1, -1, -1):
        inside = sdf[s] <= 0
        area = inside.sum(axis=(1, 2))
        seen = (inside & ~covered).sum(axis=(1, 2))
        keep[:, s] = active[:, s] & (area > 0) & (seen >= MIN_VISIBLE * area)
        covered |= inside
    return keep


def background(scenes: Scenes, resolution: int) -> np.ndarray:
    """(n, H, W, 3) float32: base colour + two sinusoidal gratings (one grey, one tinted).

    A grating ``amp * sin(a x + b y + phase)`` is evaluated separably as
    ``sin(a x + phase) cos(b y) + cos(a x + phase) sin(b y)`` (x, y in image fractions)."""
    t = (np.arange(resolution, dtype=np.float64) + 0.5) / resolution
    n = len(scenes.base)
    img = np.empty((n, resolution, resolution, 3), np.float32)
    img[:] = scenes.base[:, None, None, :]
    for g in range(scenes.gratings.shape[1]):
        freq, theta, phase, amp, tinted = (scenes.gratings[:, g, i, None] for i in range(5))
        a, b = 2 * math.pi * freq * np.cos(theta), 2 * math.pi * freq * np.sin(theta)
        ax = a * t[None, :] + phase  # (n, W)
        wave = ((amp * np.sin(ax)).astype(np.float32)[:, None, :]
                * np.cos(b * t[None, :]).astype(np.float32)[:, :, None])
        wave += ((amp * np.cos(ax)).astype(np.float32)[:, None, :]
                 * np.sin(b * t[None, :]).astype(np.float32)[:, :, None])
        colour = np.where(tinted > 0, scenes.tint, 1.0).astype(np.float32)
        img += wave[..., None] * colour[:, None, None, :]
    return img


def render(scenes: Scenes, resolution: int, rng: np.random.Generator, visibility: bool
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Draw ``scenes`` at ``resolution``.

    Returns images uint8 (n, H, W, 3); masks uint8 (n, H, W) with 0 = background and 1 + kind
    where a drawn shape is visible; boxes float32 (n, K, 4) (x_min, y_min, x_max, y_max) of each
    drawn shape's full pixel extent (occluded parts included) as fractions of the side; kinds
    int32 (n, K) (-1 where nothing is drawn), both compacted to the front in drawing order.
    ``visibility``: drop mostly hidden shapes (see :func:`visible_slots`), else draw every active
    slot. The per-pixel noise is drawn from ``rng`` last.
    """
    sdf = distance_fields(scenes, resolution)
    drawn = visible_slots(sdf, scenes.active) if visibility else scenes.active.copy()
    n, k = scenes.kind.shape
    img = background(scenes, resolution)
    mask = np.zeros((n, resolution, resolution), np.uint8)
    boxes = np.zeros((n, k, 4), np.float32)
    flat = img.reshape(-1, 3)
    colour = scenes.colour.astype(np.float32)
    for s in range(k):
        on = drawn[:, s][:, None, None]
        edge = (sdf[s] < 0.5) & on  # pixels the shape covers at least partly
        where = np.flatnonzero(edge)
        cov = (np.float32(0.5) - sdf[s].reshape(-1)[where]).clip(0.0, 1.0)[:, None]
        rows_of = where // (resolution * resolution)
        flat[where] += cov * (colour[rows_of, s] - flat[where])
        inside = (sdf[s] <= 0) & on
        mask[inside] = np.broadcast_to((scenes.kind[:, s, None, None] + 1).astype(np.uint8),
                                       inside.shape)[inside]
        rows, cols = inside.any(axis=2), inside.any(axis=1)
        drawn[:, s] &= rows.any(axis=1)
        boxes[:, s] = np.stack([cols.argmax(1), rows.argmax(1),
                                resolution - cols[:, ::-1].argmax(1),
                                resolution - rows[:, ::-1].argmax(1)], axis=1) / resolution
    noise = rng.standard_normal(img.shape, dtype=np.float32)
    noise *= np.float32(scenes.noise)
    img += noise
    np.clip(img, 0.0, 1.0, out=img)
    img *= np.float32(255.0)
    images = np.rint(img, out=img).astype(np.uint8)
    boxes, kinds, _ = box_lib.compact(boxes, scenes.kind, drawn)
    return images, mask, boxes, kinds
