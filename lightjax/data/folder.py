"""A folder of images for users' own data: ``root/<split>/<class_name>/*.png|jpg|jpeg``.

Layout::

    root/train/<class>/<image files>
    root/test/<class>/<image files>      (or root/val/..., root/validation/... — first found)

- classes are the sub-directories of ``root/train``, sorted alphabetically (label i = i-th name);
  the eval split may hold a subset of them, never a class train lacks;
- image files: .png .jpg .jpeg .bmp .gif .webp (any case); hidden files (``.DS_Store``) are
  skipped; any other file, or an image PIL cannot decode, is a ValueError naming the file;
- every image is converted to RGB (grayscale and palette images included: 3 channels) and resized
  (bilinear) to ``resolution`` x ``resolution``; without ``resolution`` the size of the first
  training image (in sorted order) is used for all;
- everything is decoded once into memory (uint8);
- normalization: mean/std of the train split, per channel;
- augmentation ('auto'): 'none' — pass ``augment='flip'`` (or 'cifar', 'crop', 'inception_crop')
  when it suits the data.
"""
from __future__ import annotations

import concurrent.futures
import os

import numpy as np

from lightjax.data import augment as augment_lib
from lightjax.data import images as image_lib
from lightjax.data.array_source import ArraySource
from lightjax.data.source import Dataset, make_dataset
from lightjax.errors import ValidationError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")
EVAL_DIRS = ("test", "val", "validation")


def _visible(names):
    return sorted(n for n in names if not n.startswith("."))


def _list_split(split_dir: str, classes: list[str] | None
                ) -> tuple[list[str], list[str], list[int]]:
    """(class names, files, labels) of one split directory; checks the layout."""
    entries = _visible(os.listdir(split_dir))
    stray = [e for e in entries if not os.path.isdir(os.path.join(split_dir, e))]
    if stray:
        raise ValidationError(f"folder dataset: {os.path.join(split_dir, stray[0])} is a file, but "
                         f"{split_dir} must contain only one sub-directory per class")
    names = entries
    is_train = classes is None
    if not names:
        raise ValidationError(f"folder dataset: {split_dir} has no class sub-directories; expected "
                         f"{split_dir}/<class_name>/<images>")
    if classes is None:
        classes = names
    else:
        unknown = [n for n in names if n not in classes]
        if unknown:
            bad = os.path.join(split_dir, unknown[0])
            raise ValidationError(f"folder dataset: class directory {bad} does not exist in the "
                             f"train split (train classes: {', '.join(classes)})")
    files, labels = [], []
    for name in names:
        class_dir = os.path.join(split_dir, name)
        found = 0
        for entry in _visible(os.listdir(class_dir)):
            path = os.path.join(class_dir, entry)
            if os.path.isdir(path):
                raise ValidationError(f"folder dataset: unexpected directory {path}; a class directory "
                                 f"must contain image files only")
            if not entry.lower().endswith(IMAGE_EXTENSIONS):
                raise ValidationError(f"folder dataset: {path} is not an image file (allowed "
                                 f"extensions: {', '.join(IMAGE_EXTENSIONS)})")
            files.append(path)
            labels.append(classes.index(name))
            found += 1
        if not found and is_train:
            raise ValidationError(f"folder dataset: class directory {class_dir} has no images")
    if not files:
        raise ValidationError(f"folder dataset: {split_dir} holds no images")
    return classes, files, labels


def _decode(path: str) -> np.ndarray:
    try:
        return image_lib.decode(path, 3)
    except image_lib.DECODE_ERRORS as e:
        raise ValidationError(f"folder dataset: cannot read image {path}: {e}") from None


def _load(files: list[str], labels: list[int], size: tuple[int, int] | None):
    first = _decode(files[0])
    size = size or first.shape[:2]

    def one(path):
        return image_lib.resize(_decode(path), size)

    images = np.empty((len(files), *size, 3), np.uint8)
    with concurrent.futures.ThreadPoolExecutor(min(8, os.cpu_count() or 1)) as pool:
        for i, img in enumerate(pool.map(one, files)):
            images[i] = img
    return ArraySource(images, np.asarray(labels, np.int32)), tuple(int(s) for s in size)


def build(root: str, *, resolution: int | None = None, augment: str = "auto",
          mean=None, std=None) -> Dataset:
    """A :class:`Dataset` over the image folder ``root`` (see the module docstring)."""
    augment_lib.check_policy(augment)
    if root is None:
        raise ValidationError("dataset 'folder' needs root=<directory> holding train/<class>/<images> "
                         "and test/<class>/<images> (or val/, validation/)")
    root = os.path.expanduser(os.fspath(root))
    if not os.path.isdir(root):
        raise ValidationError(f"folder dataset: root {root} is not a directory")
    train_dir = os.path.join(root, "train")
    if not os.path.isdir(train_dir):
        raise ValidationError(f"folder dataset: {train_dir} does not exist; expected "
                         f"{root}/train/<class_name>/<images>")
    eval_name = next((d for d in EVAL_DIRS if os.path.isdir(os.path.join(root, d))), None)
    if eval_name is None:
        raise ValidationError(f"folder dataset: no eval split in {root}; expected one of "
                         f"{', '.join(f'{root}/{d}' for d in EVAL_DIRS)} "
                         f"(with the same class sub-directories as train/)")
    classes, train_files, train_labels = _list_split(train_dir, None)
    _, eval_files, eval_labels = _list_split(os.path.join(root, eval_name), classes)
    size = (int(resolution), int(resolution)) if resolution is not None else None
    train, size = _load(train_files, train_labels, size)
    test, _ = _load(eval_files, eval_labels, size)
    return make_dataset(
        f"folder:{root}", len(classes), {"train": train, "test": test}, (*size, 3),
        augment="none" if augment == "auto" else augment, mean=mean, std=std,
        class_names=classes,
        description=f"image folder {root} (train / {eval_name}), {len(classes)} classes")
