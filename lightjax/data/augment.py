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

Every geometric field moves with the pixels (:mod:`lightjax.data.fields`): a segmentation mask
is flipped, padded with ``IGNORE_LABEL`` and cropped, or cut and resized nearest-neighbour; boxes
are mirrored, shifted or mapped into the crop, clipped to the image, and boxes left with no area
inside the image are removed (the rest move to the front, ``box_count`` follows, and so do the
per-box extras such as ``box_difficult``). Labels are unchanged.

Padding happens in [0, 1] pixel space before normalization (black border), as torchvision's
``RandomCrop(32, padding=4)`` does. The random numbers of a batch are drawn for the whole GLOBAL
batch from ``np.random.default_rng([seed, epoch, batch_index, ...])`` and each process applies its
slice, so results do not depend on the process count and a resumed epoch reproduces them.
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np

from lightjax.data import boxes as box_lib
from lightjax.data import images as image_lib
from lightjax.data.fields import BOX_EXTRAS, IGNORE_LABEL
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
    crops: np.ndarray | None = None    # (n, 4) float: area fraction, log aspect, u, v

    def __getitem__(self, sl: slice) -> "Params":
        return Params(*(None if a is None else a[sl] for a in (self.offsets, self.flips,
                                                               self.crops)))


def draw(policy: str, n: int, rng: np.random.Generator, height: int) -> Params:
    """Draw the random choices of ``policy`` for ``n`` examples (a whole global batch)."""
    p = Params()
    if policy in ("crop", "cifar"):
        p.offsets = rng.integers(0, 2 * pad_for(height) + 1, size=(n, 2))
    if policy == "inception_crop":
        p.crops = np.stack([rng.uniform(MIN_AREA, 1.0, n), rng.uniform(*LOG_RATIO, n),
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


def pad_crop(images: np.ndarray, offsets: np.ndarray, pad: int, fill: float | int = 0
             ) -> np.ndarray:
    """Pad (N, H, W, ...) by ``pad`` pixels of ``fill`` and cut HxW at ``offsets`` (N, 2) =
    (dy, dx) in the padded image; shape is kept. Pixel (y, x) moves to (y + pad - dy, ...)."""
    n, h, w = images.shape[:3]
    widths = ((0, 0), (pad, pad), (pad, pad)) + ((0, 0),) * (images.ndim - 3)
    padded = np.pad(images, widths, constant_values=fill)
    out = np.empty_like(images)
    for i in range(n):
        dy, dx = int(offsets[i, 0]), int(offsets[i, 1])
        out[i] = padded[i, dy:dy + h, dx:dx + w]
    return out


def flip(images: np.ndarray, flags: np.ndarray) -> np.ndarray:
    """Mirror (left <-> right) the (N, H, W, ...) images or masks where ``flags`` is True."""
    out = images.copy()
    out[flags] = images[flags][:, :, ::-1]
    return out


def _windowed(out: dict, example: dict, *where) -> dict:
    """``out`` with the boxes of ``example`` (and their extras) mapped by
    :func:`lightjax.data.boxes.window` ``(*where)``."""
    extras = [k for k in BOX_EXTRAS if k in example]
    boxes, classes, count, *moved = box_lib.window(
        example["boxes"], example["box_classes"], example["box_count"], *where,
        extras=tuple(example[k] for k in extras))
    return {**out, "boxes": boxes, "box_classes": classes, "box_count": count,
            **dict(zip(extras, moved))}


def inception_crop(example: dict[str, np.ndarray], crops: np.ndarray) -> dict[str, np.ndarray]:
    """Cut the inception box of ``crops`` (n, 4) out of every example and resize it back to HxW:
    image bilinear, mask nearest-neighbour, boxes mapped into the box and clipped."""
    images = example["image"]
    n, h, w = images.shape[:3]
    if not n:
        return example
    cuts = np.asarray([box(h, w, c) for c in crops])  # (n, 4): top, left, height, width
    out = dict(example)
    out["image"] = np.stack([image_lib.resize(image_lib.crop(images[i], cuts[i]), (h, w))
                             for i in range(n)])
    if "mask" in example:
        out["mask"] = np.stack([image_lib.resize_nearest(
            image_lib.crop(example["mask"][i], cuts[i]), (h, w)) for i in range(n)])
    if "boxes" in example:
        out = _windowed(out, example, cuts[:, 0], cuts[:, 1], cuts[:, 2], cuts[:, 3], (h, w))
    return out


def translate(example: dict[str, np.ndarray], offsets: np.ndarray, pad: int
              ) -> dict[str, np.ndarray]:
    """Pad by ``pad`` and crop HxW at ``offsets``: image padded with 0 (black), mask with
    ``IGNORE_LABEL``, boxes shifted by (pad - offset) pixels, clipped, emptied ones removed."""
    images = example["image"]
    n, h, w = images.shape[:3]
    out = {**example, "image": pad_crop(images, offsets, pad)}
    if "mask" in example:
        out["mask"] = pad_crop(example["mask"], offsets, pad, IGNORE_LABEL)
    if "boxes" in example:
        offsets = np.asarray(offsets).reshape(n, 2)
        out = _windowed(out, example, offsets[:, 0] - pad, offsets[:, 1] - pad, np.full(n, h),
                        np.full(n, w), (h, w))
    return out


def mirror(example: dict[str, np.ndarray], flags: np.ndarray) -> dict[str, np.ndarray]:
    """Flip left <-> right where ``flags`` (n,): image and mask mirrored, boxes' x mirrored."""
    out = {**example, "image": flip(example["image"], flags)}
    if "mask" in example:
        out["mask"] = flip(example["mask"], flags)
    if "boxes" in example:
        out["boxes"] = box_lib.flip(example["boxes"], flags, example["box_count"])
    return out


def rescale(example: dict[str, np.ndarray], size: tuple[int, int]) -> dict[str, np.ndarray]:
    """Resize every image (bilinear) and mask (nearest) of an example dict to ``size`` =
    (height, width); boxes (fractions of the image) are unchanged."""
    out = {**example, "image": np.stack([image_lib.resize(im, size) for im in example["image"]])
           if len(example["image"]) else np.zeros((0, *size, example["image"].shape[-1]),
                                                  example["image"].dtype)}
    if "mask" in example:
        out["mask"] = np.stack([image_lib.resize_nearest(m, size) for m in example["mask"]]) \
            if len(example["mask"]) else np.zeros((0, *size), example["mask"].dtype)
    return out


def apply(example: dict[str, np.ndarray] | np.ndarray, params: Params,
          crops_done: bool = False) -> dict[str, np.ndarray] | np.ndarray:
    """Apply drawn ``params`` to an example dict (``'image'`` float (N, H, W, C) in [0, 1] and
    any geometric fields), in the order inception crop, pad + crop, flip. A bare image array
    gives back an array.

    ``crops_done``: the source already cut the inception boxes while decoding."""
    if isinstance(example, np.ndarray):
        return apply({"image": example}, params, crops_done)["image"]
    if params.crops is not None and not crops_done:
        example = inception_crop(example, params.crops)
    if params.offsets is not None:
        example = translate(example, params.offsets, pad_for(example["image"].shape[1]))
    if params.flips is not None:
        example = mirror(example, params.flips)
    return example
