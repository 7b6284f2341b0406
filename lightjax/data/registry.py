"""``build(name, ...)``: one entry point for every dataset, and the built-in names."""
from __future__ import annotations

import inspect

from lightjax.data import augment as augment_lib
from lightjax.data import digits, folder, shapes, tfds_source
from lightjax.data import source as source_lib
from lightjax.data.source import Dataset
from lightjax.errors import ValidationError

BUILTIN = ("digits", "shapes", "cifar10", "cifar100", "imagenet2012", "folder")
_EXTRA = {"digits": digits.build, "shapes": shapes.build, "folder": folder.build}


def names() -> tuple[str, ...]:
    """The built-in dataset names; any other TFDS image-classification (or, with
    ``task='segmentation'``/``task='detection'``, segmentation/detection) name works too."""
    return BUILTIN


def _extra_options(fn) -> tuple[str, ...]:
    """The keyword options of the builder ``fn`` that ``build`` passes through as ``**kwargs``."""
    return tuple(p for p in inspect.signature(fn).parameters
                 if p not in ("name", "root", "data_dir", "resolution", "augment"))


def options(name: str) -> tuple[str, ...]:
    """The keyword options of the built-in dataset ``name`` besides ``resolution`` and
    ``augment`` (e.g. shapes' ``view``, ``mode``, ``epoch_size``); ``()`` for TFDS names."""
    fn = _EXTRA.get(name)
    return () if fn is None else _extra_options(fn)


def _check_resolution(resolution) -> int | None:
    if resolution is None:
        return None
    if isinstance(resolution, bool) or not isinstance(resolution, int) or resolution <= 0:
        raise ValidationError(f"resolution must be a positive integer (pixels per side), got "
                         f"{resolution!r}")
    return resolution


def build(name: str, *, resolution: int | None = None, data_dir: str | None = None,
          root: str | None = None, augment: str = "auto", multiscale=None, **kwargs) -> Dataset:
    """Build the dataset ``name``.

    - ``'digits'``: scikit-learn's digits, embedded, offline (``resolution`` default 32;
      ``data_dir`` is ignored). See :mod:`lightjax.data.digits`.
    - ``'shapes'``: synthetic coloured shapes, embedded, offline (``resolution`` default 64).
      Extra keywords: ``view`` ('segmentation', 'detection', 'classification'), ``difficulty``,
      ``train_size``, ``test_size``, ``seed``, ``max_boxes``. See :mod:`lightjax.data.shapes`.
    - ``'folder'`` with ``root=``: ``root/train/<class>/*.png|jpg``, ``root/test/...``. See
      :mod:`lightjax.data.folder`.
    - ``'cifar10'``, ``'cifar100'``, ``'imagenet2012'`` and any TFDS image-classification name
      (``'name/config:version'`` too) prepared in ``data_dir``. Extra keywords: ``train_split``,
      ``eval_split``, ``in_memory``; ``task='segmentation'`` with ``num_classes=`` (and optional
      ``mask_key=``, ``ignore_value=``) reads a TFDS segmentation dataset instead, and
      ``task='detection'`` (optional ``max_boxes=``, ``resize=`` 'letterbox'/'stretch',
      ``objects_key=``, ``difficult_key=``) a TFDS detection dataset: ``'voc/2007'``,
      ``'voc/2012'``, ``'voc/2007+2012'`` (07+12 trainval, tested on 2007 test), ``'coco/2017'``.
      See :mod:`lightjax.data.tfds_source`, :mod:`lightjax.data.tfds_segmentation` and
      :mod:`lightjax.data.tfds_detection`.

    ``resolution`` (the resolution multiplier ρ as pixels per side) resizes every image to
    ``resolution x resolution``; ``multiscale=(smallest, largest, step)`` resizes each augmented
    training batch to a size drawn from that range (YOLOv3: ``(320, 608, 32)``; evaluation stays
    at ``resolution``; see :mod:`lightjax.data.source`); ``augment`` is 'auto' (the dataset's policy) or one of
    :data:`lightjax.data.augment.POLICIES`. Every source also takes ``mean=``/``std=`` to override
    the normalization. Bad names or arguments raise ValueError.
    """
    if not isinstance(name, str) or not name:
        raise ValidationError(f"dataset name must be a non-empty string, got {name!r}; built-in "
                         f"names: {', '.join(BUILTIN)}")
    resolution = _check_resolution(resolution)
    augment_lib.check_policy(augment)
    if root is not None and name != "folder":
        raise ValidationError(f"root= is only used by the 'folder' dataset, not {name!r}")
    fn = _EXTRA.get(name, tfds_source.build)
    allowed = _extra_options(fn)
    unknown = sorted(set(kwargs) - set(allowed))
    if unknown:
        raise ValidationError(f"dataset {name!r} does not take {', '.join(unknown)}; extra options: "
                         f"{', '.join(allowed) or 'none'}")
    sizes = () if multiscale is None else source_lib.multiscale_sizes(multiscale)
    dataset = _build(name, resolution, data_dir, root, augment, kwargs)
    dataset.train_sizes = sizes
    return dataset


def _build(name, resolution, data_dir, root, augment, kwargs) -> Dataset:
    if name == "digits":
        return digits.build(resolution=32 if resolution is None else resolution,
                            augment=augment, **kwargs)
    if name == "shapes":
        return shapes.build(shapes.DEFAULT_RESOLUTION if resolution is None else resolution,
                            augment=augment, **kwargs)
    if name == "folder":
        return folder.build(root, resolution=resolution, augment=augment, **kwargs)
    return tfds_source.build(name, data_dir=data_dir, resolution=resolution, augment=augment,
                             **kwargs)
