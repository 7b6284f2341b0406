"""TFDS object-detection datasets, read without TensorFlow (``task='detection'``).

``voc`` (``voc/2007``, ``voc/2012``), ``coco/2017`` and any TFDS dataset with an ``Image`` and a
``Sequence`` of objects holding a ``BBoxFeature`` and a ``ClassLabel``, prepared as array_record
like the classification datasets (:mod:`lightjax.data.tfds_source`: nothing is downloaded, the
error says how to prepare one). TFDS's own ``coco`` builder code needs TensorFlow even to describe
itself; when it cannot be constructed the dataset is opened from its prepared files alone (TFDS's
read-only builder), so coco reads without TensorFlow too.

- Names: a TFDS name (``'voc/2007'``, ``'coco/2017'``, ``'voc'`` = voc/2007), or several configs
  of one dataset joined by ``+`` for training on their union: ``'voc/2007+2012'`` (also spelt
  ``'voc/2007+voc/2012'``) trains on voc/2007 AND voc/2012, each through ``train_split``
  (default 'train+validation', the 16,551 "07+12 trainval" images), and evaluates on the FIRST
  one's eval split (voc/2007 'test', 4,952 images): the usual VOC protocol. The parts must have
  the same features and class names.
- Splits: ``train_split`` defaults to 'train+validation' for voc (trainval), else 'train';
  ``eval_split`` to 'test' for voc/2007, 'validation' for voc/2012 and coco (their test splits
  carry no annotations), else 'test' or 'validation'. TFDS slicing and ``+`` work in both. A
  split without a single box is refused (an unlabelled split; lazily read splits are checked on
  32 evenly spaced examples).
- Features: the image is 'image' (else the only Image feature). The objects are ``objects_key=``,
  else 'objects', else the only Sequence feature holding a BBoxFeature; inside it the box is
  'bbox' (else the only BBoxFeature) and the class 'label' (else the only ClassLabel: VOC's
  'pose' is a second one). ``difficult_key=`` names a bool per-object feature that becomes
  ``box_difficult``; by default 'is_difficult' (VOC), else 'is_crowd' (COCO: a crowd region is
  treated as difficult, the role pycocotools gives iscrowd — not a positive, and a detection
  matched to it neither counts nor costs: the "difficult" rule of
  :func:`lightjax.detect.metrics.voc_map`; :func:`~lightjax.detect.metrics.coco_ap` does not read
  the flags yet); ``difficult_key=''`` reads none (all False). ``box_difficult`` is always a
  field of these datasets.
- Boxes: TFDS stores (ymin, xmin, ymax, xmax) fractions (BBoxFeature's default REL_YXYX; REL_XYXY
  is read too, absolute formats are refused); they become (x_min, y_min, x_max, y_max)
  fractions of the network input (:mod:`lightjax.data.fields`), clipped to the image. Boxes left
  without width or height (degenerate, inverted, or outside the image) are removed and counted
  (in the description; per-batch sources: ``degenerate_boxes``). ``max_boxes`` entries per
  example (default 50 for voc, the cap of PaddleDetection's YOLOv3 readers, and 100 for coco and
  others); boxes beyond it are dropped, keeping the last ``max_boxes`` in annotation order
  (:func:`lightjax.data.boxes.truncate`), and counted in ``dataset.dropped_boxes`` (per split)
  and the description — never silently.
- Size: every image becomes ``resolution x resolution`` (default 416). ``resize='letterbox'``
  (default, as ultralytics' YOLO): scaled to fit with its aspect ratio kept, centred, padded with
  grey 128/255 (:func:`lightjax.data.images.letterbox`); ``'stretch'``: resized to the square
  without keeping the aspect (as PaddleDetection's YOLOv3 reader does). Boxes follow exactly
  (:func:`lightjax.data.boxes.letterbox`).
- Memory: up to 1 GiB of uint8 pixels at the target size is decoded once into memory (boxes
  counted exactly at build time); larger datasets (VOC 07+12, COCO at 416) are decoded per batch
  and their dropped/degenerate boxes are counted as examples are read (exact after one epoch;
  the source's ``seen`` says how many were read). ``in_memory=`` overrides. Augmentation crops act
  on the resized images in both cases (``crops_at_decode`` False), so both give the same batches.
- Normalization: ImageNet mean/std for voc and coco (the backbones are ImageNet-pretrained), the
  train split's statistics otherwise; ``mean=``/``std=`` override. Augmentation 'auto' is 'flip'
  (boxes move with flips and crops: :mod:`lightjax.data.augment`).
"""
from __future__ import annotations

