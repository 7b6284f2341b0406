"""Named datasets through tensorflow-datasets, read without TensorFlow.

Reading uses TFDS's random-access data sources (``builder.as_data_source``, array_record or
parquet files), which need no TensorFlow. Nothing is ever downloaded here: a dataset must already
be prepared in ``data_dir`` (default ``~/tensorflow_datasets``); otherwise a ValueError says how to
prepare it on a machine with internet:

    pip install tensorflow tensorflow-datasets   # TFDS needs TensorFlow to *prepare* (encode)
    tfds build cifar100 --data_dir=<dir> --file_format=array_record

and copy ``<dir>`` over. Datasets prepared in TFDS's default tfrecord format can only be read
with TensorFlow installed (then they are loaded into memory through ``builder.as_dataset``);
convert them with ``tfds convert_format --dataset_dir=<dir>/<name> --out_file_format=array_record``.

Any TFDS image-classification dataset works: the image and label features are taken from
``info.supervised_keys`` (else 'image'/'label') and must be an ``Image`` and a ``ClassLabel``;
``num_classes`` and class names come from the metadata. Splits: 'train' and the eval split
('test' if the dataset has one, else 'validation'; imagenet2012: 'validation', as its 'test' split
is unlabelled; ``eval_split=`` overrides, and TFDS slicing such
as ``'train[:90%]'`` works for both).

Small datasets (at most 1 GiB of uint8 pixels at the target resolution, e.g. CIFAR) are decoded
and resized once into memory; larger ones (ImageNet) are decoded per batch from the records (the
Inception crop of training is then cut from the full decoded image). ``in_memory=`` overrides the
choice. Images of a fixed size are resized to ``resolution`` (default: their own size); images of
varying size (ImageNet; default resolution 224) are resized so that the shorter side is
``resolution / 0.875`` and centre-cropped — the same in memory and per batch.

Normalization constants (per channel, [0, 1] pixel space):

- cifar10:       mean (0.4914, 0.4822, 0.4465), std (0.2470, 0.2435, 0.2616)
- cifar100:      mean (0.5071, 0.4865, 0.4409), std (0.2673, 0.2564, 0.2762)
- imagenet2012:  mean (0.485, 0.456, 0.406),    std (0.229, 0.224, 0.225)
- anything else: measured on the train split (all of it in memory, else 2,048 evenly spaced
  examples); ``mean=``/``std=`` override.

Default augmentation ('auto'): cifar10/cifar100 -> 'cifar'; imagenet2012 -> 'inception_crop';
other names -> 'none' (choose explicitly: flips are wrong for digits, text, some medical data).

``task='segmentation'`` (with ``num_classes=``, optional ``mask_key=``, ``ignore_value=``) reads an
image + segmentation-mask dataset instead: see :mod:`lightjax.data.tfds_segmentation`.
``task='detection'`` (optional ``max_boxes=``, ``resize=``, ``objects_key=``,
``difficult_key=``) reads an object-detection dataset — ``voc``, ``voc/2007+2012``,
``coco/2017`` — with padded boxes: see :mod:`lightjax.data.tfds_detection`.
"""
from __future__ import annotations

import concurrent.futures
import os
from typing import Any

import numpy as np

from lightjax.data import augment as augment_lib
from lightjax.data import images as image_lib
from lightjax.data.array_source import ArraySource
from lightjax.data.source import Dataset, make_dataset
from lightjax.errors import ValidationError

STATS = {
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "cifar100": ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
    "imagenet2012": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
}
POLICY = {"cifar10": "cifar", "cifar100": "cifar", "imagenet2012": "inception_crop"}
EVAL_SPLIT = {"imagenet2012": "validation"}  # its 'test' split has no labels (-1)
IN_MEMORY_BYTES = 2**30
DEFAULT_RESOLUTION = 224  # for datasets whose images have no fixed size
CHUNK = 1024
WORKERS = min(8, os.cpu_count() or 1)


def base_name(name: str) -> str:
    """The dataset of a TFDS name: 'voc/2007:5.0.0' -> 'voc'."""
    return name.split("/")[0].split(":")[0]


def _prepare_hint(name: str, root: str) -> str:
    base = base_name(name)
    manual = ""
    if base == "imagenet2012":
        manual = (f" (ImageNet needs a manual download first: put ILSVRC2012_img_train.tar and "
                  f"ILSVRC2012_img_val.tar from https://image-net.org into "
                  f"{root}/downloads/manual/)")
    return (f"on a machine with internet{manual} run `pip install tensorflow tensorflow-datasets` "
            f"(TFDS needs TensorFlow to prepare a dataset, not to read it) and `tfds build {name} "
            f"--data_dir={root} --file_format=array_record` — or in Python "
            f"`tfds.builder('{name}', data_dir='{root}').download_and_prepare(file_format="
            f"'array_record')` — then copy {root} to this machine, or point data_dir "
            f"(--config.data.data_dir) at the copy")


