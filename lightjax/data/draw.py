"""Pictures of predictions with Pillow: boxes with labels, segmentation overlays, a caption.

Pure functions: each takes an (H, W, 3) uint8 image (numpy) and returns a new one of the same
size; nothing is written to disk and no legend is drawn. Colours come from :func:`class_color`, a
fixed palette (class ``i`` always gets the same colour, neighbouring ids clearly different
hues), shared by boxes and mask overlays.
"""
from __future__ import annotations

import colorsys
from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

#: hue step between consecutive class ids (the golden ratio: well spread for any class count)
_HUE_STEP = 0.6180339887498949


def class_color(index: int) -> tuple[int, int, int]:
    """The fixed RGB colour of class ``index`` (any integer >= 0)."""
    hue = (0.05 + int(index) * _HUE_STEP) % 1.0
    saturation = 0.85 if (int(index) // 7) % 2 == 0 else 0.6
    r, g, b = colorsys.hsv_to_rgb(hue, saturation, 0.95)
    return int(round(255 * r)), int(round(255 * g)), int(round(255 * b))


def palette(num_classes: int) -> np.ndarray:
    """(num_classes, 3) uint8: :func:`class_color` of ``0 .. num_classes-1``."""
    return np.asarray([class_color(i) for i in range(int(num_classes))], np.uint8).reshape(-1, 3)


def _rgb(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim == 2:
        image = image[..., None]
    if image.ndim != 3 or image.shape[-1] not in (1, 3, 4):
        raise ValueError(f"expected an (H, W, 3) image, got shape {image.shape}")
    if image.dtype != np.uint8:
        raise ValueError(f"expected a uint8 image, got {image.dtype}")
    if image.shape[-1] == 1:
        image = np.repeat(image, 3, axis=-1)
    return np.ascontiguousarray(image[..., :3])


def line_width(height: int, width: int) -> int:
    """Box outline width for an image of this size: 1 pixel up to ~300 px, then thicker."""
    return max(1, int(round(min(height, width) / 300)))


def _font(size: int):
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: one bitmap size
        return ImageFont.load_default()


def _text_color(background: Sequence[int]) -> tuple[int, int, int]:
    r, g, b = background[:3]
    return (0, 0, 0) if 0.299 * r + 0.587 * g + 0.114 * b > 140 else (255, 255, 255)


def _label(draw: ImageDraw.ImageDraw, text: str, x: float, y: float, color, font,
           width: int, height: int, below: float | None = None) -> None:
    """A filled tag with ``text`` whose bottom-left corner is at (x, y); moved below ``below``
    (or inside the image) when it would leave the top."""
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    tw, th = right - left + 4, bottom - top + 2
    x0 = min(max(0, int(round(x))), max(0, width - tw))
    y0 = int(round(y)) - th
    if y0 < 0:
        y0 = int(round(below)) + 1 if below is not None and below + th < height else 0
    draw.rectangle([x0, y0, x0 + tw - 1, y0 + th - 1], fill=tuple(color))
    draw.text((x0 + 2 - left, y0 + 1 - top), text, fill=_text_color(color), font=font)


def draw_boxes(image: np.ndarray, boxes: np.ndarray, classes: Sequence[int],
               labels: Sequence[str] | None = None, width: int | None = None,
               font_size: int | None = None,
               colors: Sequence[Sequence[int]] | None = None) -> np.ndarray:
    """``image`` with one rectangle per box in its class's colour (or ``colors``, one RGB per
    box), and a filled tag with the label text (e.g. ``'circle 0.87'``) on top of each box when
    ``labels`` are given.

    ``boxes`` (K, 4) are ``(x_min, y_min, x_max, y_max)`` in pixels of ``image``; the outline
    covers the pixels from ``floor``/``round`` of the corners inwards, ``width`` thick (default
    :func:`line_width`)."""
    out = Image.fromarray(_rgb(image))
    h, w = out.height, out.width
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    if len(classes) != len(boxes) or (labels is not None and len(labels) != len(boxes)) or \
            (colors is not None and len(colors) != len(boxes)):
        raise ValueError(f"got {len(boxes)} boxes, {len(classes)} classes, "
                         f"{'no' if labels is None else len(labels)} labels and "
                         f"{'no' if colors is None else len(colors)} colors")
    color = [class_color(c) for c in classes] if colors is None else \
        [tuple(int(v) for v in c) for c in colors]
    width = line_width(h, w) if width is None else int(width)
    font = _font(font_size or max(10, min(h, w) // 25))
    draw = ImageDraw.Draw(out)
    corners = []
    for box, rgb in zip(boxes, color):
        x0, y0, x1, y1 = (int(round(v)) for v in np.clip(box, 0, [w - 1, h - 1, w - 1, h - 1]))
        x1, y1 = max(x0, x1), max(y0, y1)
        draw.rectangle([x0, y0, x1, y1], outline=rgb, width=width)
        corners.append((x0, y0, y1))
    if labels is not None:  # after every outline, so no box hides a tag
        for (x0, y0, y1), rgb, text in zip(corners, color, labels):
            if text:
                _label(draw, str(text), x0, y0, rgb, font, w, h, below=y1)
    return np.asarray(out)


def overlay_mask(image: np.ndarray, mask: np.ndarray, alpha: float = 0.5,
                 transparent: Sequence[int] = ()) -> np.ndarray:
    """``image`` blended with the colour of each pixel's class in ``mask`` (H, W) integer ids:
    ``(1 - alpha) * image + alpha * colour``; ids in ``transparent`` (e.g. background) and ids
    outside ``0..255`` leave their pixels unchanged."""
    rgb = _rgb(image)
    mask = np.asarray(mask)
    if mask.shape != rgb.shape[:2]:
        raise ValueError(f"mask shape {mask.shape} does not match image {rgb.shape[:2]}")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    ids = mask.astype(np.int64)
    colors = palette(256).astype(np.float32)
    painted = (ids >= 0) & (ids < 256)
    for t in transparent:
        painted &= ids != int(t)
    blended = (1.0 - alpha) * rgb.astype(np.float32) + alpha * colors[np.clip(ids, 0, 255)]
    out = np.where(painted[..., None], np.round(blended), rgb.astype(np.float32))
    return out.astype(np.uint8)


def draw_caption(image: np.ndarray, text: str, color: Sequence[int] = (255, 255, 255),
                 font_size: int | None = None) -> np.ndarray:
    """``image`` with a filled tag holding ``text`` in its top-left corner (e.g. the top-1
    class of a classifier)."""
    out = Image.fromarray(_rgb(image))
    font = _font(font_size or max(10, min(out.height, out.width) // 20))
    draw = ImageDraw.Draw(out)
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    _label(draw, text, 0, bottom - top + 2, tuple(color), font, out.width, out.height)
    return np.asarray(out)
