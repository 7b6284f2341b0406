"""Augmentation: pad + crop, flip, inception boxes, determinism, policies on a Dataset."""
import numpy as np
import pytest

from lightjax import data
from lightjax.data import augment, images


def _images(n=6, h=8, w=8, c=3, seed=0):
    return np.random.default_rng(seed).random((n, h, w, c)).astype(np.float32)


def test_pad_crop_keeps_shape_and_translates():
    x = _images()
    pad = augment.pad_for(8)
    assert pad == 1 and augment.pad_for(32) == 4
    centred = augment.pad_crop(x, np.full((6, 2), pad), pad)
    np.testing.assert_array_equal(centred, x)  # offset (pad, pad) is the identity
    shifted = augment.pad_crop(x, np.zeros((6, 2), int), pad)
    assert shifted.shape == x.shape
    np.testing.assert_array_equal(shifted[:, pad:, pad:], x[:, :-pad, :-pad])
    assert not shifted[:, :pad].any() and not shifted[:, :, :pad].any()  # zero border


def test_flip_flips_only_flagged():
    x = _images()
    flags = np.array([True, False, True, False, False, True])
    y = augment.flip(x, flags)
    np.testing.assert_array_equal(y[flags], x[flags][:, :, ::-1])
    np.testing.assert_array_equal(y[~flags], x[~flags])


def test_draw_is_deterministic_by_seed():
    a = augment.draw("cifar", 64, np.random.default_rng([1, 2]), 32)
    b = augment.draw("cifar", 64, np.random.default_rng([1, 2]), 32)
    c = augment.draw("cifar", 64, np.random.default_rng([1, 3]), 32)
    np.testing.assert_array_equal(a.offsets, b.offsets)
    np.testing.assert_array_equal(a.flips, b.flips)
    assert not np.array_equal(a.offsets, c.offsets)
    assert a.offsets.min() >= 0 and a.offsets.max() <= 8
    assert 0 < a.flips.sum() < 64
    none = augment.draw("none", 4, np.random.default_rng(0), 32)
    assert none.offsets is None and none.flips is None and none.crops is None
    crop = augment.draw("crop", 4, np.random.default_rng(0), 32)
    assert crop.flips is None  # 'crop' never flips


def test_inception_boxes_stay_inside():
    p = augment.draw("inception_crop", 200, np.random.default_rng(0), 32)
    for h, w in ((32, 32), (17, 40), (300, 200)):
        for row in p.crops:
            top, left, bh, bw = augment.box(h, w, row)
            assert 0 <= top and top + bh <= h and 0 <= left and left + bw <= w
            assert bh >= 1 and bw >= 1
    out = augment.apply(_images(h=16, w=16), p[slice(0, 6)])
    assert out.shape == (6, 16, 16, 3)


def test_check_policy():
    assert augment.check_policy("auto") == "auto"
    with pytest.raises(ValueError, match="allowed: auto, none, crop, cifar, flip"):
        augment.check_policy("randaugment")
    with pytest.raises(ValueError):
        augment.check_policy("auto", allow_auto=False)


def _toy(policy):
    """A Dataset over asymmetric images (a bright left column) to see flips and shifts."""
    n = 32
    x = np.zeros((n, 8, 8, 3), np.uint8)
    x[:, 2:6, 2, :] = 255
    x[:, 2:6, 3, :] = np.arange(n)[:, None, None]
    src = data.ArraySource(x, np.arange(n) % 4)
    return data.make_dataset("toy", 4, {"train": src, "test": src}, (8, 8, 3), augment=policy,
                             mean=0.0, std=1.0), images.to_float(x)


def test_flip_policy_on_batches():
    ds, x = _toy("flip")
    kw = dict(shuffle=False, process_index=0, process_count=1)
    batch = next(ds.batches("train", 32, seed=4, **kw))["image"]
    flipped = np.array([np.array_equal(b, o[:, ::-1]) for b, o in zip(batch, x)])
    same = np.array([np.array_equal(b, o) for b, o in zip(batch, x)])
    assert (flipped ^ same).all() and flipped.any() and same.any()
    again = next(ds.batches("train", 32, seed=4, **kw))["image"]
    np.testing.assert_array_equal(batch, again)
    other = next(ds.batches("train", 32, seed=5, **kw))["image"]
    assert not np.array_equal(batch, other)
    test = next(ds.batches("test", 32, **kw))["image"]  # eval: no augmentation by default
    np.testing.assert_array_equal(test, x)


def test_cifar_policy_on_batches():
    ds, x = _toy("cifar")
    batch = next(ds.batches("train", 32, shuffle=False, process_index=0, process_count=1))
    assert batch["image"].shape == (32, 8, 8, 3)
    assert not np.array_equal(batch["image"], x)
    # every augmented image is a shifted (by <= 1 px), possibly mirrored copy of its source
    for b, o in zip(batch["image"], x):
        padded = np.pad(o, ((1, 1), (1, 1), (0, 0)))
        cands = [padded[dy:dy + 8, dx:dx + 8] for dy in range(3) for dx in range(3)]
        cands += [c[:, ::-1] for c in cands]
        assert any(np.array_equal(b, c) for c in cands)