def _unknown(name: str, data_dir: str | None, err: Exception) -> ValidationError:
    from lightjax.data.registry import names
    where = f"in data_dir {data_dir}" if data_dir else "in the default data_dir"
    return ValidationError(f"unknown dataset {name!r}: the built-in names are "
                      f"{', '.join(names())}; any TFDS image-classification dataset name also "
                      f"works once it is prepared {where} (TFDS says: "
                      f"{str(err).splitlines()[0]})")


def _split_names(info) -> list[str]:
    return list(info.splits.keys())


def _check_split(name: str, info, split: str) -> None:
    try:
        info.splits[split]
    except (KeyError, ValueError, AssertionError) as e:
        raise ValidationError(f"TFDS dataset {name!r} has no split {split!r} (splits: "
                         f"{', '.join(_split_names(info))}): {e}") from None


def _num_examples(info, split: str) -> int:
    return int(info.splits[split].num_examples)


def _decode(data: bytes, channels: int) -> np.ndarray:
    try:
        return image_lib.decode(data, channels)
    except image_lib.DECODE_ERRORS as e:
        raise ValidationError(f"TFDS record holds an unreadable image ({len(data)} bytes): {e}"
                         ) from None


class LazySource:
    """A TFDS split decoded per batch from its records (for datasets too big for memory)."""

    crops_at_decode = True
    fields = ("label",)

    def __init__(self, records, image_key: str, label_key: str, size: tuple[int, int],
                 channels: int, eval_crop_fraction: float):
        self.records, self.image_key, self.label_key = records, image_key, label_key
        self.size, self.channels, self.eval_crop = size, channels, eval_crop_fraction

    def __len__(self) -> int:
        return len(self.records)

    def _one(self, record: dict, box_params) -> np.ndarray:
        img = _decode(record[self.image_key], self.channels)
        if box_params is not None:
            h, w = img.shape[:2]
            return image_lib.resize(image_lib.crop(img, augment_lib.box(h, w, box_params)),
                                    self.size)
        return image_lib.center_crop_resize(img, self.size, self.eval_crop)

    def load(self, indices, crop_boxes=None):
        records = self.records.__getitems__([int(i) for i in indices])
        params = [None] * len(records) if crop_boxes is None else list(crop_boxes)
        with concurrent.futures.ThreadPoolExecutor(WORKERS) as pool:
            imgs = list(pool.map(self._one, records, params))
        labels = np.asarray([r[self.label_key] for r in records], np.int32)
        if labels.size and labels.min() < 0:
            raise ValidationError(f"examples without a label ({labels.min()}) in this split; choose a "
                             f"labelled split (train_split=/eval_split=)")
        return {"image": image_lib.to_float(np.stack(imgs)), "label": labels}


def _load_into_memory(records, n: int, image_key: str, label_key: str,
                      size: tuple[int, int], channels: int, fixed: bool) -> ArraySource:
    def fit(data):
        img = _decode(data, channels)
        if fixed:
            return image_lib.resize(img, size)
        return image_lib.center_crop_resize(img, size, image_lib.EVAL_CROP_FRACTION)

    images = np.empty((n, *size, channels), np.uint8)
    labels = np.empty((n,), np.int32)
    with concurrent.futures.ThreadPoolExecutor(WORKERS) as pool:
        start = 0
        for chunk in records:
            images[start:start + len(chunk)] = list(pool.map(fit, [r[image_key] for r in chunk]))
            labels[start:start + len(chunk)] = [r[label_key] for r in chunk]
            start += len(chunk)
    if start != n:
        raise ValidationError(f"expected {n} examples, read {start}")
    if n and labels.min() < 0:
        raise ValidationError(f"{int((labels < 0).sum())} of {n} examples have no label "
                         f"({labels.min()}); choose a labelled split (train_split=/eval_split=)")
    return ArraySource(images, labels)


def chunks_from_data_source(ds):
    n = len(ds)
    for lo in range(0, n, CHUNK):
        yield ds.__getitems__(list(range(lo, min(n, lo + CHUNK))))


def _chunks_from_tf(builder, split: str, image_key: str, label_key: str):
    import tensorflow_datasets as tfds
    ds = builder.as_dataset(split=split, shuffle_files=False,
                            decoders={image_key: tfds.decode.SkipDecoding()})
    chunk = []
    for ex in tfds.as_numpy(ds):
        chunk.append({image_key: ex[image_key], label_key: ex[label_key]})
        if len(chunk) == CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _has_tensorflow() -> bool:
    import importlib.util
    return importlib.util.find_spec("tensorflow") is not None


