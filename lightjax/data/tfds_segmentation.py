"""TFDS semantic-segmentation datasets, read without TensorFlow (``task='segmentation'``).

Any TFDS dataset with an ``Image`` feature and a one-channel ``Image`` mask feature, e.g.
``oxford_iiit_pet`` ('image' + 'segmentation_mask') or ``cityscapes`` ('image_left' +
'segmentation_label'), prepared as array_record like the classification datasets
(:mod:`lightjax.data.tfds_source`: nothing is downloaded, the error says how to prepare one).

- Features: the image is ``info.supervised_keys[0]`` when that is an Image, else 'image'. The
  mask is ``mask_key=``, else ``supervised_keys[1]`` when that is a one-channel Image, else
  'segmentation_mask' or 'segmentation_label', else the only other one-channel Image feature.
- Classes: masks carry no metadata, so ``num_classes`` (1..255, background included if the data
  has one) is required. Mask values become int32 class ids: values in ``[0, num_classes)`` are
  kept, everything else becomes ``IGNORE_LABEL`` (255). With ``ignore_value=v`` the value ``v``
  becomes ``IGNORE_LABEL`` (even inside ``[0, num_classes)``, e.g. a 'void' class 0) and any other
  value outside ``[0, num_classes)`` is an error naming it — the strict mode that catches a wrong
  ``num_classes``. E.g. oxford_iiit_pet stores 1 = pet, 2 = background, 3 = border:
  ``num_classes=3, ignore_value=0`` would be wrong (0 never occurs, 3 is out of range);
  ``num_classes=4`` keeps all three (id 0 unused).
- Size: every image AND its mask are resized to ``resolution x resolution`` as a whole (aspect not
  kept, nothing cut away, so every labelled pixel is evaluated; image bilinear, mask
  nearest-neighbour); without ``resolution`` fixed-size images keep their size and varying ones
  become 224 x 224.
- Memory: up to 1 GiB of uint8 pixels + masks at the target size is decoded once into memory;
  larger datasets are decoded per batch (the training inception crop is then cut from the full
  decoded image and mask). ``in_memory=`` overrides.
- Normalization: the train split's mean/std (``mean=``/``std=`` override); augmentation 'auto' is
  'none' (pass 'flip', 'crop', 'cifar' or 'inception_crop'; the mask follows the pixels).
"""
from __future__ import annotations

import concurrent.futures
from typing import Any

import numpy as np

from lightjax.data import augment as augment_lib
from lightjax.data import images as image_lib
from lightjax.data import tfds_source
from lightjax.data.array_source import ArraySource
from lightjax.data.fields import IGNORE_LABEL
from lightjax.data.source import Dataset, make_dataset
from lightjax.errors import ValidationError

MASK_KEYS = ("segmentation_mask", "segmentation_label")


def _is_image(feature, channels: int | None = None) -> bool:
    import tensorflow_datasets as tfds
    return isinstance(feature, tfds.features.Image) and (
        channels is None or feature.shape[-1] == channels)


def feature_keys(name: str, info, mask_key: str | None) -> tuple[str, str]:
    """(image key, mask key) of a segmentation dataset (see the module docstring)."""
    features = info.features
    keys = info.supervised_keys
    pair = keys if isinstance(keys, tuple) and len(keys) == 2 else (None, None)
    image_key = pair[0] if pair[0] in features and _is_image(features[pair[0]]) else "image"
    if image_key not in features or not _is_image(features[image_key]):
        raise ValidationError(f"TFDS dataset {name!r} has no Image feature 'image' (features: "
                              f"{', '.join(features.keys())})")
    one_channel = [k for k in features.keys() if k != image_key and _is_image(features[k], 1)]
    if mask_key is None:
        if pair[1] in one_channel:
            mask_key = pair[1]
        else:
            mask_key = next((k for k in MASK_KEYS if k in one_channel),
                            one_channel[0] if len(one_channel) == 1 else None)
        if mask_key is None:
            raise ValidationError(
                f"TFDS dataset {name!r}: cannot tell the mask feature; pass mask_key= (one-channel "
                f"Image features: {', '.join(one_channel) or 'none'}; all features: "
                f"{', '.join(features.keys())})")
    elif mask_key not in one_channel:
        raise ValidationError(f"TFDS dataset {name!r}: mask_key={mask_key!r} is not a one-channel "
                              f"Image feature other than the image {image_key!r}; candidates: "
                              f"{', '.join(one_channel) or 'none'}")
    return image_key, mask_key


def map_mask(raw: np.ndarray, num_classes: int, ignore_value: int | None) -> np.ndarray:
    """Stored mask values -> uint8 class ids in [0, num_classes) or ``IGNORE_LABEL``."""
    inside = (raw >= 0) & (raw < num_classes)
    if ignore_value is not None:
        bad = ~inside & (raw != ignore_value)
        if bad.any():
            raise ValidationError(f"mask value {int(raw[bad][0])} is outside [0, {num_classes}) "
                                  f"and is not ignore_value={ignore_value}; check num_classes")
        inside &= raw != ignore_value
    return np.where(inside, raw, IGNORE_LABEL).astype(np.uint8)