import concurrent.futures
import dataclasses
import os
from typing import Any, Sequence

import numpy as np

from lightjax.data import augment as augment_lib
from lightjax.data import boxes as box_lib
from lightjax.data import images as image_lib
from lightjax.data import tfds_source
from lightjax.data.array_source import ArraySource
from lightjax.data.fields import BOX_FIELDS
from lightjax.data.source import Dataset, check_int, make_dataset
from lightjax.errors import ValidationError

DEFAULT_RESOLUTION = 416
RESIZES = ("letterbox", "stretch")
MAX_BOXES = {"voc": 50, "coco": 100}
DEFAULT_MAX_BOXES = 100
TRAIN_SPLIT = {"voc": "train+validation"}
EVAL_SPLIT = {"voc/2012": "validation", "coco": "validation"}
IMAGENET = ("voc", "coco")
DIFFICULT_KEYS = ("is_difficult", "is_crowd")
AUTO_POLICY = "flip"
FIELDS = BOX_FIELDS + ("box_difficult",)
CHECK_SAMPLE = 32  # examples read to tell an unlabelled split when decoding per batch


@dataclasses.dataclass(frozen=True)
class Keys:
    """Feature names: the image, the objects sequence and, inside it, box / class / difficult."""
    image: str
    objects: str
    bbox: str
    label: str
    difficult: str | None
    xyxy: bool = False  # the BBoxFeature stores (xmin, ymin, xmax, ymax) (else (ymin, xmin, ...))


def _features(name: str, info):
    return ", ".join(info.features.keys()) or "none"


def _only(candidates: list[str], preferred: str) -> str | None:
    if preferred in candidates:
        return preferred
    return candidates[0] if len(candidates) == 1 else None


def feature_keys(name: str, info, objects_key: str | None = None,
                 difficult_key: str | None = None) -> Keys:
    """The :class:`Keys` of a detection dataset (see the module docstring)."""
    import tensorflow_datasets as tfds

    feats = info.features
    image = _only([k for k in feats.keys() if isinstance(feats[k], tfds.features.Image)],
                  "image")
    if image is None:
        raise ValidationError(f"TFDS dataset {name!r}: cannot tell the image feature (need "
                              f"'image' or a single Image feature; features: "
                              f"{_features(name, info)})")

    def boxes_in(key):
        seq = feats[key]
        if not isinstance(seq, tfds.features.Sequence) or not isinstance(
                seq.feature, tfds.features.FeaturesDict):
            return []
        return [k for k in seq.feature.keys()
                if isinstance(seq.feature[k], tfds.features.BBoxFeature)]

    candidates = [k for k in feats.keys() if boxes_in(k)]
    if objects_key is None:
        objects_key = _only(candidates, "objects")
        if objects_key is None:
            raise ValidationError(f"TFDS dataset {name!r} is not an object-detection dataset: "
                                  f"need one Sequence feature of objects with a BBoxFeature "
                                  f"(found {', '.join(candidates) or 'none'}; pass objects_key=;"
                                  f" features: {_features(name, info)})")
    elif objects_key not in candidates:
        raise ValidationError(f"TFDS dataset {name!r}: objects_key={objects_key!r} is not a "
                              f"Sequence of objects with a BBoxFeature; candidates: "
                              f"{', '.join(candidates) or 'none'}")
    inner = feats[objects_key].feature
    bbox = _only(boxes_in(objects_key), "bbox")
    labels = [k for k in inner.keys() if isinstance(inner[k], tfds.features.ClassLabel)]
    label = _only(labels, "label")
    if bbox is None or label is None:
        raise ValidationError(f"TFDS dataset {name!r}: objects {objects_key!r} need a 'bbox' "
                              f"BBoxFeature and a 'label' ClassLabel (they hold "
                              f"{', '.join(inner.keys())})")
    fmt = getattr(inner[bbox], "bbox_format", None)
    fmt = getattr(fmt, "value", fmt)
    if fmt not in (None, "REL_YXYX", "REL_XYXY"):
        raise ValidationError(f"TFDS dataset {name!r}: boxes {objects_key}/{bbox} are stored as "
                              f"{fmt}; only relative ones (REL_YXYX, REL_XYXY) are supported")
    flags = [k for k in inner.keys() if isinstance(inner[k], tfds.features.Tensor)
             and inner[k].shape == () and np.dtype(inner[k].np_dtype) == np.bool_]
    if difficult_key is None:
        difficult_key = next((k for k in DIFFICULT_KEYS if k in flags), None)
    elif difficult_key == "":
        difficult_key = None
    elif difficult_key not in flags:
        raise ValidationError(f"TFDS dataset {name!r}: difficult_key={difficult_key!r} is not a "
                              f"bool feature of the objects {objects_key!r}; candidates: "
                              f"{', '.join(flags) or 'none'} ('' for none)")
    return Keys(image, objects_key, bbox, label, difficult_key, fmt == "REL_XYXY")


