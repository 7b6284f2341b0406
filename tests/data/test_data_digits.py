"""The embedded digits dataset: sizes, split, resizing, normalization, no flipping."""
import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from lightjax import data
from lightjax.data import digits

ONE = dict(process_index=0, process_count=1)


def _all(ds, split, **kw):
    batches = list(ds.batches(split, 120 if split == "train" else 90, shuffle=False,
                              augment=False, drop_remainder=False, **ONE, **kw))
    valid = np.concatenate([b["valid"] for b in batches])
    return (np.concatenate([b["image"] for b in batches])[valid],
            np.concatenate([b["label"] for b in batches])[valid])


@pytest.fixture(scope="module")
def ds32():
    return data.build("digits")


def test_sizes_and_metadata(ds32):
    assert "digits" in data.names()
    assert ds32.size("train") == 1437 == digits.NUM_TRAIN
    assert ds32.size("test") == 360 == digits.NUM_TEST
    assert ds32.size("validation") == 360  # eval-split alias
    assert ds32.num_classes == 10
    assert ds32.image_shape == (32, 32, 1)
    assert ds32.augment == "none"
    assert ds32.class_names == tuple("0123456789")


@pytest.mark.parametrize("resolution", [16, 32])
def test_shapes(resolution):
    ds = data.build("digits", resolution=resolution)
    assert ds.image_shape == (resolution, resolution, 1)
    batch = next(ds.batches("train", 32, **ONE))
    assert batch["image"].shape == (32, resolution, resolution, 1)
    assert batch["image"].dtype == np.float32
    assert batch["label"].shape == (32,) and batch["label"].dtype == np.int32
    assert batch["valid"].dtype == bool and batch["valid"].all()


def test_normalization_and_range(ds32):
    x, _ = _all(ds32, "train")
    assert abs(float(x.mean())) < 1e-3
    assert abs(float(x.std()) - 1.0) < 1e-3
    raw = x * np.float32(ds32.std[0]) + np.float32(ds32.mean[0])
    assert raw.min() >= -1e-5 and raw.max() <= 1 + 1e-5
    assert raw.max() > 0.99  # ink reaches full intensity


def test_upscaled_images_match_sklearn_at_native_resolution():
    ds = data.build("digits", resolution=8)
    x, y = _all(ds, "test")
    raw = x * np.float32(ds.std[0]) + np.float32(ds.mean[0])
    d = load_digits()
    _, test = train_test_split(np.arange(len(d.target)), test_size=0.2, stratify=d.target,
                               random_state=0)
    test = np.sort(test)
    np.testing.assert_allclose(raw[..., 0], d.images[test] / 16.0, atol=1e-5)
    np.testing.assert_array_equal(y, d.target[test])


def test_split_is_fixed_and_stratified(ds32):
    again = data.build("digits")
    for split in ("train", "test"):
        xa, ya = _all(ds32, split)
        xb, yb = _all(again, split)
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ya, yb)
    _, y_train = _all(ds32, "train")
    _, y_test = _all(ds32, "test")
    assert np.bincount(y_train).tolist() == [142, 146, 142, 146, 145, 145, 145, 143, 139, 144]
    assert np.bincount(y_test).tolist() == [36, 36, 35, 37, 36, 37, 36, 36, 35, 36]
    total = np.bincount(y_train) + np.bincount(y_test)
    assert np.all(np.abs(np.bincount(y_test) - 0.2 * total) <= 1)


def test_no_flip_by_default(ds32):
    kw = dict(seed=3, epoch=1, **ONE)
    default = list(ds32.batches("train", 256, **kw))
    plain = list(ds32.batches("train", 256, augment=False, **kw))
    assert len(default) == 1437 // 256
    for a, b in zip(default, plain):
        np.testing.assert_array_equal(a["image"], b["image"])
        np.testing.assert_array_equal(a["label"], b["label"])


@pytest.mark.parametrize("policy", ["flip", "cifar", "inception_crop"])
def test_flipping_policies_refused(policy):
    with pytest.raises(ValueError, match="mirror-symmetric"):
        data.build("digits", augment=policy)


def test_explicit_crop_translates():
    ds = data.build("digits", resolution=16, augment="crop")
    assert ds.augment == "crop"
    kw = dict(seed=0, epoch=0, **ONE)
    aug = next(ds.batches("train", 64, **kw))
    plain = next(ds.batches("train", 64, augment=False, **kw))
    assert aug["image"].shape == plain["image"].shape == (64, 16, 16, 1)
    np.testing.assert_array_equal(aug["label"], plain["label"])
    assert not np.array_equal(aug["image"], plain["image"])
