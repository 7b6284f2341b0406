"""Training-time augmentation policies, drawn deterministically per global batch.

Policies (``augment=`` in :func:`lightjax.data.build`; ``'auto'`` picks the dataset's own):

``'none'``            no augmentation.
``'crop'``            zero-pad by ``pad = max(1, round(H / 8))`` pixels (4 at 32x32) and take a
                      random HxW crop — a random translation of up to ``pad`` pixels. No flip.
``'cifar'``           ``'crop'`` + random horizontal flip (p = 0.5): the standard CIFAR recipe.
``'flip'``            random horizontal flip only.
``'inception_crop'``  "lite" Inception crop: a random box covering 25–100 % of the image area with
                      aspect ratio in [3/4, 4/3] (log-uniform), resized to HxW, + random flip.
                      On lazily decoded sources (ImageNet) the box is cut from the full-resolution
                      decoded image; on in-memory sources from the stored image.

Padding happens in [0, 1] pixel space before normalization (black border), as torchvision's
``RandomCrop(32, padding=4)`` does. The random numbers of a batch are drawn for the whole GLOBAL
batch from ``np.random.default_rng([seed, epoch, batch_index, ...])`` and each process applies its
slice, so results do not depend on the process count and a resumed epoch reproduces them.
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np

from lightjax.data import images as image_lib
from lightjax.errors import ValidationError

POLICIES = ("none", "crop", "cifar", "flip", "inception_crop")
ALLOWED = ("auto",) + POLICIES
FLIPPING = ("cifar", "flip", "inception_crop")

MIN_AREA = 0.25  # inception_crop "lite": torchvision's RandomResizedCrop uses 0.08
LOG_RATIO = (math.log(3 / 4), math.log(4 / 3))


def check_policy(policy: object, allow_auto: bool = True) -> str:
    allowed = ALLOWED if allow_auto else POLICIES
    if not isinstance(policy, str) or policy not in allowed:
        raise ValidationError(f"unknown augmentation policy {policy!r}; allowed: {', '.join(allowed)}")
    return policy


def pad_for(height: int) -> int:
    """Pad (= maximum translation) of the 'crop'/'cifar' policies: 4 pixels at 32x32."""
    return max(1, round(height / 8))


@dataclasses.dataclass
class Params:
    """Random choices for a run of examples; ``None`` where the policy does not use them."""
    offsets: np.ndarray | None = None  # (n, 2) int: crop top-left in the padded image
    flips: np.ndarray | None = None    # (n,) bool
    boxes: np.ndarray | None = None    # (n, 4) float: area fraction, log aspect, u, v

    def __getitem__(self, sl: slice) -> "Params":
        return Params(*(None if a is None else a[sl] for a in (self.offsets, self.flips,
                                                               self.boxes)))


def draw(policy: str, n: int, rng: np.random.Generator, height: int) -> Params:
    """Draw the random choices of ``policy`` for ``n`` examples (a whole global batch)."""
    p = Params()
    if policy in ("crop", "cifar"):
        p.offsets = rng.integers(0, 2 * pad_for(height) + 1, size=(n, 2))
    if policy == "inception_crop":
        p.boxes = np.stack([rng.uniform(MIN_AREA, 1.0, n), rng.uniform(*LOG_RATIO, n),
                            rng.uniform(0.0, 1.0, n), rng.uniform(0.0, 1.0, n)], axis=1)
    if policy in FLIPPING:
        p.flips = rng.random(n) < 0.5
    return p


def box(height: int, width: int, params: np.ndarray) -> tuple[int, int, int, int]:
    """(top, left, h, w) of an inception-crop box in a ``height x width`` image."""
    area, log_ratio, u, v = (float(x) for x in params)
    ratio = math.exp(log_ratio)
    target = area * height * width
    w = min(width, max(1, round(math.sqrt(target * ratio))))
    h = min(height, max(1, round(math.sqrt(target / ratio))))
    top = min(height - h, int(v * (height - h + 1)))
    left = min(width - w, int(u * (width - w + 1)))
    return top, left, h, w


def pad_crop(images: np.ndarray, offsets: np.ndarray, pad: int) -> np.ndarray:
    """Zero-pad (N, H, W, C) by ``pad`` and cut HxW at ``offsets`` (N, 2); shape is kept."""
    n, h, w, _ = images.shape
    padded = np.pad(images, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    out = np.empty_like(images)
    for i in range(n):
        dy, dx = int(offsets[i, 0]), int(offsets[i, 1])
        out[i] = padded[i, dy:dy + h, dx:dx + w]
    return out


def flip(images: np.ndarray, flags: np.ndarray) -> np.ndarray:
    """Mirror (left <-> right) the images where ``flags`` is True."""
    out = images.copy()
    out[flags] = images[flags][:, :, ::-1]
    return out


def apply(images: np.ndarray, params: Params, boxes_done: bool = False) -> np.ndarray:
    """Apply drawn ``params`` to float images (N, H, W, C) in [0, 1].

    ``boxes_done``: the source already cut the inception boxes while decoding."""
    n, h, w, _ = images.shape
    if params.boxes is not None and not boxes_done:
        images = np.stack([image_lib.resize(image_lib.crop(images[i], box(h, w, params.boxes[i])),
                                            (h, w)) for i in range(n)]) if n else images
    if params.offsets is not None:
        images = pad_crop(images, params.offsets, pad_for(h))
    if params.flips is not None:
        images = flip(images, params.flips)
    return images
