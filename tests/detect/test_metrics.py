"""Detection metrics: COCO-style AP equal to pycocotools on the same detections, VOC AP by hand
(11-point and all-point, difficult boxes neither TP nor FP)."""
import contextlib
import io

import numpy as np
import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from lightjax.detect import metrics


def _scene(seed, images=6, classes=3):
    """Random ground truth in fractions and noisy detections of it plus clutter."""
    rng = np.random.default_rng(seed)
    sizes = [(int(rng.integers(100, 400)), int(rng.integers(100, 400))) for _ in range(images)]
    gts, dets = [], []
    for _ in range(images):
        g = int(rng.integers(0, 6))
        c = rng.uniform(0.1, 0.9, (g, 2))
        wh = rng.uniform(0.03, 0.6, (g, 2))
        boxes = np.clip(np.concatenate([c - wh / 2, c + wh / 2], -1), 0, 1)
        cls = rng.integers(0, classes, g)
        gts.append((boxes, cls, np.zeros(g, bool)))
        jitter = boxes + rng.normal(0, 0.03, boxes.shape)
        extra = int(rng.integers(0, 5))
        ce = rng.uniform(0.1, 0.9, (extra, 2))
        we = rng.uniform(0.02, 0.5, (extra, 2))
        d_boxes = np.concatenate([jitter, np.concatenate([ce - we / 2, ce + we / 2], -1)])
        d_boxes = np.clip(d_boxes, 0, 1)
        d_cls = np.concatenate([np.where(rng.uniform(size=g) < 0.8, cls, (cls + 1) % classes),
                                rng.integers(0, classes, extra)])
        dets.append((d_boxes, rng.uniform(0.05, 1, len(d_boxes)), d_cls))
    return gts, dets, sizes


def _pycocotools(gts, dets, sizes, classes=3):
    images, anns, results = [], [], []
    for i, ((gb, gc, _), (db, ds, dc), (h, w)) in enumerate(zip(gts, dets, sizes)):
        images.append({"id": i + 1, "height": h, "width": w})
        scale = np.array([w, h, w, h])
        for b, c in zip(gb * scale, gc):
            anns.append({"id": len(anns) + 1, "image_id": i + 1, "category_id": int(c) + 1,
                         "bbox": [b[0], b[1], b[2] - b[0], b[3] - b[1]],
                         "area": (b[2] - b[0]) * (b[3] - b[1]), "iscrowd": 0})
        for b, s, c in zip(db * scale, ds, dc):
            results.append({"image_id": i + 1, "category_id": int(c) + 1, "score": float(s),
                            "bbox": [b[0], b[1], b[2] - b[0], b[3] - b[1]]})
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = {"images": images, "annotations": anns,
                      "categories": [{"id": k + 1, "name": str(k)} for k in range(classes)]}
        gt.createIndex()
        ev = COCOeval(gt, gt.loadRes(results), "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return ev.stats[:6]


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_coco_ap_equals_pycocotools(seed):
    gts, dets, sizes = _scene(seed)
    ours = metrics.coco_ap(dets, gts, sizes)
    expected = _pycocotools(gts, dets, sizes)
    got = [ours[k] for k in ("AP", "AP50", "AP75", "AP_small", "AP_medium", "AP_large")]
    np.testing.assert_allclose(got, expected, atol=1e-12)
    assert 0 < ours["AP"] < 1


def test_voc_ap_by_hand_and_difficult_boxes():
    gt = [(np.array([[0, 0, 10, 10], [20, 20, 30, 30], [40, 40, 50, 50]]), np.array([0, 0, 0]),
           np.array([False, False, True]))]
    # best first: hit box 1, a miss, the difficult box (ignored), box 1 again (duplicate), box 2
    dets = [(np.array([[0, 0, 10, 10], [60, 60, 70, 70], [40, 40, 50, 50], [0, 0, 10, 9],
                       [20, 20, 30, 31]]), np.array([0.9, 0.8, 0.7, 0.6, 0.5]),
             np.zeros(5, int))]
    # ranked TP FP (ignored) FP TP: recall .5 .5 .5 1; precision 1 .5 .33 .5
    out = metrics.voc_map(dets, gt, num_classes=2, use_07=False)
    assert out["ap"][0] == pytest.approx(0.5 * 1.0 + 0.5 * 0.5)
    assert np.isnan(out["ap"][1]) and out["map"] == pytest.approx(0.75)
    eleven = metrics.voc_map(dets, gt, num_classes=1, use_07=True)["map"]
    assert eleven == pytest.approx((6 * 1.0 + 5 * 0.5) / 11)


def test_voc_ap_interpolations():
    recall = np.array([0.2, 0.4, 0.4, 0.8])
    precision = np.array([1.0, 0.5, 0.67, 0.5])
    # all points: envelope 1, .67, .67, .5 over recall steps .2 .2 .4 (and 0 beyond .8)
    assert metrics.voc_ap(recall, precision, use_07=False) == pytest.approx(
        0.2 * 1 + 0.2 * 0.67 + 0.4 * 0.5)
    # 11 points: t=0..0.2 -> 1 (3 points), 0.3..0.4 -> .67 (2), 0.5..0.8 -> .5 (4), 0.9, 1 -> 0
    assert metrics.voc_ap(recall, precision, use_07=True) == pytest.approx(
        (3 * 1 + 2 * 0.67 + 4 * 0.5) / 11)
