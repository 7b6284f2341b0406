"""YOLOv3 targets and loss, jittable with fixed-size padded ground truth.

Conventions follow PaddleDetection's ``yolov3_mobilenet_v1`` (``Gt2YoloTarget`` + ``YOLOv3Loss``),
the reference users compare against:

- **assignment**: each ground-truth box goes to its single best anchor among all nine by the IoU
  of the sizes (boxes sharing a centre), in the cell of the scale that anchor belongs to (the
  cell containing the box centre). Two boxes on one cell and anchor: one of them is kept (XLA
  scatter order), as in the reference where the later one overwrites.
- **targets** per assigned anchor: ``t_xy`` = the centre's offset in its cell (0..1), ``t_wh`` =
  ``log(box size / anchor size)`` (pixels), weight ``2 - w * h`` (w, h fractions of the image),
  objectness 1, class one-hot (label smoothing ``eps``: ``onehot * (1 - eps) + eps / C``).
- **loss**, summed over cells and anchors, averaged over images: ``xy`` BCE of ``sigmoid(p_xy)``
  against ``t_xy``, ``wh`` L1 of ``p_wh - t_wh``, both times the weight; objectness BCE, where
  predictions whose decoded box overlaps any ground truth by IoU > ``ignore_thresh`` (0.7 as in
  PaddleDetection; 0.5 in the YOLOv3 paper) get no negative penalty; class BCE on assigned
  anchors.

Shapes: ``outputs`` are the model's maps ``(N, h, w, A * (5 + C))`` per scale (channel
``a * (5 + C) + j``: t_x, t_y, t_w, t_h, objectness, classes); ground truth ``boxes`` (N, M, 4)
``(x_min, y_min, x_max, y_max)`` fractions, ``box_classes`` (N, M) (-1 = padding) and
``box_count`` (N,), real boxes first. Anchors are (width, height) in pixels of the input image.
"""
from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp

from lightjax.detect import boxes as boxes_lib

Anchors = Sequence[tuple[float, float]]
Masks = Sequence[Sequence[int]]


def _sigmoid_bce(logits: jax.Array, targets: jax.Array) -> jax.Array:
    """Binary cross-entropy of ``sigmoid(logits)`` against ``targets`` in [0, 1], stable."""
    return jnp.maximum(logits, 0) - logits * targets + jnp.log1p(jnp.exp(-jnp.abs(logits)))


def targets(boxes: jax.Array, classes: jax.Array, count: jax.Array, image_hw: tuple[int, int],
            grid_hw: tuple[int, int], anchors: Anchors, mask: Sequence[int], num_classes: int,
            label_smoothing: float = 0.0) -> jax.Array:
    """The target tensor of one scale: (N, h, w, len(mask), 6 + C) holding ``t_x, t_y, t_w, t_h``,
    the box weight ``2 - w h``, objectness (1 where a box is assigned) and the class targets.

    ``image_hw``: the input size in pixels; ``grid_hw``: this scale's output size.
    """
    n, m = classes.shape
    height, width = image_hw
    gh, gw = grid_hw
    all_anchors = jnp.asarray(anchors, jnp.float32)
    real = (jnp.arange(m)[None, :] < count[:, None]) & (classes >= 0)
    center = boxes_lib.to_center(boxes.astype(jnp.float32))
    size_px = center[..., 2:] * jnp.asarray([width, height], jnp.float32)
    real = real & (size_px[..., 0] > 0) & (size_px[..., 1] > 0)
    best = jnp.argmax(boxes_lib.wh_iou(size_px, all_anchors), axis=-1)  # (N, M)
    mask_arr = jnp.asarray(mask)
    in_scale = real & jnp.any(best[..., None] == mask_arr, axis=-1)
    local = jnp.argmax(best[..., None] == mask_arr, axis=-1)  # position of best in mask
    gx, gy = center[..., 0] * gw, center[..., 1] * gh
    gi = jnp.clip(jnp.floor(gx), 0, gw - 1).astype(jnp.int32)
    gj = jnp.clip(jnp.floor(gy), 0, gh - 1).astype(jnp.int32)
    anchor = all_anchors[best]  # (N, M, 2)
    twh = jnp.log(jnp.maximum(size_px, 1e-9) / anchor)
    weight = 2.0 - center[..., 2] * center[..., 3]
    onehot = jax.nn.one_hot(jnp.maximum(classes, 0), num_classes, dtype=jnp.float32)
    if label_smoothing:
        onehot = onehot * (1.0 - label_smoothing) + label_smoothing / num_classes
    values = jnp.concatenate([jnp.stack([gx - gi, gy - gj], -1), twh, weight[..., None],
                              jnp.ones((n, m, 1), jnp.float32), onehot], axis=-1)
    rows = jnp.broadcast_to(jnp.arange(n)[:, None], (n, m))
    gj = jnp.where(in_scale, gj, gh)  # out of range: dropped by the scatter
    out = jnp.zeros((n, gh, gw, len(mask), 6 + num_classes), jnp.float32)
    return out.at[rows, gj, gi, local].set(values, mode="drop")


