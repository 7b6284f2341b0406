"""Batching: order per (seed, epoch), resuming, process sharding, eval padding, bad input."""
import numpy as np
import pytest

from lightjax import data

ONE = dict(process_index=0, process_count=1)


@pytest.fixture(scope="module")
def ds():
    # 'crop' so augmentation randomness is part of every comparison below.
    return data.build("digits", resolution=8, augment="crop")


def _stack(batches, key):
    return np.concatenate([b[key] for b in batches])


def _ids(ds, split):
    """All un-augmented normalized images of ``split``, in stored order."""
    batches = list(ds.batches(split, 100, shuffle=False, augment=False, drop_remainder=False,
                              **ONE))
    images = _stack(batches, "image")[_stack(batches, "valid")]
    return images


def test_order_is_a_function_of_seed_and_epoch(ds):
    def labels(seed, epoch):
        return _stack(ds.batches("train", 100, seed=seed, epoch=epoch, **ONE), "label")

    def images(seed, epoch):
        return _stack(ds.batches("train", 100, seed=seed, epoch=epoch, **ONE), "image")

    np.testing.assert_array_equal(images(1, 0), images(1, 0))
    assert not np.array_equal(labels(1, 0), labels(1, 1))
    assert not np.array_equal(labels(1, 0), labels(2, 0))
    order = np.random.default_rng([1, 0]).permutation(1437)[:1400]
    plain = list(ds.batches("train", 1437, shuffle=False, augment=False, **ONE))[0]["label"]
    np.testing.assert_array_equal(labels(1, 0), plain[order])


def test_epoch_covers_each_example_once(ds):
    batches = list(ds.batches("train", 100, seed=5, epoch=2, augment=False,
                              drop_remainder=False, **ONE))
    valid = _stack(batches, "valid")
    assert valid.sum() == 1437
    got = _stack(batches, "image")[valid]
    ref = _ids(ds, "train")
    key = lambda x: sorted(r.tobytes() for r in x)  # noqa: E731
    assert key(got) == key(ref)


def test_train_defaults_drop_remainder(ds):
    batches = list(ds.batches("train", 100, **ONE))
    assert len(batches) == ds.steps_per_epoch("train", 100) == 14
    assert all(b["valid"].all() for b in batches)
    assert ds.steps_per_epoch("train", 100, drop_remainder=False) == 15


def test_start_batch_equals_slicing(ds):
    kw = dict(seed=7, epoch=3, **ONE)
    full = list(ds.batches("train", 64, **kw))
    for k in (0, 5, len(full) - 1, len(full)):
        rest = list(ds.batches("train", 64, start_batch=k, **kw))
        assert len(rest) == len(full) - k
        for a, b in zip(rest, full[k:]):
            for key in ("image", "label", "valid"):
                np.testing.assert_array_equal(a[key], b[key])


