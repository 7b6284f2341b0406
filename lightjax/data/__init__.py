"""Datasets for lightjax: numpy batches (NHWC float32, normalized) for any number of processes.

- :func:`build` ``(name, resolution=, data_dir=, root=, augment=, ...)`` -> :class:`Dataset`
  ('digits' — embedded, offline; 'shapes' — embedded synthetic scenes for classification,
  segmentation and detection; 'cifar10', 'cifar100', 'imagenet2012' and any TFDS
  image-classification name, or a TFDS segmentation dataset with ``task='segmentation'``;
  'folder' with ``root=``). :func:`names` lists the built-ins.
- :meth:`Dataset.batches` ``(split, global_batch, seed=, epoch=, start_batch=, ...)`` yields
  ``{'image', 'valid', *dataset.fields}`` for this process; order and augmentation are functions
  of (seed, epoch). Fields (``label``, ``mask``, ``boxes``/``box_classes``/``box_count``):
  :mod:`lightjax.data.fields`; unlabelled mask pixels are :data:`IGNORE_LABEL`.
- :mod:`lightjax.data.augment`: policies 'none', 'crop', 'cifar', 'flip', 'inception_crop'; every
  geometric field moves with the pixels.
"""
from lightjax.data.augment import POLICIES
from lightjax.data.fields import FIELDS, IGNORE_LABEL, TASKS
from lightjax.data.registry import BUILTIN, build, names, options
from lightjax.data.source import ArraySource, Dataset, Source, make_dataset

__all__ = ["ArraySource", "BUILTIN", "Dataset", "FIELDS", "IGNORE_LABEL", "POLICIES", "Source",
           "TASKS", "build", "make_dataset", "names", "options"]