def open_builder(name: str, data_dir: str | None):
    """(builder, root) of the prepared TFDS dataset ``name``; a ValidationError says how to
    prepare it when it is missing."""
    import tensorflow_datasets as tfds

    data_dir = os.path.expanduser(os.fspath(data_dir)) if data_dir else None
    try:
        builder = tfds.builder(name, data_dir=data_dir)
    except (ValueError, TypeError, KeyError, AssertionError) as e:  # DatasetNotFoundError too
        raise _unknown(name, data_dir, e) from None
    root = os.fspath(builder.data_dir_root)
    if not builder.is_prepared():
        raise not_prepared(name, root, builder.data_dir)
    return builder, root


def not_prepared(name: str, root: str, looked_for) -> ValidationError:
    """The error for a dataset missing from ``root``: it says how to prepare it."""
    return ValidationError(f"TFDS dataset {name!r} is not prepared in {root} (looked for "
                           f"{looked_for}); nothing is downloaded automatically: "
                           f"{_prepare_hint(name, root)}")


def resolve_splits(name: str, info, train_split: str, eval_split: str | None
                   ) -> tuple[str, str, dict[str, int]]:
    """(train split, eval split, {'train': n, 'test': n}); the eval split defaults to 'test',
    else 'validation' (imagenet2012: 'validation')."""
    available = _split_names(info)
    if eval_split is None:
        eval_split = next((s for s in (EVAL_SPLIT.get(base_name(name)), "test", "validation")
                           if s in available), None)
        if eval_split is None:
            raise ValidationError(f"TFDS dataset {name!r} has neither a 'test' nor a 'validation' "
                             f"split (splits: {', '.join(available)}); pass eval_split=")
    _check_split(name, info, train_split)
    _check_split(name, info, eval_split)
    counts = {"train": _num_examples(info, train_split), "test": _num_examples(info, eval_split)}
    return train_split, eval_split, counts


def check_random_access(name: str, builder, root: str, tf_fallback: bool,
                        need: str = "a dataset this large (read per batch)") -> bool:
    """Whether the files have random access; raise when they cannot be read at all
    (``tf_fallback``: TensorFlow, when installed, may read them into memory instead)."""
    from tensorflow_datasets.core import file_adapters

    info = builder.info
    random_access = bool(set(info.available_file_formats())
                         & set(file_adapters.FileFormat.with_random_access()))
    if not random_access and not (tf_fallback and _has_tensorflow()):
        why = ("needs TensorFlow to read (not installed)" if tf_fallback else
               f"has no random access, which {need} needs")
        raise ValidationError(
            f"TFDS dataset {name!r} in {builder.data_dir} is stored as {info.file_format}, which "
            f"{why}; convert it once with `tfds convert_format "
            f"--dataset_dir={root}/{base_name(name)} --out_file_format=array_record` (needs "
            f"tensorflow) or re-prepare it: {_prepare_hint(name, root)}")
    return random_access


def target_size(image_feat, resolution: int | None) -> tuple[tuple[int, int], bool]:
    """((height, width) to resize to, whether the images have a fixed size)."""
    h, w = image_feat.shape[:2]
    fixed = h is not None and w is not None
    if resolution is not None:
        return (int(resolution), int(resolution)), fixed
    if fixed:
        return (int(h), int(w)), fixed
    return (DEFAULT_RESOLUTION, DEFAULT_RESOLUTION), fixed


def channels_of(name: str, image_feat, image_key: str) -> int:
    """1 for grayscale image features, else 3 (RGB); only uint8 images are supported."""
    if image_feat.np_dtype != np.uint8:
        raise ValidationError(f"TFDS dataset {name!r}: only uint8 images are supported, feature "
                         f"{image_key!r} holds {np.dtype(image_feat.np_dtype).name}")
    return 1 if image_feat.shape[-1] == 1 else 3