def parse_name(name: str) -> list[str]:
    """The TFDS names of ``name``: 'voc/2007+2012' -> ['voc/2007', 'voc/2012']; a part without
    '/' is a config of the first part's dataset."""
    parts = [p.strip() for p in name.split("+")]
    if any(not p for p in parts):
        raise ValidationError(f"dataset name {name!r}: empty part around '+' (write e.g. "
                              f"'voc/2007+2012')")
    base = tfds_source.base_name(parts[0])
    out = [parts[0]] + [p if "/" in p else f"{base}/{p}" for p in parts[1:]]
    if len(set(out)) != len(out):
        raise ValidationError(f"dataset name {name!r} repeats a part: {', '.join(out)}")
    return out


def open_builder(name: str, data_dir: str | None):
    """(builder, root) like :func:`lightjax.data.tfds_source.open_builder`; when TFDS's builder
    code for ``name`` needs TensorFlow (coco), the builder is rebuilt from the prepared files."""
    try:
        return tfds_source.open_builder(name, data_dir)
    except ImportError:
        import tensorflow_datasets as tfds
        from tensorflow_datasets.core import read_only_builder

        data_dir = os.path.expanduser(os.fspath(data_dir)) if data_dir else None
        try:
            builder = read_only_builder.builder_from_files(name, data_dir=data_dir)
        except tfds.core.registered.DatasetNotFoundError:
            root = data_dir or os.path.expanduser(tfds.core.constants.DATA_DIR)
            raise tfds_source.not_prepared(name, root, os.path.join(root, *name.split("/"))
                                           ) from None
        return builder, os.fspath(builder.data_dir_root)


class ConcatRecords:
    """Random-access records of several TFDS data sources, one after the other."""

    def __init__(self, parts: Sequence[Any]):
        self.parts = list(parts)
        self.offsets = np.cumsum([0] + [len(p) for p in self.parts])

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def __getitems__(self, indices: Sequence[int]) -> list:
        indices = np.asarray(indices, np.int64)
        part = np.searchsorted(self.offsets, indices, side="right") - 1
        out: list = [None] * len(indices)
        for p in np.unique(part):
            where = np.flatnonzero(part == p)
            got = self.parts[p].__getitems__([int(i) for i in indices[where] - self.offsets[p]])
            for i, record in zip(where, got):
                out[i] = record
        return out