class _Decoder:
    """Decodes one record's image and mask, resized to ``size`` (optionally cropped first)."""

    def __init__(self, image_key: str, mask_key: str, size: tuple[int, int], channels: int,
                 num_classes: int, ignore_value: int | None):
        self.image_key, self.mask_key, self.size, self.channels = (image_key, mask_key, size,
                                                                   channels)
        self.num_classes, self.ignore_value = num_classes, ignore_value

    def __call__(self, record: dict, crop_params=None) -> tuple[np.ndarray, np.ndarray]:
        try:
            img = image_lib.decode(record[self.image_key], self.channels)
            raw = image_lib.decode_mask(record[self.mask_key])
        except image_lib.DECODE_ERRORS as e:
            raise ValidationError(f"TFDS record holds an unreadable image or mask: {e}") from None
        if raw.shape != img.shape[:2]:
            raise ValidationError(f"TFDS record: mask {raw.shape} and image {img.shape[:2]} differ "
                                  f"in size")
        mask = map_mask(raw, self.num_classes, self.ignore_value)
        if crop_params is not None:
            box = augment_lib.box(img.shape[0], img.shape[1], crop_params)
            img, mask = image_lib.crop(img, box), image_lib.crop(mask, box)
        return image_lib.resize(img, self.size), image_lib.resize_nearest(mask, self.size)


class LazySegmentationSource:
    """A TFDS segmentation split decoded per batch (for datasets too big for memory)."""

    crops_at_decode = True
    fields = ("mask",)

    def __init__(self, records, decoder: _Decoder):
        self.records, self.decoder = records, decoder

    def __len__(self) -> int:
        return len(self.records)

    def load(self, indices, crop_boxes=None):
        records = self.records.__getitems__([int(i) for i in indices])
        params = [None] * len(records) if crop_boxes is None else list(crop_boxes)
        with concurrent.futures.ThreadPoolExecutor(tfds_source.WORKERS) as pool:
            pairs = list(pool.map(self.decoder, records, params))
        return {"image": image_lib.to_float(np.stack([p[0] for p in pairs])),
                "mask": np.stack([p[1] for p in pairs]).astype(np.int32)}


def _load_into_memory(records, n: int, decoder: _Decoder) -> ArraySource:
    images = np.empty((n, *decoder.size, decoder.channels), np.uint8)
    masks = np.empty((n, *decoder.size), np.uint8)
    start = 0
    with concurrent.futures.ThreadPoolExecutor(tfds_source.WORKERS) as pool:
        for chunk in tfds_source.chunks_from_data_source(records):
            for i, (img, mask) in enumerate(pool.map(decoder, chunk), start=start):
                images[i], masks[i] = img, mask
            start += len(chunk)
    if start != n:
        raise ValidationError(f"expected {n} examples, read {start}")
    return ArraySource(images, masks=masks)


def _check_classes(num_classes: Any, ignore_value: Any) -> None:
    if num_classes is None:
        raise ValidationError("task='segmentation' needs num_classes= (the number of mask "
                              "classes, background included; masks carry no class metadata)")
    if (isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer))
            or not 1 <= num_classes <= IGNORE_LABEL):
        raise ValidationError(f"num_classes must be an integer in [1, {IGNORE_LABEL}] "
                              f"({IGNORE_LABEL} is IGNORE_LABEL), got {num_classes!r}")
    if ignore_value is not None and (isinstance(ignore_value, bool)
                                     or not isinstance(ignore_value, (int, np.integer))):
        raise ValidationError(f"ignore_value must be an integer mask value or None, got "
                              f"{ignore_value!r}")


def build(name: str, builder, root: str, *, resolution: int | None, augment: str,
          train_split: str, eval_split: str | None, in_memory: bool | None,
          num_classes: int | None, mask_key: str | None, ignore_value: int | None,
          mean: Any = None, std: Any = None) -> Dataset:
    """A segmentation :class:`Dataset` over the prepared TFDS ``builder`` (module docstring)."""
    import tensorflow_datasets as tfds

    _check_classes(num_classes, ignore_value)
    info = builder.info
    image_key, mask_key = feature_keys(name, info, mask_key)
    image_feat = info.features[image_key]
    channels = tfds_source.channels_of(name, image_feat, image_key)
    size, _ = tfds_source.target_size(image_feat, resolution)
    train_split, eval_split, counts = tfds_source.resolve_splits(name, info, train_split,
                                                                 eval_split)
    if in_memory is None:
        per_example = size[0] * size[1] * (channels + 1)
        in_memory = sum(counts.values()) * per_example <= tfds_source.IN_MEMORY_BYTES
    tfds_source.check_random_access(name, builder, root, tf_fallback=False,
                                    need="reading a segmentation dataset")
    decoder = _Decoder(image_key, mask_key, size, channels, int(num_classes), ignore_value)
    skip = tfds.decode.SkipDecoding()
    splits = {}
    for key, split in (("train", train_split), ("test", eval_split)):
        records = builder.as_data_source(split=split, decoders={image_key: skip, mask_key: skip})
        splits[key] = (_load_into_memory(records, counts[key], decoder) if in_memory
                       else LazySegmentationSource(records, decoder))
        if len(splits[key]) == 0:
            raise ValidationError(f"TFDS dataset {name!r}: split {split!r} is empty")
    return make_dataset(
        name, int(num_classes), splits, (*size, channels), augment="none" if augment == "auto"
        else augment, mean=mean, std=std, task="segmentation",
        description=f"TFDS segmentation {info.full_name} from {root} ({image_key!r} + "
                    f"{mask_key!r}, {train_split} / {eval_split}, "
                    f"{'in memory' if in_memory else 'decoded per batch'})")