@pytest.mark.parametrize("split,count", [("train", 2), ("train", 4), ("test", 2), ("test", 3)])
def test_processes_concatenate_to_the_global_batch(ds, split, count):
    size = 48
    kw = dict(seed=11, epoch=1, augment=True, drop_remainder=False)
    whole = list(ds.batches(split, size, process_index=0, process_count=1, **kw))
    parts = [list(ds.batches(split, size, process_index=p, process_count=count, **kw))
             for p in range(count)]
    assert all(len(p) == len(whole) for p in parts)
    for b, batch in enumerate(whole):
        for key in ("image", "label", "valid"):
            local = [parts[p][b][key] for p in range(count)]
            assert all(x.shape[0] == size // count for x in local)
            np.testing.assert_array_equal(np.concatenate(local), batch[key])


@pytest.mark.parametrize("count", [1, 2, 4])
def test_eval_padding_and_valid_cover_every_example_once(ds, count):
    size = 64  # 360 = 5 * 64 + 40: the last global batch is padded
    ref = _ids(ds, "test")
    got = []
    for p in range(count):
        batches = list(ds.batches("test", size, process_index=p, process_count=count))
        assert len(batches) == 6
        assert all(b["image"].shape == (size // count, 8, 8, 1) for b in batches)
        assert all(b["valid"].all() for b in batches[:-1])
        for b in batches:
            assert not b["image"][~b["valid"]].any()  # padding rows are zeros
            got.append(b["image"][b["valid"]])
    got = np.concatenate(got)
    assert len(got) == 360
    assert sorted(r.tobytes() for r in got) == sorted(r.tobytes() for r in ref)
    # unshuffled, unaugmented eval keeps the stored order on one process
    one = list(ds.batches("test", size, **ONE))
    np.testing.assert_array_equal(_stack(one, "image")[_stack(one, "valid")], ref)


def test_eval_batch_larger_than_split_is_padded(ds):
    (batch,) = list(ds.batches("test", 400, **ONE))
    assert batch["valid"].sum() == 360 and batch["image"].shape[0] == 400


def test_bad_batch_arguments(ds):
    with pytest.raises(ValueError, match=r"batch_size=2000 .* 1437"):
        ds.batches("train", 2000, **ONE)
    with pytest.raises(ValueError, match=r"batch_size=2000 .* 1437"):
        ds.steps_per_epoch("train", 2000)
    with pytest.raises(ValueError, match="divisible by the number of processes"):
        ds.batches("train", 30, process_index=0, process_count=4)
    with pytest.raises(ValueError, match="process_index"):
        ds.batches("train", 32, process_index=2, process_count=2)
    with pytest.raises(ValueError, match="no split 'dev'"):
        ds.batches("dev", 32, **ONE)
    with pytest.raises(ValueError, match="start_batch"):
        ds.batches("train", 100, start_batch=15, **ONE)
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        ds.batches("train", 0, **ONE)
    with pytest.raises(ValueError, match="seed"):
        ds.batches("train", 10, seed=-1, **ONE)
    with pytest.raises(ValueError, match="unknown augmentation policy"):
        ds.batches("train", 10, augment="mixup", **ONE)


def test_jax_process_defaults(ds):
    batch = next(ds.batches("train", 16))
    assert batch["image"].shape[0] == 16  # one process in tests


@pytest.mark.parametrize("resolution", [0, -4, True, 2.5])
def test_bad_resolution(resolution):
    with pytest.raises(ValueError, match="resolution must be a positive integer"):
        data.build("digits", resolution=resolution)


def test_bad_build_arguments(tmp_path):
    with pytest.raises(ValueError, match=r"unknown augmentation policy 'mixup'.*cifar"):
        data.build("digits", augment="mixup")
    with pytest.raises(ValueError,
                       match=r"unknown dataset 'cifar-10'.*digits, shapes, cifar10.*TFDS"):
        data.build("cifar-10", data_dir=str(tmp_path))
    with pytest.raises(ValueError, match="root= is only used by the 'folder'"):
        data.build("digits", root=str(tmp_path))
    with pytest.raises(ValueError, match="does not take colour"):
        data.build("digits", colour=True)
    with pytest.raises(ValueError, match="non-empty string"):
        data.build("")


def _source(**fields):
    return data.ArraySource(np.zeros((4, 2, 2, 1), np.uint8), **fields)


def test_dataset_fields_and_task_are_checked():
    labels = _source(labels=np.arange(4))
    ds = data.make_dataset("t", 4, {"train": labels, "test": labels}, (2, 2, 1),
                           augment="none", mean=0.0, std=1.0)
    assert (ds.fields, ds.task, ds.ignore_label, ds.max_boxes) == (("label",), "classification",
                                                                   None, None)
    masks = _source(masks=np.zeros((4, 2, 2), np.uint8))
    with pytest.raises(ValueError, match="split 'test' carries mask, expected label"):
        data.make_dataset("t", 4, {"train": labels, "test": masks}, (2, 2, 1), augment="none",
                          mean=0.0, std=1.0)
    with pytest.raises(ValueError, match="task 'segmentation' needs the field"):
        data.make_dataset("t", 4, {"train": labels, "test": labels}, (2, 2, 1), augment="none",
                          mean=0.0, std=1.0, task="segmentation")
    with pytest.raises(ValueError, match="task must be one of classification, segmentation"):
        data.make_dataset("t", 4, {"train": labels, "test": labels}, (2, 2, 1), augment="none",
                          mean=0.0, std=1.0, task="ranking")
    both = _source(labels=np.arange(4), masks=np.zeros((4, 2, 2), np.uint8))
    seg = data.make_dataset("t", 3, {"train": both, "test": both}, (2, 2, 1), augment="none",
                            mean=0.0, std=1.0)
    assert seg.task == "segmentation" and seg.ignore_label == data.IGNORE_LABEL
    assert data.make_dataset("t", 4, {"train": both, "test": both}, (2, 2, 1), augment="none",
                             mean=0.0, std=1.0, task="classification").task == "classification"
    with pytest.raises(ValueError, match="real boxes must come first"):
        _source(boxes=np.zeros((4, 2, 4)), box_classes=np.array([[-1, 1]] * 4))
    with pytest.raises(ValueError, match="masks must be"):
        _source(masks=np.zeros((4, 3, 2), np.uint8))
