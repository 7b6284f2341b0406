"""Image helpers shared by the sources: decode with PIL, fix the channel count, resize.

Images travel as numpy arrays (H, W, C): ``uint8`` in 0..255 (decoded files, TFDS records) or
``float32`` in [0, 1] (the embedded digits). Resizing is bilinear (PIL), the same for every source.
Segmentation masks travel as integer arrays (H, W) of class ids; they are decoded without any
colour conversion and resized nearest-neighbour (:func:`resize_nearest`), so no new ids appear.
Detection images may be letterboxed (:func:`letterbox`: aspect kept, grey padding); boxes follow
with :func:`lightjax.data.boxes.letterbox`.
"""
from __future__ import annotations

import io
import math
import os
from typing import Union

import numpy as np
from PIL import Image, UnidentifiedImageError
from lightjax.errors import ValidationError

# What PIL raises on truncated, corrupt or non-image input.
DECODE_ERRORS = (OSError, UnidentifiedImageError, SyntaxError, ValueError,
                 Image.DecompressionBombError)

EVAL_CROP_FRACTION = 0.875  # ImageNet eval: resize the shorter side to size/0.875, centre-crop
LETTERBOX_FILL = 128  # uint8 grey of letterbox padding: 128/255 = 0.502 (ultralytics pads 114)


def _mode(channels: int) -> str:
    if channels == 1:
        return "L"
    if channels == 3:
        return "RGB"
    raise ValidationError(f"only 1- or 3-channel images are supported, got {channels} channels")


def decode(data: Union[bytes, str, os.PathLike], channels: int) -> np.ndarray:
    """Decode PNG/JPEG/... bytes or a file into uint8 (H, W, channels); alpha is dropped,
    grayscale <-> RGB converted. Raises PIL's error on unreadable input (callers name the file)."""
    src = io.BytesIO(data) if isinstance(data, (bytes, bytearray)) else data
    with Image.open(src) as img:
        img.load()
        img = img.convert(_mode(channels))
    arr = np.asarray(img, dtype=np.uint8)
    return arr[..., None] if arr.ndim == 2 else arr


def decode_mask(data: Union[bytes, str, os.PathLike]) -> np.ndarray:
    """Decode a PNG/... mask into int32 (H, W) of the stored values: palette images give their
    indices, 16-bit images their values; of a multi-channel image the first channel is kept."""
    src = io.BytesIO(data) if isinstance(data, (bytes, bytearray)) else data
    with Image.open(src) as img:
        img.load()
        arr = np.asarray(img)
    return (arr[..., 0] if arr.ndim == 3 else arr).astype(np.int32)


def resize_nearest(array: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize of (H, W, ...) to ``size = (height, width)``: output pixel i
    takes input pixel ``floor((i + 0.5) * H / height)`` (pixel centres, as PIL's bilinear)."""
    h, w = int(size[0]), int(size[1])
    in_h, in_w = array.shape[:2]
    if (in_h, in_w) == (h, w):
        return array
    rows = np.minimum(((np.arange(h) + 0.5) * (in_h / h)).astype(np.int64), in_h - 1)
    cols = np.minimum(((np.arange(w) + 0.5) * (in_w / w)).astype(np.int64), in_w - 1)
    return array[rows][:, cols]


def resize(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of one (H, W, C) image to ``size = (height, width)``; keeps the dtype."""
    h, w = int(size[0]), int(size[1])
    if image.shape[:2] == (h, w):
        return image
    if image.dtype == np.uint8:
        img = Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image)
        out = np.asarray(img.resize((w, h), Image.BILINEAR), dtype=np.uint8)
        return out[..., None] if out.ndim == 2 else out
    chans = [np.asarray(Image.fromarray(np.ascontiguousarray(image[..., c], dtype=np.float32))
                        .resize((w, h), Image.BILINEAR), dtype=np.float32)
             for c in range(image.shape[-1])]
    return np.stack(chans, axis=-1).astype(image.dtype, copy=False)


def crop(image: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """Cut ``box = (top, left, height, width)`` (pixels) out of (H, W, ...)."""
    top, left, height, width = box
    return image[top:top + height, left:left + width]


def center_crop_resize(image: np.ndarray, size: tuple[int, int],
                       crop_fraction: float = 1.0) -> np.ndarray:
    """Resize so the image covers ``size / crop_fraction`` (aspect kept), then centre-crop ``size``.

    ``crop_fraction=1`` is "resize the shorter side, crop the middle"; 0.875 is the usual ImageNet
    evaluation transform (256 -> 224)."""
    h, w = image.shape[:2]
    th, tw = size
    scale = max(th / h, tw / w) / crop_fraction
    nh, nw = max(th, math.ceil(h * scale - 1e-6)), max(tw, math.ceil(w * scale - 1e-6))
    image = resize(image, (nh, nw))
    top, left = (nh - th) // 2, (nw - tw) // 2
    return crop(image, (top, left, th, tw))


def letterbox_placement(image_hw: tuple[int, int], size: tuple[int, int]
                        ) -> tuple[int, int, int, int]:
    """(top, left, height, width) in pixels of a ``image_hw`` image letterboxed into ``size``:
    scaled by ``r = min(H / h, W / w)`` to ``round(h * r) x round(w * r)`` (at least 1 pixel) and
    centred (the odd pixel of padding goes to the bottom / right)."""
    h, w = (int(v) for v in image_hw)
    th, tw = (int(v) for v in size)
    r = min(th / h, tw / w)
    height, width = min(th, max(1, round(h * r))), min(tw, max(1, round(w * r)))
    return (th - height) // 2, (tw - width) // 2, height, width


def letterbox(image: np.ndarray, size: tuple[int, int], fill: float | int = LETTERBOX_FILL
              ) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """Resize (H, W, C) ``image`` into ``size`` keeping its aspect ratio (bilinear) and pad the
    rest with ``fill`` (uint8 grey :data:`LETTERBOX_FILL`; give 0.5 for float images). Returns
    (canvas, placement = (top, left, height, width) of the image in it, see
    :func:`letterbox_placement`); map boxes with :func:`lightjax.data.boxes.letterbox`."""
    placement = letterbox_placement(image.shape[:2], size)
    top, left, height, width = placement
    canvas = np.full((int(size[0]), int(size[1]), image.shape[-1]), fill, image.dtype)
    canvas[top:top + height, left:left + width] = resize(image, (height, width))
    return canvas, placement


def to_float(images: np.ndarray) -> np.ndarray:
    """uint8 0..255 -> float32 0..1; float images pass through as float32."""
    if images.dtype == np.uint8:
        return images.astype(np.float32) * np.float32(1.0 / 255.0)
    return images.astype(np.float32, copy=False)
