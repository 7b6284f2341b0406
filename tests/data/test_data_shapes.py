"""The synthetic shapes dataset: rendering at known places, views, determinism, masks vs boxes."""
import math

import numpy as np
import pytest
from dataset_arrays import all_fields

from lightjax import data
from lightjax.data import shapes, shapes_render, shapes_scenes

ONE = dict(process_index=0, process_count=1)


def _one_shape(kind, cx=0.5, cy=0.5, size=0.25, angle=0.0):
    """A single-shape scene on a flat grey background without noise."""
    k = shapes_render.MAX_SHAPES
    z = np.zeros((1, k))
    put = lambda v: np.where(np.arange(k) == 0, v, 0.0)[None]  # noqa: E731
    return shapes_render.Scenes(
        kind=np.full((1, k), kind), cx=put(cx), cy=put(cy), size=put(size), angle=put(angle),
        colour=np.broadcast_to(np.array([1.0, 0.0, 0.0]), (1, k, 3)).copy(),
        active=(np.arange(k) == 0)[None], base=np.full((1, 3), 0.5),
        gratings=np.zeros((1, 2, 5)), tint=z[:, :3], noise=0.0)


def test_render_circle_and_square_at_known_places():
    rng = np.random.default_rng(0)
    # circle of radius 8 px centred at (16, 16): pixel centres 8.5 .. 23.5 are inside
    images, masks, boxes, kinds = shapes_render.render(_one_shape(0), 32, rng, True)
    np.testing.assert_allclose(boxes[0, 0], [0.25, 0.25, 0.75, 0.75])
    assert kinds[0].tolist() == [0] + [-1] * 7
    yy, xx = np.mgrid[:32, :32] + 0.5
    np.testing.assert_array_equal(masks[0], np.where((xx - 16) ** 2 + (yy - 16) ** 2 <= 64, 1, 0))
    assert tuple(images[0, 16, 16]) == (255, 0, 0) and tuple(images[0, 0, 0]) == (128, 128, 128)
    # axis-aligned square of half side 0.8 * 10 = 8 px at (10, 22), cut by nothing
    _, masks, boxes, kinds = shapes_render.render(_one_shape(1, 10 / 32, 22 / 32, 10 / 32), 32,
                                                  rng, True)
    np.testing.assert_array_equal(masks[0], np.where((abs(xx - 10) <= 8) & (abs(yy - 22) <= 8),
                                                     2, 0))
    np.testing.assert_allclose(boxes[0, 0], [2 / 32, 14 / 32, 18 / 32, 30 / 32])
    # a circle half outside on the right: its box is clipped to the image
    _, masks, boxes, _ = shapes_render.render(_one_shape(0, cx=1.0), 32, rng, True)
    np.testing.assert_allclose(boxes[0, 0], [0.75, 0.25, 1.0, 0.75])


def test_every_kind_renders_inside_its_box():
    rng = np.random.default_rng(0)
    for kind in range(len(shapes_render.KINDS)):
        _, masks, boxes, _ = shapes_render.render(_one_shape(kind, angle=0.3), 32, rng, True)
        area = (masks[0] == kind + 1).sum()
        x0, y0, x1, y1 = np.rint(boxes[0, 0] * 32).astype(int)
        assert area > 20 and (masks[0, y0:y1, x0:x1] == kind + 1).sum() == area


def test_later_shapes_occlude_and_hidden_ones_are_dropped():
    scenes = _one_shape(0, size=0.2)
    scenes.active[0, 1] = True  # a square on top of the circle, same centre, bigger
    scenes.kind[0, 1], scenes.size[0, 1], scenes.cx[0, 1], scenes.cy[0, 1] = 1, 0.3, 0.5, 0.5
    _, masks, boxes, kinds = shapes_render.render(scenes, 32, np.random.default_rng(0), True)
    assert set(np.unique(masks[0])) == {0, 2} and kinds[0, :2].tolist() == [1, -1]
    _, masks, _, kinds = shapes_render.render(scenes, 32, np.random.default_rng(0), False)
    assert kinds[0, :2].tolist() == [0, 1]  # without the visibility rule both are listed


@pytest.fixture(scope="module")
def seg():
    return shapes.tiny(train_size=40, test_size=12)


