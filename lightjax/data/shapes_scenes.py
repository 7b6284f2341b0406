"""Random scene distributions of the synthetic ``shapes`` dataset, per family and difficulty.

Two families: 'scenes' (the segmentation and detection views: several shapes of any colour) and
'target' (the classification view: one target shape in one of three colours, on top of smaller
distractors). Every random number is drawn in a fixed order from the generator passed in, with
array shapes that depend only on the number of scenes, so a seed always gives the same scenes,
at any resolution. Sizes and positions are fractions of the image side.
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np

from lightjax.data.shapes_render import KINDS, MAX_SHAPES, Scenes, hsv_to_rgb

DIFFICULTIES = ("easy", "medium", "hard")
COLOURS = ("red", "green", "blue")  # hue centres 0, 1/3, 2/3 of the classification view
GRATINGS = 2


@dataclasses.dataclass(frozen=True)
class Level:
    """One difficulty: shape counts (min, max), size r range, colour saturation floor, hue jitter
    (fraction of the hue circle), texture amplitude, pixel noise sigma, distractor/target size
    ratio range (classification)."""

    count: tuple[int, int]
    size: tuple[float, float]
    saturation: float
    hue_jitter: float
    texture: float
    noise: float
    ratio: tuple[float, float] = (0.0, 0.0)


SCENES = {
    "easy": Level((1, 3), (0.12, 0.25), 0.6, 0.0, 0.05, 0.02),
    "medium": Level((2, 5), (0.08, 0.22), 0.45, 0.0, 0.12, 0.05),
    "hard": Level((3, 8), (0.05, 0.20), 0.3, 0.0, 0.2, 0.08),
}
# count = number of distractors; size = the target's r
TARGET = {
    "easy": Level((0, 1), (0.20, 0.30), 0.6, 0.03, 0.05, 0.02, (0.3, 0.5)),
    "medium": Level((0, 2), (0.14, 0.24), 0.5, 0.05, 0.08, 0.04, (0.3, 0.6)),
    "hard": Level((1, 3), (0.10, 0.20), 0.45, 0.07, 0.12, 0.05, (0.35, 0.7)),
}


def _background(rng: np.random.Generator, n: int, level: Level) -> dict[str, np.ndarray]:
    base = hsv_to_rgb(rng.uniform(0, 1, n), rng.uniform(0, 0.25, n), rng.uniform(0.2, 0.8, n))
    gratings = np.stack([rng.uniform(1, 6, (n, GRATINGS)), rng.uniform(0, math.pi, (n, GRATINGS)),
                         rng.uniform(0, 2 * math.pi, (n, GRATINGS)),
                         level.texture * rng.uniform(0.5, 1, (n, GRATINGS)),
                         np.broadcast_to(np.arange(GRATINGS) % 2, (n, GRATINGS))], axis=-1)
    return {"base": base, "gratings": gratings, "tint": rng.uniform(-1, 1, (n, 3))}


def draw_scenes(rng: np.random.Generator, n: int, difficulty: str) -> Scenes:
    """Scenes of the segmentation/detection views: 'count' shapes of random kind, size, position
    (centre anywhere in the image, so shapes may be cut by the border), angle and colour."""
    lv = SCENES[difficulty]
    k = MAX_SHAPES
    count = rng.integers(lv.count[0], lv.count[1] + 1, n)
    colour = hsv_to_rgb(rng.uniform(0, 1, (n, k)), rng.uniform(lv.saturation, 1, (n, k)),
                        rng.uniform(0.45, 1, (n, k)))
    return Scenes(kind=rng.integers(0, len(KINDS), (n, k)), cx=rng.uniform(0, 1, (n, k)),
                  cy=rng.uniform(0, 1, (n, k)), size=rng.uniform(*lv.size, (n, k)),
                  angle=rng.uniform(0, 2 * math.pi, (n, k)), colour=colour,
                  active=np.arange(k)[None, :] < count[:, None],
                  noise=lv.noise, **_background(rng, n, lv))


def draw_targets(rng: np.random.Generator, n: int, difficulty: str
                 ) -> tuple[Scenes, np.ndarray]:
    """Scenes of the classification view and their labels ``kind * 3 + colour`` (int32 (n,)).

    Slots ``0 .. d-1`` hold d distractors, slot d the target, drawn last (on top) and entirely
    inside the image; distractors are ``ratio`` times the target's size, of any kind and of the
    same three colours, so only size tells the target apart."""
    lv = TARGET[difficulty]
    k = MAX_SHAPES
    distractors = rng.integers(lv.count[0], lv.count[1] + 1, n)
    kind = rng.integers(0, len(KINDS), (n, k))
    colour_id = rng.integers(0, len(COLOURS), (n, k))
    hue = (colour_id / len(COLOURS) + rng.uniform(-lv.hue_jitter, lv.hue_jitter, (n, k))) % 1.0
    colour = hsv_to_rgb(hue, rng.uniform(lv.saturation, 1, (n, k)), rng.uniform(0.45, 1, (n, k)))
    target = rng.uniform(*lv.size, n)
    size = target[:, None] * rng.uniform(*lv.ratio, (n, k))
    cx, cy = rng.uniform(0, 1, (n, k)), rng.uniform(0, 1, (n, k))
    rows = np.arange(n)
    size[rows, distractors] = target
    margin = 1.15 * target  # the square's corner reaches 1.13 r
    cx[rows, distractors] = margin + cx[rows, distractors] * (1 - 2 * margin)
    cy[rows, distractors] = margin + cy[rows, distractors] * (1 - 2 * margin)
    scenes = Scenes(kind=kind, cx=cx, cy=cy, size=size, angle=rng.uniform(0, 2 * math.pi, (n, k)),
                    colour=colour, active=np.arange(k)[None, :] <= distractors[:, None],
                    noise=lv.noise, **_background(rng, n, lv))
    labels = kind[rows, distractors] * len(COLOURS) + colour_id[rows, distractors]
    return scenes, labels.astype(np.int32)