# -- geometric fields move with the pixels ---------------------------------------------------------
IGN = data.IGNORE_LABEL
# Three rectangles on an 8x8 image (class, (x0, y0, x1, y1) in pixels): A a 2x2 block, B a
# one-pixel column on the left border, C a 2x2 block in the top-right corner.
OBJECTS = [(3, (1, 1, 3, 3)), (1, (0, 4, 1, 7)), (2, (6, 0, 8, 2))]


def _paint(objects, size=8):
    mask = np.zeros((size, size), np.int32)
    for c, (x0, y0, x1, y1) in objects:
        mask[y0:y1, x0:x1] = c
    return mask


def _example(objects=OBJECTS, m=4):
    """A one-example dict: mask, boxes (fractions), image channel k = (mask == k + 1)."""
    mask = _paint(objects)
    bx = np.zeros((1, m, 4), np.float32)
    cl = np.full((1, m), -1, np.int32)
    for j, (c, b) in enumerate(objects):
        bx[0, j], cl[0, j] = np.asarray(b) / 8, c
    image = np.stack([mask == k for k in (1, 2, 3)], -1).astype(np.float32)[None]
    return {"image": image, "mask": mask[None], "boxes": bx, "box_classes": cl,
            "box_count": np.array([len(objects)], np.int32)}


def _check(out, objects, ignore_rows=(), ignore_cols=()):
    want = _example(objects)
    want_mask = want["mask"][0].copy()
    want_mask[list(ignore_rows), :] = IGN
    want_mask[:, list(ignore_cols)] = IGN
    np.testing.assert_array_equal(out["mask"][0], want_mask)
    for key in ("box_classes", "box_count"):
        np.testing.assert_array_equal(out[key], want[key])
    np.testing.assert_allclose(out["boxes"], want["boxes"], atol=1e-6)
    for k in (1, 2, 3):  # pixels moved exactly like the mask
        np.testing.assert_array_equal(out["image"][0, ..., k - 1] > 0.5, out["mask"][0] == k)


def test_flip_moves_mask_and_boxes():
    out = augment.mirror(_example(), np.array([True]))
    _check(out, [(3, (5, 1, 7, 3)), (1, (7, 4, 8, 7)), (2, (0, 0, 2, 2))])
    same = augment.mirror(_example(), np.array([False]))
    _check(same, OBJECTS)


def test_pad_crop_moves_mask_and_boxes():
    # offset (0, 0) in the 1-padded image: everything moves down-right by one pixel
    out = augment.translate(_example(), np.array([[0, 0]]), 1)
    _check(out, [(3, (2, 2, 4, 4)), (1, (1, 5, 2, 8)), (2, (7, 1, 8, 3))],
           ignore_rows=[0], ignore_cols=[0])
    assert not out["image"][0, 0].any() and not out["image"][0, :, 0].any()  # black border
    # offset (2, 2): up-left by one; B leaves the image (removed), C is cut by the top border
    out = augment.translate(_example(), np.array([[2, 2]]), 1)
    _check(out, [(3, (0, 0, 2, 2)), (2, (5, 0, 7, 1))], ignore_rows=[7], ignore_cols=[7])


def test_inception_crop_moves_mask_and_boxes():
    # area 1/4, square, u ~ 1, v = 0: the 4x4 window at (top 0, left 4), scaled by 2
    crops = np.array([[0.25, 0.0, 0.99, 0.0]])
    assert augment.box(8, 8, crops[0]) == (0, 4, 4, 4)
    out = augment.inception_crop(_example(), crops)
    np.testing.assert_array_equal(out["mask"][0], _paint([(2, (4, 0, 8, 4))]))
    np.testing.assert_array_equal(out["box_classes"][0], [2, -1, -1, -1])
    np.testing.assert_allclose(out["boxes"][0, 0], [0.5, 0, 1, 0.5], atol=1e-6)
    assert out["box_count"].tolist() == [1]


def test_apply_runs_crop_then_translate_then_flip():
    p = augment.Params(offsets=np.array([[0, 0]]), flips=np.array([True]))
    out = augment.apply(_example(), p)
    # down-right by one, then mirrored: A at x 4..6, y 2..4
    assert out["mask"][0, 2:4, 4:6].tolist() == [[3, 3], [3, 3]]
    np.testing.assert_allclose(out["boxes"][0, 0], [4 / 8, 2 / 8, 6 / 8, 4 / 8], atol=1e-6)
    assert (out["mask"][0, 0] == IGN).all() and (out["mask"][0, :, 7] == IGN).all()
