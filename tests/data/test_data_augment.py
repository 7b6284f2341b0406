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
    assert none.offsets is None and none.flips is None and none.boxes is None
    crop = augment.draw("crop", 4, np.random.default_rng(0), 32)
    assert crop.flips is None  # 'crop' never flips


def test_inception_boxes_stay_inside():
    p = augment.draw("inception_crop", 200, np.random.default_rng(0), 32)
    for h, w in ((32, 32), (17, 40), (300, 200)):
        for row in p.boxes:
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