def _centres_in_boxes(mask, boxes, classes, count):
    """True where a labelled pixel's centre lies in a box of its own class."""
    h, w = mask.shape
    yy, xx = (np.mgrid[:h, :w] + 0.5) / np.array([h, w])[:, None, None]
    ok = np.zeros_like(mask, bool)
    for b, c in zip(boxes[:count], classes[:count]):
        ok |= (mask == c) & (xx >= b[0]) & (xx <= b[2]) & (yy >= b[1]) & (yy <= b[3])
    return ok | (mask == 0) | (mask == data.IGNORE_LABEL)


def test_segmentation_view(seg):
    assert (seg.task, seg.fields) == ("segmentation", ("mask", "boxes", "box_classes",
                                                        "box_count"))
    assert seg.num_classes == 6 and seg.class_names[0] == "background"
    assert seg.ignore_label == data.IGNORE_LABEL and seg.max_boxes == 8
    assert seg.image_shape == (32, 32, 3) and seg.augment == "flip"
    assert "synthetic" in seg.description
    ex = all_fields(seg, "train", 16)
    assert ex["mask"].dtype == np.int32 and ex["mask"].shape == (40, 32, 32)
    assert ex["boxes"].dtype == np.float32 and ex["boxes"].shape == (40, 8, 4)
    assert set(np.unique(ex["mask"])) <= set(range(6))
    assert 0 <= ex["boxes"].min() and ex["boxes"].max() <= 1
    for i in range(40):
        n = ex["box_count"][i]
        assert (ex["box_classes"][i, :n] >= 1).all() and (ex["box_classes"][i, n:] == -1).all()
        assert _centres_in_boxes(ex["mask"][i], ex["boxes"][i], ex["box_classes"][i], n).all()
        for b, c in zip(ex["boxes"][i, :n], ex["box_classes"][i, :n]):  # each box is visible
            x0, y0, x1, y1 = np.rint(b * 32).astype(int)
            assert (ex["mask"][i, y0:y1, x0:x1] == c).any()
    assert ex["box_count"].max() >= 3
    assert ex["image"].min() >= -1e-6 and ex["image"].max() <= 1 + 1e-6


def test_detection_view_shares_the_scenes(seg):
    det = shapes.tiny("detection", train_size=40, test_size=12)
    assert (det.task, det.fields, det.num_classes) == ("detection", ("boxes", "box_classes",
                                                                      "box_count"), 5)
    assert det.class_names == shapes_render.KINDS
    a, b = all_fields(seg, "test", 12), all_fields(det, "test", 12)
    np.testing.assert_array_equal(a["image"], b["image"])
    np.testing.assert_array_equal(a["boxes"], b["boxes"])
    np.testing.assert_array_equal(np.where(a["box_classes"] > 0, a["box_classes"] - 1, -1),
                                  b["box_classes"])


@pytest.mark.parametrize("policy", ["flip", "cifar", "inception_crop"])
def test_augmented_masks_stay_inside_their_boxes(seg, policy):
    for batch in seg.batches("train", 20, seed=3, augment=policy, **ONE):
        for i in range(20):
            n = batch["box_count"][i]
            assert _centres_in_boxes(batch["mask"][i], batch["boxes"][i],
                                     batch["box_classes"][i], n).all()
            assert (batch["box_classes"][i, n:] == -1).all()


def test_padding_rows_of_every_field(seg):
    batches = list(seg.batches("test", 10, **ONE))  # 12 = 10 + 2: 8 padding rows
    last = batches[-1]
    assert last["valid"].tolist() == [True] * 2 + [False] * 8
    pad = ~last["valid"]
    assert not last["image"][pad].any() and (last["mask"][pad] == data.IGNORE_LABEL).all()
    assert not last["boxes"][pad].any() and (last["box_classes"][pad] == -1).all()
    assert not last["box_count"][pad].any()


def test_process_shards_concatenate_for_every_field(seg):
    kw = dict(seed=2, epoch=1, augment="cifar", drop_remainder=False)
    whole = list(seg.batches("train", 16, **ONE, **kw))
    halves = [list(seg.batches("train", 16, process_index=p, process_count=2, **kw))
              for p in (0, 1)]
    resumed = list(seg.batches("train", 16, start_batch=1, **ONE, **kw))
    for b, batch in enumerate(whole):
        for key, value in batch.items():
            np.testing.assert_array_equal(
                np.concatenate([halves[0][b][key], halves[1][b][key]]), value)
            if b:
                np.testing.assert_array_equal(resumed[b - 1][key], value)


