"""YOLOv3 targets and loss against a plain loop-by-loop numpy reference of the PaddleDetection
conventions (best of nine anchors by size IoU, offsets in the cell, log-space sizes, 2 - w h,
ignore threshold on the objectness negatives), plus jit and gradients."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lightjax.detect import yolo_loss
from lightjax.models import yolov3_mobilenet_v1 as yolo

ANCHORS, MASKS = yolo.ANCHORS, yolo.ANCHOR_MASKS
IMAGE = (128, 96)  # height, width
GRIDS = ((4, 3), (8, 6), (16, 12))
C = 3


def _bce(logit, target):
    p = 1 / (1 + np.exp(-logit))
    return -(target * np.log(p) + (1 - target) * np.log(1 - p))


def _iou(a, b):
    lo, hi = np.maximum(a[:2], b[:2]), np.minimum(a[2:], b[2:])
    inter = np.prod(np.maximum(hi - lo, 0))
    union = np.prod(a[2:] - a[:2]) + np.prod(b[2:] - b[:2]) - inter
    return inter / union


def reference(outputs, boxes, classes, count, ignore=0.7):
    """Loss parts, one image, one box, one cell at a time."""
    h_img, w_img = IMAGE
    parts = np.zeros(4)
    n = boxes.shape[0]
    for s, (out, mask) in enumerate(zip(outputs, MASKS)):
        gh, gw = out.shape[1:3]
        p = out.reshape(n, gh, gw, 3, 5 + C).astype(np.float64)
        for i in range(n):
            obj = np.zeros((gh, gw, 3))
            for j in range(count[i]):
                x0, y0, x1, y1 = boxes[i, j]
                bw, bh = (x1 - x0) * w_img, (y1 - y0) * h_img
                ious = [min(bw, aw) * min(bh, ah) / (bw * bh + aw * ah - min(bw, aw) * min(bh, ah))
                        for aw, ah in ANCHORS]
                best = int(np.argmax(ious))
                if best not in mask:
                    continue
                a = mask.index(best)
                cx, cy = (x0 + x1) / 2 * gw, (y0 + y1) / 2 * gh
                gi, gj = int(cx), int(cy)
                weight = 2 - (x1 - x0) * (y1 - y0)
                q = p[i, gj, gi, a]
                parts[0] += weight * (_bce(q[0], cx - gi) + _bce(q[1], cy - gj)) / n
                parts[1] += weight * (abs(q[2] - np.log(bw / ANCHORS[best][0]))
                                      + abs(q[3] - np.log(bh / ANCHORS[best][1]))) / n
                parts[3] += sum(_bce(q[5 + k], float(k == classes[i, j])) for k in range(C)) / n
                obj[gj, gi, a] = 1
            for gj in range(gh):
                for gi in range(gw):
                    for a, anchor in enumerate(mask):
                        q = p[i, gj, gi, a]
                        if obj[gj, gi, a]:
                            parts[2] += _bce(q[4], 1.0) / n
                            continue
                        cx = (1 / (1 + np.exp(-q[0])) + gi) / gw
                        cy = (1 / (1 + np.exp(-q[1])) + gj) / gh
                        bw = ANCHORS[anchor][0] * np.exp(q[2]) / w_img
                        bh = ANCHORS[anchor][1] * np.exp(q[3]) / h_img
                        pred = np.array([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2])
                        best_iou = max([_iou(pred, boxes[i, j]) for j in range(count[i])],
                                       default=0.0)
                        if best_iou <= ignore:
                            parts[2] += _bce(q[4], 0.0) / n
    return parts


def _case(seed):
    rng = np.random.default_rng(seed)
    outputs = [rng.normal(0, 1, (2, gh, gw, 3 * (5 + C))).astype(np.float32) for gh, gw in GRIDS]
    m = 4
    boxes = np.zeros((2, m, 4), np.float32)
    classes = np.full((2, m), -1, np.int32)
    count = np.array([3, 1], np.int32)
    sizes = [(0.9, 0.8), (0.1, 0.15), (0.35, 0.3), (0.05, 0.05)]
    for i in range(2):
        for j in range(count[i]):
            w, h = sizes[(i + j) % 4]
            x0, y0 = rng.uniform(0, 1 - w), rng.uniform(0, 1 - h)
            boxes[i, j] = [x0, y0, x0 + w, y0 + h]
            classes[i, j] = rng.integers(C)
    return outputs, boxes, classes, count


@pytest.mark.parametrize("seed", [0, 1])
def test_loss_equals_the_loop_reference(seed):
    outputs, boxes, classes, count = _case(seed)
    batch = {"boxes": jnp.asarray(boxes), "box_classes": jnp.asarray(classes),
             "box_count": jnp.asarray(count)}
    fn = jax.jit(lambda outs, b: yolo_loss.loss(outs, b, IMAGE, ANCHORS, MASKS, C))
    total, parts = fn([jnp.asarray(o) for o in outputs], batch)
    expected = reference(outputs, boxes, classes, count)
    got = [float(parts[k]) for k in ("loss_xy", "loss_wh", "loss_obj", "loss_cls")]
    np.testing.assert_allclose(got, expected, rtol=1e-4)
    assert float(total) == pytest.approx(sum(expected), rel=1e-4)
    assert all(v > 0 for v in expected)  # every part is exercised


def test_ignore_threshold_removes_negatives_that_overlap_a_box():
    outputs, boxes, classes, count = _case(2)
    batch = {"boxes": jnp.asarray(boxes), "box_classes": jnp.asarray(classes),
             "box_count": jnp.asarray(count)}
    strict = yolo_loss.loss([jnp.asarray(o) for o in outputs], batch, IMAGE, ANCHORS, MASKS, C,
                            ignore_thresh=1.0)[1]["loss_obj"]
    loose = yolo_loss.loss([jnp.asarray(o) for o in outputs], batch, IMAGE, ANCHORS, MASKS, C,
                           ignore_thresh=0.0)[1]["loss_obj"]
    default = yolo_loss.loss([jnp.asarray(o) for o in outputs], batch, IMAGE, ANCHORS, MASKS,
                             C)[1]["loss_obj"]
    assert float(loose) < float(default) <= float(strict)
    np.testing.assert_allclose(float(strict), reference(outputs, boxes, classes, count, 1.0)[2],
                               rtol=1e-4)


def test_targets_place_each_box_at_its_best_anchor_and_cell():
    boxes = jnp.asarray([[[0.5, 0.5, 0.6, 0.62], [0.0, 0.2, 1.0, 0.9], [0, 0, 0, 0]]])
    classes = jnp.asarray([[2, 0, -1]])
    count = jnp.asarray([2])
    h, w = IMAGE
    small = (0.1 * w, 0.12 * h)  # 9.6 x 15.36 px: best anchor 0 (10, 13) on the stride-8 map
    t = np.asarray(yolo_loss.targets(boxes, classes, count, IMAGE, GRIDS[2], ANCHORS, MASKS[2],
                                     C))
    assert t[..., 5].sum() == 1
    cx, cy = 0.55 * 12, 0.56 * 16
    cell = t[0, int(cy), int(cx), 0]
    np.testing.assert_allclose(cell[:2], [cx - int(cx), cy - int(cy)], rtol=1e-5)
    np.testing.assert_allclose(cell[2:4], np.log(np.array(small) / (10, 13)), rtol=1e-5)
    np.testing.assert_allclose(cell[4], 2 - 0.1 * 0.12, rtol=1e-6)
    np.testing.assert_array_equal(cell[6:], [0, 0, 1])
    big = np.asarray(yolo_loss.targets(boxes, classes, count, IMAGE, GRIDS[0], ANCHORS,
                                       MASKS[0], C, label_smoothing=0.3))
    assert big[..., 5].sum() == 1  # the large box: an anchor of the stride-32 map
    assigned = big[big[..., 5] == 1][0]
    np.testing.assert_allclose(assigned[6:], [0.7 + 0.1, 0.1, 0.1], rtol=1e-6)
    # the padding entry and a box of another scale leave the middle map empty
    assert np.asarray(yolo_loss.targets(boxes, classes, count, IMAGE, GRIDS[1], ANCHORS,
                                        MASKS[1], C))[..., 5].sum() == 0


def test_gradients_are_finite_and_reach_every_output():
    outputs, boxes, classes, count = _case(3)
    batch = {"boxes": jnp.asarray(boxes), "box_classes": jnp.asarray(classes),
             "box_count": jnp.asarray(count)}
    grads = jax.grad(lambda outs: yolo_loss.loss(outs, batch, IMAGE, ANCHORS, MASKS, C)[0])(
        [jnp.asarray(o) for o in outputs])
    for g in grads:
        assert np.isfinite(np.asarray(g)).all() and np.abs(np.asarray(g)).sum() > 0
