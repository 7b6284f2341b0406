"""Multi-scale training batches (YOLOv3's 320-608): one drawn size per global batch, boxes kept,
masks nearest-neighbour, evaluation at the dataset resolution, bad ranges refused."""
import collections

import numpy as np
import pytest

from lightjax import data
from lightjax.data import source
from lightjax.errors import ValidationError
from lightjax.train import config as config_lib
from lightjax.train import experiment


def test_sizes_from_a_range():
    assert source.multiscale_sizes((320, 608, 32)) == tuple(range(320, 609, 32))
    assert len(source.multiscale_sizes((320, 608, 32))) == 10
    assert source.multiscale_sizes([64, 64, 32]) == (64,)
    for bad in ((320, 600, 32), (608, 320, 32), (0, 64, 32), (32, 64), "big", (32, 64, 0),
                (32.5, 64, 32)):
        with pytest.raises(ValidationError, match="smallest, largest, step"):
            source.multiscale_sizes(bad)


def test_each_training_batch_has_one_drawn_size_and_boxes_stay():
    ds = data.build("shapes", view="detection", resolution=32, train_size=64, test_size=8,
                    multiscale=(32, 64, 32))
    plain = data.build("shapes", view="detection", resolution=32, train_size=64, test_size=8)
    assert ds.train_sizes == (32, 64) and plain.train_sizes == ()
    sizes = collections.Counter()
    for epoch in range(3):
        for b, p in zip(ds.batches("train", 8, epoch=epoch), plain.batches("train", 8, epoch=epoch)):
            side = b["image"].shape[1]
            sizes[side] += 1
            assert b["image"].shape == (8, side, side, 3)
            for key in ("boxes", "box_classes", "box_count"):  # fractions: unchanged
                np.testing.assert_array_equal(b[key], p[key])
            if side == 32:
                np.testing.assert_array_equal(b["image"], p["image"])
    assert set(sizes) == {32, 64}
    # the same draw on a resumed epoch and on every process
    again = [b["image"].shape for b in ds.batches("train", 8, epoch=1, start_batch=3)]
    assert again == [b["image"].shape for b in ds.batches("train", 8, epoch=1)][3:]
    halves = [b["image"].shape[1] for b in ds.batches("train", 8, epoch=1, process_index=1,
                                                      process_count=2)]
    assert halves == [b["image"].shape[1] for b in ds.batches("train", 8, epoch=1)]
    # evaluation and unaugmented batches stay at the dataset resolution
    assert {b["image"].shape[1] for b in ds.batches("test", 8)} == {32}
    assert {b["image"].shape[1] for b in ds.batches("train", 8, augment=False)} == {32}


def test_masks_follow_nearest_neighbour():
    ds = data.build("shapes", view="segmentation", resolution=32, train_size=32, test_size=8,
                    multiscale=(64, 64, 32), augment="none")
    b = next(ds.batches("train", 8, augment="flip"))
    assert b["mask"].shape == (8, 64, 64)
    assert set(np.unique(b["mask"])) <= set(range(6)) | {255}


def test_a_size_the_model_cannot_take_is_refused_before_training():
    cfg = config_lib.load("yolov3_mobilenet_v1_shapes:tiny")
    cfg.data.multiscale = (32, 56, 8)  # 40, 48, 56 are not multiples of the stride 16
    with pytest.raises(ValidationError, match="multiples of 16"):
        experiment.Experiment(cfg)