def test_classification_view():
    ds = shapes.tiny("classification")
    assert (ds.task, ds.fields, ds.num_classes) == ("classification", ("label",), 15)
    assert ds.class_names[:4] == ("red circle", "green circle", "blue circle", "red square")
    assert ds.max_boxes is None and ds.ignore_label is None
    batch = next(ds.batches("train", 16, **ONE))
    assert batch["label"].dtype == np.int32 and set(batch) == {"image", "label", "valid"}


def _hue(rgb):
    r, g, b = rgb
    return (math.atan2(math.sqrt(3) * (g - b), 2 * r - g - b) / (2 * math.pi)) % 1.0


def test_classification_target_is_largest_and_named_by_its_colour():
    scenes, labels = shapes_scenes.draw_targets(np.random.default_rng(0), 200, "hard")
    last = scenes.active.sum(1) - 1
    rows = np.arange(200)
    target = scenes.size[rows, last]
    assert (np.where(scenes.active, scenes.size, 0).max(1) == target).all()
    assert ((scenes.active.sum(1) - 1) == np.sort(scenes.active, 1)[:, ::-1].sum(1) - 1).all()
    others = np.where(scenes.active & (np.arange(8) != last[:, None]), scenes.size, 0)
    assert (others.max(1) <= 0.8 * target + 1e-9).all()
    margin = 1.13 * target  # fully inside the image
    for c in (scenes.cx[rows, last], scenes.cy[rows, last]):
        assert (c >= margin).all() and (c <= 1 - margin).all()
    assert (labels // 3 == scenes.kind[rows, last]).all()
    hues = np.array([_hue(scenes.colour[i, last[i]]) for i in rows])
    centre = (labels % 3) / 3
    assert (np.minimum(abs(hues - centre), 1 - abs(hues - centre)) < 0.11).all()


def test_deterministic_prefix_and_seeded():
    a = shapes.generate("scenes", "medium", "train", 300, 5, 16)
    b = shapes.generate("scenes", "medium", "train", 260, 5, 16)  # crosses a 256 block
    for key in a:
        np.testing.assert_array_equal(a[key][:260], b[key])
    c = shapes.generate("scenes", "medium", "train", 10, 6, 16)
    assert not np.array_equal(a["images"][:10], c["images"])
    test = shapes.generate("scenes", "medium", "test", 10, 5, 16)
    assert not np.array_equal(a["images"][:10], test["images"])
    # the same scenes at twice the resolution: boxes agree to a pixel of the coarse grid
    fine = shapes.generate("scenes", "medium", "train", 10, 5, 32)
    both = (a["kinds"][:10] >= 0) & (fine["kinds"] >= 0)
    assert np.abs(a["boxes"][:10] - fine["boxes"])[both].max() <= 1 / 16 + 1e-6


def test_max_boxes_truncation_is_counted():
    full = shapes.tiny("detection", difficulty="hard")
    cut = shapes.tiny("detection", difficulty="hard", max_boxes=2)
    assert cut.max_boxes == 2
    counts = all_fields(full, "train", 16)["box_count"]
    dropped = int(np.maximum(counts - 2, 0).sum())
    assert dropped > 0 and cut.dropped_boxes["train"] == dropped
    assert full.dropped_boxes == {"train": 0, "test": 0}
    assert f"boxes beyond max_boxes=2 dropped (train {dropped}" in cut.description
    assert all_fields(cut, "train", 16)["box_count"].max() == 2


def test_build_through_the_registry_and_bad_options():
    assert "shapes" in data.names()
    ds = data.build("shapes", resolution=16, view="detection", train_size=4, test_size=2,
                    difficulty="easy", seed=1, augment="none")
    assert ds.image_shape == (16, 16, 3) and ds.augment == "none" and ds.size("train") == 4
    with pytest.raises(ValueError, match="view must be one of segmentation, detection"):
        shapes.tiny("panoptic")
    with pytest.raises(ValueError, match="difficulty must be one of easy, medium, hard"):
        shapes.tiny(difficulty="extreme")
    with pytest.raises(ValueError, match="max_boxes is only used"):
        shapes.tiny("classification", max_boxes=3)
    with pytest.raises(ValueError, match="max_boxes must be an integer >= 1"):
        shapes.tiny(max_boxes=0)
    with pytest.raises(ValueError, match="train_size must be an integer >= 1"):
        shapes.tiny(train_size=0)
    with pytest.raises(ValueError, match="seed must be an integer >= 0"):
        shapes.tiny(seed=-1)
    with pytest.raises(ValueError, match="does not take colours"):
        data.build("shapes", colours=4)