def objects(record: dict, keys: Keys, num_classes: int
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(boxes (k, 4) (x_min, y_min, x_max, y_max) fractions, classes (k,), difficult (k,)) of
    one record, in annotation order (TFDS BBoxFeatures hold (ymin, xmin, ymax, xmax) unless
    their ``bbox_format`` is REL_XYXY)."""
    objs = record[keys.objects]
    yx = np.asarray(objs[keys.bbox], np.float32).reshape(-1, 4)
    classes = np.asarray(objs[keys.label], np.int64).reshape(-1)
    k = len(yx)
    difficult = (np.asarray(objs[keys.difficult], bool).reshape(-1) if keys.difficult
                 else np.zeros((k,), bool))
    if len(classes) != k or len(difficult) != k:
        raise ValidationError(f"TFDS record: {k} boxes but {len(classes)} classes and "
                              f"{len(difficult)} difficult flags")
    if k and (classes.min() < 0 or classes.max() >= num_classes):
        bad = classes[(classes < 0) | (classes >= num_classes)][0]
        raise ValidationError(f"TFDS record: box class {int(bad)} outside [0, {num_classes})")
    return yx if keys.xyxy else yx[:, [1, 0, 3, 2]], classes.astype(np.int32), difficult


@dataclasses.dataclass
class Decoded:
    """One example at the target size; ``degenerate`` and ``dropped`` count removed boxes."""
    image: np.ndarray       # (S, S, C) uint8
    boxes: np.ndarray       # (M, 4)
    classes: np.ndarray     # (M,)
    difficult: np.ndarray   # (M,) bool
    annotated: int          # boxes in the record
    degenerate: int         # removed: no width or height inside the image
    dropped: int            # removed: beyond max_boxes


class Decoder:
    """Decodes a record into a :class:`Decoded` example of ``size`` (letterboxed or stretched)."""

    def __init__(self, keys: Keys, size: tuple[int, int], channels: int, resize: str,
                 max_boxes: int, num_classes: int):
        self.keys, self.size, self.channels, self.resize = keys, size, channels, resize
        self.max_boxes, self.num_classes = max_boxes, num_classes

    def __call__(self, record: dict) -> Decoded:
        try:
            img = image_lib.decode(record[self.keys.image], self.channels)
        except image_lib.DECODE_ERRORS as e:
            raise ValidationError(f"TFDS record holds an unreadable image: {e}") from None
        xy, classes, difficult = objects(record, self.keys, self.num_classes)
        if self.resize == "letterbox":
            img, placement = image_lib.letterbox(img, self.size)
        else:
            img, placement = image_lib.resize(img, self.size), (0, 0, *self.size)
        k = len(xy)
        boxes, classes, count, difficult = box_lib.letterbox(
            xy[None], classes[None], np.array([k]), placement, self.size, (difficult[None],))
        kept = int(count[0])
        boxes, classes, _, dropped, difficult = box_lib.truncate(
            boxes[:, :kept], classes[:, :kept], self.max_boxes, (difficult[:, :kept],))
        return Decoded(img, boxes[0], classes[0], difficult[0], k, k - kept, dropped)


def _decode_all(decoder: Decoder, records: list) -> list[Decoded]:
    with concurrent.futures.ThreadPoolExecutor(tfds_source.WORKERS) as pool:
        return list(pool.map(decoder, records))


class LazyDetectionSource:
    """A TFDS detection split decoded per batch (for datasets too big for memory); removed boxes
    are counted per example as examples are read (``seen`` of ``len``)."""

    crops_at_decode = False
    fields = FIELDS

    def __init__(self, records, decoder: Decoder):
        self.records, self.decoder = records, decoder
        self._dropped = np.full(len(records), -1, np.int64)
        self._degenerate = np.full(len(records), -1, np.int64)

    def __len__(self) -> int:
        return len(self.records)

    @property
    def max_boxes(self) -> int:
        return self.decoder.max_boxes

    @property
    def seen(self) -> int:
        return int((self._dropped >= 0).sum())

    @property
    def dropped_boxes(self) -> int:
        return int(self._dropped[self._dropped > 0].sum())

    @property
    def degenerate_boxes(self) -> int:
        return int(self._degenerate[self._degenerate > 0].sum())

    def load(self, indices, crop_boxes=None):
        indices = [int(i) for i in indices]
        ex = _decode_all(self.decoder, self.records.__getitems__(indices))
        self._dropped[indices] = [e.dropped for e in ex]
        self._degenerate[indices] = [e.degenerate for e in ex]
        return _stack(ex, self.decoder)


def _stack(ex: list[Decoded], decoder: Decoder) -> dict[str, np.ndarray]:
    """The example dict of decoded examples (images float32 in [0, 1])."""
    n, m = len(ex), decoder.max_boxes
    if not n:
        return {"image": np.zeros((0, *decoder.size, decoder.channels), np.float32),
                "boxes": np.zeros((0, m, 4), np.float32),
                "box_classes": np.zeros((0, m), np.int32), "box_count": np.zeros((0,), np.int32),
                "box_difficult": np.zeros((0, m), bool)}
    classes = np.stack([e.classes for e in ex])
    return {"image": image_lib.to_float(np.stack([e.image for e in ex])),
            "boxes": np.stack([e.boxes for e in ex]), "box_classes": classes,
            "box_count": (classes >= 0).sum(axis=1).astype(np.int32),
            "box_difficult": np.stack([e.difficult for e in ex])}


def load_into_memory(records, n: int, decoder: Decoder) -> tuple[ArraySource, int, int]:
    """(source, boxes in the records, degenerate boxes removed) of a whole split."""
    m = decoder.max_boxes
    images = np.empty((n, *decoder.size, decoder.channels), np.uint8)
    boxes = np.zeros((n, m, 4), np.float32)
    classes = np.full((n, m), -1, np.int32)
    difficult = np.zeros((n, m), bool)
    annotated = degenerate = dropped = start = 0
    for chunk in tfds_source.chunks_from_data_source(records):
        for i, e in enumerate(_decode_all(decoder, chunk), start=start):
            images[i], boxes[i], classes[i], difficult[i] = (e.image, e.boxes, e.classes,
                                                             e.difficult)
            annotated += e.annotated
            degenerate += e.degenerate
            dropped += e.dropped
        start += len(chunk)
    if start != n:
        raise ValidationError(f"expected {n} examples, read {start}")
    source = ArraySource(images, boxes=boxes, box_classes=classes, dropped_boxes=dropped,
                         box_difficult=difficult)
    return source, annotated, degenerate


def _annotated_sample(records, decoder: Decoder) -> int:
    """Boxes in ``CHECK_SAMPLE`` evenly spaced records (images not decoded)."""
    n = len(records)
    idx = np.unique(np.linspace(0, n - 1, min(n, CHECK_SAMPLE)).astype(int))
    return sum(len(objects(r, decoder.keys, decoder.num_classes)[0])
               for r in records.__getitems__([int(i) for i in idx]))


def _default(table: dict, info) -> Any:
    return next((table[k] for k in (f"{info.name}/{info.config_name}", info.name) if k in table),
                None)


def build(name: str, *, data_dir: str | None = None, resolution: int | None = None,
          augment: str = "auto", train_split: str | None = None, eval_split: str | None = None,
          in_memory: bool | None = None, max_boxes: int | None = None,
          resize: str | None = None, objects_key: str | None = None,
          difficult_key: str | None = None, mean: Any = None, std: Any = None) -> Dataset:
    """A detection :class:`Dataset` over the prepared TFDS dataset(s) ``name`` (module
    docstring)."""
    import tensorflow_datasets as tfds

    augment_lib.check_policy(augment)
    resize = "letterbox" if resize is None else resize
    if resize not in RESIZES:
        raise ValidationError(f"resize must be one of {', '.join(RESIZES)}, got {resize!r}")
    res = check_int("resolution", DEFAULT_RESOLUTION if resolution is None else resolution, 1)
    size = (res, res)
    parts = parse_name(name)
    opened = [open_builder(part, data_dir) for part in parts]
    first = opened[0][0].info
    keys = feature_keys(parts[0], first, objects_key, difficult_key)
    label_feat = first.features[keys.objects].feature[keys.label]
    class_names = tuple(label_feat.names or ())
    num_classes = int(label_feat.num_classes)
    channels = tfds_source.channels_of(parts[0], first.features[keys.image], keys.image)
    base = tfds_source.base_name(parts[0])
    max_boxes = check_int("max_boxes", MAX_BOXES.get(base, DEFAULT_MAX_BOXES)
                           if max_boxes is None else max_boxes, 1)

    # -- splits of every part: train from each, eval from the first ---------------------------
    counts = {"train": 0, "test": 0}
    train_specs, train_records = [], []
    for i, (part, (builder, root)) in enumerate(zip(parts, opened)):
        info = builder.info
        if i and (feature_keys(part, info, objects_key, difficult_key) != keys or tuple(
                info.features[keys.objects].feature[keys.label].names or ()) != class_names):
            raise ValidationError(f"TFDS datasets {parts[0]!r} and {part!r} cannot be combined: "
                                  f"their features or class names differ")
        split = (train_split if train_split is not None
                 else _default(TRAIN_SPLIT, info) or "train")
        train, evaluation, n = tfds_source.resolve_splits(
            part, info, split, eval_split if eval_split is not None
            else _default(EVAL_SPLIT, info))
        tfds_source.check_random_access(part, builder, root, tf_fallback=False,
                                        need="reading a detection dataset")
        skip = {keys.image: tfds.decode.SkipDecoding()}
        train_records.append(builder.as_data_source(split=train, decoders=skip))
        train_specs.append(f"{info.full_name}:{train}")
        counts["train"] += n["train"]
        if i == 0:
            eval_spec = f"{info.full_name}:{evaluation}"
            eval_records = builder.as_data_source(split=evaluation, decoders=skip)
            counts["test"] = n["test"]
    records = {"train": train_records[0] if len(parts) == 1 else ConcatRecords(train_records),
               "test": eval_records}
    if in_memory is None:
        in_memory = sum(counts.values()) * res * res * channels <= tfds_source.IN_MEMORY_BYTES

    decoder = Decoder(keys, size, channels, resize, max_boxes, num_classes)
    splits, notes = {}, []
    for key, spec in (("train", " + ".join(train_specs)), ("test", eval_spec)):
        if counts[key] == 0:
            raise ValidationError(f"TFDS dataset {name!r}: split {spec} is empty")
        if in_memory:
            splits[key], annotated, degenerate = load_into_memory(records[key], counts[key],
                                                                  decoder)
            notes.append(f"{key}: {splits[key].dropped_boxes} beyond max_boxes and "
                         f"{degenerate} degenerate of {annotated}")
        else:
            splits[key] = LazyDetectionSource(records[key], decoder)
            annotated = _annotated_sample(records[key], decoder)
        if annotated == 0:
            raise ValidationError(f"TFDS dataset {name!r}: split {spec} holds no boxes"
                                  f"{'' if in_memory else ' in a sample of its examples'} — an "
                                  f"unlabelled split (voc/2012 and coco 'test' carry no "
                                  f"annotations); choose another with train_split=/eval_split=")
    removed = ("boxes removed: " + "; ".join(notes) if in_memory else
               "boxes beyond max_boxes and degenerate boxes are counted as examples are read: "
               "dataset.dropped_boxes")
    stat_mean, stat_std = (tfds_source.STATS["imagenet2012"] if base in IMAGENET and channels == 3
                           else (None, None))
    root = opened[0][1]
    return make_dataset(
        name, num_classes, splits, (*size, channels),
        augment=AUTO_POLICY if augment == "auto" else augment,
        mean=stat_mean if mean is None else mean, std=stat_std if std is None else std,
        class_names=class_names, task="detection", max_boxes=max_boxes,
        description=f"TFDS detection {' + '.join(train_specs)} / {eval_spec} from {root} "
                    f"({keys.objects!r}: {keys.bbox!r}, {keys.label!r}, difficult "
                    f"{keys.difficult!r}; {resize} {res}x{res}, max_boxes={max_boxes}, "
                    f"{'in memory' if in_memory else 'decoded per batch'}; {removed})")
