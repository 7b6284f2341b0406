"""The embedded default dataset: scikit-learn's handwritten digits, offline on any machine.

``sklearn.datasets.load_digits()`` ships 1,797 real 8x8 grayscale digit images (values 0..16, ten
classes) inside scikit-learn — nothing is downloaded. Here they become:

- pixels / 16 -> [0, 1] float32, upscaled once (bilinear, PIL) to ``resolution`` x ``resolution``
  (default 32) and kept in memory; 1 channel (set the model's ``input_channels`` from
  ``image_shape[-1]``);
- a fixed stratified split, ``train_test_split(test_size=0.2, stratify=y, random_state=0)`` (rows
  kept in the original order): **1,437 train / 360 test** examples; per class
  train = [142, 146, 142, 146, 145, 145, 145, 143, 139, 144], test = [36, 36, 35, 37, 36, 37, 36,
  36, 35, 36];
- normalization by the mean/std of the upscaled train split (computed at build);
- augmentation policy ``'none'`` by default. Digits are not mirror-symmetric, so the flipping
  policies ('flip', 'cifar', 'inception_crop') are refused; ``augment='crop'`` (pad + random crop,
  a translation of up to resolution/8 pixels) may be requested explicitly.
"""
from __future__ import annotations

import numpy as np

from lightjax.data import augment as augment_lib
from lightjax.data import images as image_lib
from lightjax.data.array_source import ArraySource
from lightjax.data.source import Dataset, make_dataset
from lightjax.errors import ValidationError

NUM_TRAIN, NUM_TEST = 1437, 360
ALLOWED_AUGMENT = ("auto", "none", "crop")

_CACHE: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = {}


def _arrays(resolution: int):
    """(train_x, train_y, test_x, test_y), upscaled to ``resolution``; cached per resolution."""
    if resolution not in _CACHE:
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split

        digits = load_digits()
        x = (digits.images.astype(np.float32) / np.float32(16.0))[..., None]  # (1797, 8, 8, 1)
        y = digits.target.astype(np.int32)
        train, test = train_test_split(np.arange(len(y)), test_size=0.2, stratify=y,
                                       random_state=0)
        train, test = np.sort(train), np.sort(test)
        x = np.stack([image_lib.resize(im, (resolution, resolution)) for im in x])
        x = np.clip(x, 0.0, 1.0)
        _CACHE[resolution] = (x[train], y[train], x[test], y[test])
    return _CACHE[resolution]


def build(resolution: int = 32, augment: str = "auto", mean=None, std=None) -> Dataset:
    """The digits :class:`Dataset` at ``resolution`` (see the module docstring)."""
    augment_lib.check_policy(augment)
    if augment not in ALLOWED_AUGMENT:
        raise ValidationError(f"augment={augment!r} is not allowed for 'digits': digits are not "
                         f"mirror-symmetric, so no flipping; allowed: "
                         f"{', '.join(ALLOWED_AUGMENT)}")
    policy = "none" if augment == "auto" else augment
    tx, ty, vx, vy = _arrays(int(resolution))
    assert (len(ty), len(vy)) == (NUM_TRAIN, NUM_TEST)
    return make_dataset(
        "digits", 10, {"train": ArraySource(tx, ty), "test": ArraySource(vx, vy)},
        (resolution, resolution, 1), augment=policy, mean=mean, std=std,
        class_names=tuple(str(i) for i in range(10)),
        description=f"scikit-learn digits (8x8 upscaled to {resolution}x{resolution}), "
                    f"{NUM_TRAIN} train / {NUM_TEST} test")
