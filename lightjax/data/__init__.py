"""Datasets for lightjax: numpy batches (NHWC float32, normalized) for any number of processes.

- :func:`build` ``(name, resolution=, data_dir=, root=, augment=)`` -> :class:`Dataset`
  ('digits' — embedded, offline; 'cifar10', 'cifar100', 'imagenet2012' and any TFDS
  image-classification name; 'folder' with ``root=``). :func:`names` lists the built-ins.
- :meth:`Dataset.batches` ``(split, global_batch, seed=, epoch=, start_batch=, ...)`` yields
  ``{'image', 'label', 'mask'}`` for this process; order and augmentation are functions of
  (seed, epoch).
- :mod:`lightjax.data.augment`: policies 'none', 'crop', 'cifar', 'flip', 'inception_crop'.
"""
from lightjax.data.augment import POLICIES
from lightjax.data.registry import BUILTIN, build, names
from lightjax.data.source import ArraySource, Dataset, make_dataset

__all__ = ["ArraySource", "BUILTIN", "Dataset", "POLICIES", "build", "make_dataset", "names"]