def decode_scale(output: jax.Array, image_hw: tuple[int, int], anchors: Anchors,
                 mask: Sequence[int]) -> tuple[jax.Array, jax.Array]:
    """One scale's boxes and raw logits: ((N, h, w, A, 4) boxes as (x_min, y_min, x_max, y_max)
    fractions, (N, h, w, A, 1 + C) objectness and class logits).

    ``b_xy = (sigmoid(t_xy) + c_xy) / grid``, ``b_wh = anchor * exp(t_wh) / image size``.
    """
    n, gh, gw, ch = output.shape
    a = len(mask)
    p = output.reshape(n, gh, gw, a, ch // a).astype(jnp.float32)
    cells = jnp.stack(jnp.meshgrid(jnp.arange(gw), jnp.arange(gh)), -1)  # (h, w, 2) = (x, y)
    xy = (jax.nn.sigmoid(p[..., :2]) + cells[:, :, None, :]) / jnp.asarray([gw, gh], jnp.float32)
    anchor = jnp.asarray([anchors[i] for i in mask], jnp.float32)
    wh = anchor * jnp.exp(jnp.minimum(p[..., 2:4], 20.0)) / jnp.asarray(
        [image_hw[1], image_hw[0]], jnp.float32)
    return boxes_lib.to_corners(jnp.concatenate([xy, wh], -1)), p[..., 4:]


def loss(outputs: Sequence[jax.Array], batch: dict, image_hw: tuple[int, int], anchors: Anchors,
         masks: Masks, num_classes: int, ignore_thresh: float = 0.7,
         label_smoothing: float = 0.0) -> tuple[jax.Array, dict[str, jax.Array]]:
    """The YOLOv3 loss of a batch (mean over images) and its parts ``loss_xy``, ``loss_wh``,
    ``loss_obj``, ``loss_cls`` (module docstring)."""
    gt, classes, count = batch["boxes"], batch["box_classes"], batch["box_count"]
    n, m = classes.shape
    real = (jnp.arange(m)[None, :] < count[:, None]) & (classes >= 0)
    parts = {"loss_xy": 0.0, "loss_wh": 0.0, "loss_obj": 0.0, "loss_cls": 0.0}
    for output, mask in zip(outputs, masks):
        gh, gw = output.shape[1:3]
        t = targets(gt, classes, count, image_hw, (gh, gw), anchors, mask, num_classes,
                    label_smoothing)
        p = output.reshape(n, gh, gw, len(mask), -1).astype(jnp.float32)
        obj = t[..., 5]
        scale = t[..., 4] * obj
        xy = _sigmoid_bce(p[..., :2], t[..., :2]).sum(-1)
        wh = jnp.abs(p[..., 2:4] - t[..., 2:4]).sum(-1)
        pred, _ = decode_scale(output, image_hw, anchors, mask)
        overlap = boxes_lib.iou(jax.lax.stop_gradient(pred).reshape(n, -1, 4), gt)
        best = jnp.max(jnp.where(real[:, None, :], overlap, 0.0), axis=-1).reshape(obj.shape)
        negative = (1.0 - obj) * (best <= ignore_thresh)
        objectness = _sigmoid_bce(p[..., 4], obj) * (obj + negative)
        cls = _sigmoid_bce(p[..., 5:], t[..., 6:]).sum(-1) * obj
        per_image = lambda v: jnp.sum(v, axis=(1, 2, 3))  # noqa: E731
        parts["loss_xy"] += jnp.mean(per_image(xy * scale))
        parts["loss_wh"] += jnp.mean(per_image(wh * scale))
        parts["loss_obj"] += jnp.mean(per_image(objectness))
        parts["loss_cls"] += jnp.mean(per_image(cls))
    total = parts["loss_xy"] + parts["loss_wh"] + parts["loss_obj"] + parts["loss_cls"]
    return total, {k: jnp.asarray(v) for k, v in parts.items()}

