"""Decoding and class-aware NMS inside jit against a numpy greedy NMS, fixed output size."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lightjax.detect import postprocess, yolo_loss
from lightjax.models import yolov3_mobilenet_v1 as yolo


def _iou(a, b):
    lo, hi = np.maximum(a[:2], b[:2]), np.minimum(a[2:], b[2:])
    inter = np.prod(np.maximum(hi - lo, 0))
    return inter / (np.prod(a[2:] - a[:2]) + np.prod(b[2:] - b[:2]) - inter)


def greedy(boxes, scores, iou_thr, score_thr, top):
    """(box index, class, score) kept by per-class greedy NMS, best first."""
    cands = sorted(((s, k, c) for k, row in enumerate(scores) for c, s in enumerate(row)
                    if s > score_thr), reverse=True)
    kept = []
    for s, k, c in cands:
        if all(c2 != c or _iou(boxes[k], boxes[k2]) <= iou_thr for _, k2, c2 in kept):
            kept.append((s, k, c))
    return kept[:top]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_nms_equals_greedy_per_class_nms(seed):
    rng = np.random.default_rng(seed)
    n, k, c = 2, 60, 3
    centers = rng.uniform(0.2, 0.8, (n, k, 2))
    sizes = rng.uniform(0.05, 0.4, (n, k, 2))
    boxes = np.concatenate([centers - sizes / 2, centers + sizes / 2], -1).astype(np.float32)
    scores = rng.uniform(0, 1, (n, k, c)).astype(np.float32) ** 3
    det = jax.jit(lambda b, s: postprocess.nms(b, s, 0.45, 0.05, 20, pre_nms=200))(
        jnp.asarray(boxes), jnp.asarray(scores))
    for i in range(n):
        expected = greedy(boxes[i], scores[i], 0.45, 0.05, 20)
        count = int(det.count[i])
        assert count == len(expected) and det.boxes.shape == (n, 20, 4)
        np.testing.assert_allclose(np.asarray(det.scores[i, :count]), [e[0] for e in expected],
                                   rtol=1e-6)
        np.testing.assert_array_equal(np.asarray(det.classes[i, :count]), [e[2] for e in expected])
        np.testing.assert_allclose(np.asarray(det.boxes[i, :count]),
                                   boxes[i, [e[1] for e in expected]], rtol=1e-6)
        assert np.all(np.asarray(det.scores[i, count:]) == 0)
        assert np.all(np.asarray(det.classes[i, count:]) == -1)


def test_decoding_follows_the_yolov3_formulas():
    image = (64, 96)
    grid = (2, 3)
    t = np.zeros((1, 2, 3, 3 * (5 + 2)), np.float32)
    t[0, 1, 2, 7 + 0] = 0.5  # anchor 1 of the mask, t_x
    t[0, 1, 2, 7 + 3] = -0.25  # t_h
    boxes, _ = yolo_loss.decode_scale(jnp.asarray(t), image, yolo.ANCHORS, yolo.ANCHOR_MASKS[0])
    b = np.asarray(boxes)[0, 1, 2, 1]
    aw, ah = yolo.ANCHORS[yolo.ANCHOR_MASKS[0][1]]
    cx, cy = (1 / (1 + np.exp(-0.5)) + 2) / grid[1], (0.5 + 1) / grid[0]
    w, h = aw / image[1], ah * np.exp(-0.25) / image[0]
    np.testing.assert_allclose(b, [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], rtol=1e-5)


def test_detect_on_model_outputs_has_a_fixed_size():
    m = yolo.YOLOv3MobileNetV1(num_classes=2, alpha=0.25, head_width=0.25)
    x = jnp.zeros((2, 64, 64, 3))
    v = m.init(jax.random.PRNGKey(0), x)
    det = jax.jit(lambda v, x: postprocess.detect(m.apply(v, x), (64, 64), yolo.ANCHORS,
                                                  yolo.ANCHOR_MASKS, max_detections=7))(v, x)
    assert det.boxes.shape == (2, 7, 4) and det.classes.dtype == jnp.int32
    assert np.all((np.asarray(det.boxes) >= 0) & (np.asarray(det.boxes) <= 1))
    with pytest.raises(ValueError, match="score_threshold"):
        postprocess.nms(jnp.zeros((1, 2, 4)), jnp.zeros((1, 2, 1)), score_threshold=-1)