def build(name: str, *, data_dir: str | None = None, resolution: int | None = None,
          augment: str = "auto", task: str = "classification", train_split: str | None = None,
          eval_split: str | None = None, in_memory: bool | None = None,
          num_classes: int | None = None, mask_key: str | None = None,
          ignore_value: int | None = None, max_boxes: int | None = None,
          resize: str | None = None, objects_key: str | None = None,
          difficult_key: str | None = None, mean: Any = None, std: Any = None) -> Dataset:
    """A :class:`Dataset` over the TFDS dataset ``name`` prepared in ``data_dir``.

    ``train_split`` defaults to 'train' (detection on voc: 'train+validation').
    ``task='segmentation'`` reads an image + segmentation-mask dataset with ``num_classes``,
    ``mask_key`` and ``ignore_value`` (see :mod:`lightjax.data.tfds_segmentation`);
    ``task='detection'`` an object-detection dataset with ``max_boxes``, ``resize``,
    ``objects_key`` and ``difficult_key`` (see :mod:`lightjax.data.tfds_detection`)."""
    import tensorflow_datasets as tfds

    augment_lib.check_policy(augment)
    if task not in ("classification", "segmentation", "detection"):
        raise ValidationError(f"task must be 'classification', 'segmentation' or 'detection' for "
                              f"TFDS dataset {name!r}, got {task!r}")
    for only, options in (("segmentation", (("num_classes", num_classes), ("mask_key", mask_key),
                                            ("ignore_value", ignore_value))),
                          ("detection", (("max_boxes", max_boxes), ("resize", resize),
                                         ("objects_key", objects_key),
                                         ("difficult_key", difficult_key)))):
        extra = [k for k, v in options if v is not None]
        if extra and task != only:
            raise ValidationError(f"{', '.join(extra)} only apply with task={only!r}, not "
                                  f"task={task!r} (classification and detection datasets take "
                                  f"their classes from the metadata)")
    if task == "detection":
        from lightjax.data import tfds_detection
        return tfds_detection.build(
            name, data_dir=data_dir, resolution=resolution, augment=augment,
            train_split=train_split, eval_split=eval_split, in_memory=in_memory,
            max_boxes=max_boxes, resize=resize, objects_key=objects_key,
            difficult_key=difficult_key, mean=mean, std=std)
    train_split = "train" if train_split is None else train_split
    builder, root = open_builder(name, data_dir)
    if task == "segmentation":
        from lightjax.data import tfds_segmentation
        return tfds_segmentation.build(
            name, builder, root, resolution=resolution, augment=augment,
            train_split=train_split, eval_split=eval_split, in_memory=in_memory,
            num_classes=num_classes, mask_key=mask_key, ignore_value=ignore_value, mean=mean,
            std=std)
    info = builder.info

    # -- features: an image and a class label --------------------------------------------------
    keys = info.supervised_keys
    image_key, label_key = (keys if isinstance(keys, tuple) and len(keys) == 2
                            and all(isinstance(k, str) for k in keys) else ("image", "label"))
    features = info.features
    feat = {k: features[k] if k in features else None for k in (image_key, label_key)}
    if not isinstance(feat[image_key], tfds.features.Image) or not isinstance(
            feat[label_key], tfds.features.ClassLabel):
        raise ValidationError(f"TFDS dataset {name!r} is not an image-classification dataset: "
                         f"need an Image feature {image_key!r} and a ClassLabel {label_key!r} "
                         f"(features: {', '.join(features.keys())}; segmentation datasets need "
                         f"task='segmentation')")
    image_feat = feat[image_key]
    channels = channels_of(name, image_feat, image_key)
    size, fixed = target_size(image_feat, resolution)

    # -- splits ----------------------------------------------------------------------------------
    train_split, eval_split, counts = resolve_splits(name, info, train_split, eval_split)
    if in_memory is None:
        in_memory = sum(counts.values()) * size[0] * size[1] * channels <= IN_MEMORY_BYTES
    random_access = check_random_access(name, builder, root, tf_fallback=in_memory)

    splits = {}
    for key, split in (("train", train_split), ("test", eval_split)):
        if random_access:
            records = builder.as_data_source(
                split=split, decoders={image_key: tfds.decode.SkipDecoding()})
        if in_memory:
            chunks = (chunks_from_data_source(records) if random_access
                      else _chunks_from_tf(builder, split, image_key, label_key))
            splits[key] = _load_into_memory(chunks, counts[key], image_key, label_key, size,
                                            channels, fixed)
        else:
            splits[key] = LazySource(records, image_key, label_key, size, channels,
                                     1.0 if fixed else image_lib.EVAL_CROP_FRACTION)
        if len(splits[key]) == 0:
            raise ValidationError(f"TFDS dataset {name!r}: split {split!r} is empty")

    base = base_name(name)
    stat_mean, stat_std = STATS.get(base, (None, None)) if channels == 3 else (None, None)
    policy = POLICY.get(base, "none") if augment == "auto" else augment
    label = feat[label_key]
    return make_dataset(
        name, label.num_classes, splits, (*size, channels), augment=policy,
        mean=stat_mean if mean is None else mean, std=stat_std if std is None else std,
        class_names=tuple(label.names or ()),
        description=f"TFDS {info.full_name} from {root} ({train_split} / {eval_split}, "
                    f"{'in memory' if in_memory else 'decoded per batch'})")
