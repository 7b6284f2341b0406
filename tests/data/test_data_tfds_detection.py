"""TFDS detection datasets, for real: TFDS's own ``voc`` (2007, 2012) and ``coco`` (2017) builders
write small generated examples into a temporary data_dir (array_record), read back through
``data.build(name, task='detection', ...)`` without TensorFlow (coco through TFDS's read-only
builder, as its builder code needs TensorFlow). Records are stored in TFDS's shuffled order, so
examples are recognised by their green channel (10 x their tag, the same in every pixel)."""
import importlib.util

import numpy as np
import pytest
import tensorflow_datasets as tfds
from dataset_arrays import all_fields
from PIL import Image

from lightjax import data, tasks
from lightjax.data import augment, boxes, images, tfds_detection, tfds_source

BOX_RED = 250  # red inside boxes; blue 200 outside
# tag: ((h, w), [(class, (ymin, xmin, ymax, xmax), difficult), ...])
VOC = {
    "2007": {
        "train": {1: ((8, 16), [(14, (.25, .25, .75, .75), False)]),
                  2: ((12, 10), [(6, (0., 0., .5, .4), False), (11, (.5, .6, 1., 1.), True),
                                 (2, (.2, .3, .2, .9), False),     # no height: degenerate
                                 (7, (.1, .5, .9, .5), False),     # no width: degenerate
                                 (19, (.25, .2, .75, .8), False)]),
                  3: ((10, 14), [])},
        "validation": {4: ((16, 8), [(0, (0., 0., 1., 1.), True)]),
                       5: ((6, 12), [(8, (.5, .5, 1., 1.), False), (9, (0., 0., .5, .5), False),
                                     (10, (0., .5, .5, 1.), False)])},
        "test": {6: ((8, 16), [(14, (.25, .25, .75, .75), False)]),
                 7: ((16, 8), [(3, (.25, .25, .75, .75), True)]),
                 8: ((12, 12), [(1, (1 / 6, 1 / 6, 1 / 3, .5), False)])}},
    "2012": {
        "train": {11: ((10, 10), [(4, (.1, .1, .6, .6), False)]),
                  12: ((8, 12), [(5, (.25, .25, .75, .75), True)])},
        "validation": {13: ((12, 8), [(12, (0., .25, .5, .75), False)])},
        "test": {14: ((8, 8), []), 15: ((10, 8), [])}}}  # VOC2012 test: no annotations
COCO = {"train": {21: ((8, 12), [(0, (.1, .1, .5, .5), False), (79, (.5, .5, 1., 1.), True)]),
                  22: ((10, 10), [(5, (0., 0., 1., 1.), False)])},
        "validation": {23: ((12, 8), [(56, (.2, .2, .8, .8), True), (1, (0., 0., .3, .3), False)])},
        "test": {24: ((8, 8), [])}}
COCO_NAMES = [f"thing_{i}" for i in range(80)]
VOC_NAMES = tfds.object_detection.voc._VOC_LABELS


def _image(tag, hw, objs, paint=True):
    """Blue background, red boxes; green = 10 * tag everywhere."""
    h, w = hw
    img = np.zeros((h, w, 3), np.uint8)
    img[..., 1], img[..., 2] = 10 * tag, 200
    for _, (y0, x0, y1, x1), _ in objs if paint else ():
        rows, cols = slice(round(y0 * h), round(y1 * h)), slice(round(x0 * w), round(x1 * w))
        img[rows, cols, 0], img[rows, cols, 2] = BOX_RED, 0
    return img


class FakeVoc(tfds.object_detection.Voc, skip_registration=True):
    """TFDS's own VOC builder (name, configs, version, features) with generated examples."""
    name = "voc"

    def _split_generators(self, dl_manager):
        year = self.builder_config.name
        return {split: self._generate_examples(VOC[year][split]) for split in VOC[year]}

    def _generate_examples(self, examples):
        for tag, (hw, objs) in examples.items():
            yield tag, {
                "image": Image.fromarray(_image(tag, hw, objs)), "image/filename": f"{tag}.jpg",
                "objects": [{"label": c, "pose": "unspecified", "is_truncated": False,
                             "bbox": tfds.features.BBox(*map(float, b)), "is_difficult": d}
                            for c, b, d in objs],
                "labels": sorted({c for c, _, _ in objs}),
                "labels_no_difficult": sorted({c for c, _, d in objs if not d})}


class FakeCoco(tfds.object_detection.Coco, skip_registration=True):
    """TFDS's COCO builder with its features (``_info`` without TensorFlow) and examples."""
    name = "coco"

    def _info(self):
        return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict({
            "image": tfds.features.Image(encoding_format="jpeg"),
            "image/filename": tfds.features.Text(), "image/id": np.int64,
            "objects": tfds.features.Sequence({
                "id": np.int64, "area": np.int64, "bbox": tfds.features.BBoxFeature(),
                "label": tfds.features.ClassLabel(num_classes=80), "is_crowd": np.bool_})}))

    def _split_generators(self, dl_manager):
        self.info.features["objects"]["label"].names = COCO_NAMES
        return {split: self._generate_examples(COCO[split]) for split in COCO}

    def _generate_examples(self, examples):
        for tag, (hw, objs) in examples.items():
            yield tag, {
                "image": Image.fromarray(_image(tag, hw, objs, paint=False)),
                "image/filename": f"{tag}.jpg", "image/id": tag,
                "objects": [{"id": j, "area": 1, "label": c, "is_crowd": d,
                             "bbox": tfds.features.BBox(*map(float, b))}
                            for j, (c, b, d) in enumerate(objs)]}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("tfds_det"))
    for year in VOC:
        FakeVoc(config=year, data_dir=root).download_and_prepare(file_format="array_record")
    FakeCoco(config="2017", data_dir=root).download_and_prepare(file_format="array_record")
    return root


def _tags(ex):
    """The tag of every example: green at the centre (inside the image in every layout)."""
    s = ex["image"].shape[1] // 2
    return np.rint(ex["image"][:, s, s, 1] * 255 / 10).astype(int).tolist()


def _expected(objs, max_boxes=100):
    """(boxes x/y order, classes, difficult) as read with resize='stretch'."""
    kept = [(c, (b[1], b[0], b[3], b[2]), d) for c, b, d in objs
            if b[2] > b[0] and b[3] > b[1]][-max_boxes:]
    return ([b for _, b, _ in kept], [c for c, _, _ in kept], [d for _, _, d in kept])


def _check_split(ds, split, examples, max_boxes=100):
    ex = all_fields(ds, split, 2)
    m = ds.max_boxes
    assert ex["boxes"].shape[1:] == (m, 4) and ex["box_difficult"].dtype == bool
    assert sorted(_tags(ex)) == sorted(examples)
    for i, tag in enumerate(_tags(ex)):
        want_boxes, want_classes, want_difficult = _expected(examples[tag][1], max_boxes)
        k = len(want_classes)
        assert ex["box_count"][i] == k
        np.testing.assert_allclose(ex["boxes"][i, :k], np.reshape(want_boxes, (k, 4)), atol=1e-6)
        assert ex["box_classes"][i].tolist() == want_classes + [-1] * (m - k)
        assert ex["box_difficult"][i].tolist() == want_difficult + [False] * (m - k)
        assert not ex["boxes"][i, k:].any()


@pytest.mark.parametrize("in_memory", [True, False])
def test_voc2007_boxes_classes_and_difficult(data_dir, in_memory):
    ds = data.build("voc/2007", data_dir=data_dir, task="detection", resize="stretch",
                    resolution=16, in_memory=in_memory)
    kind = "ArraySource" if in_memory else "LazyDetectionSource"
    assert type(ds.splits["train"]).__name__ == kind
    assert (ds.task, ds.num_classes, ds.class_names) == ("detection", 20, VOC_NAMES)
    assert ds.fields == ("boxes", "box_classes", "box_count", "box_difficult")
    assert ds.image_shape == (16, 16, 3) and ds.max_boxes == 50 and ds.augment == "flip"
    assert (ds.mean, ds.std) == tfds_source.STATS["imagenet2012"]
    # training on trainval (train + validation), evaluating on test
    assert (ds.size("train"), ds.size("test")) == (5, 3)
    assert "voc/2007/5.0.0:train+validation / voc/2007/5.0.0:test" in ds.description
    trainval = {**VOC["2007"]["train"], **VOC["2007"]["validation"]}
    _check_split(ds, "train", trainval)
    _check_split(ds, "test", VOC["2007"]["test"])
    # degenerate boxes removed and counted; nothing beyond max_boxes
    assert ds.dropped_boxes == {"train": 0, "test": 0}
    if in_memory:
        assert "train: 0 beyond max_boxes and 2 degenerate of 10" in ds.description
        assert "test: 0 beyond max_boxes and 0 degenerate of 3" in ds.description
    else:
        assert ds.splits["train"].seen == 5 and ds.splits["train"].degenerate_boxes == 2
    assert data.build("voc", data_dir=data_dir, task="detection", resize="stretch",
                      resolution=16).size("train") == 5  # 'voc' is voc/2007


@pytest.mark.parametrize("in_memory", [True, False])
def test_max_boxes_drops_are_counted(data_dir, in_memory):
    ds = data.build("voc/2007", data_dir=data_dir, task="detection", resize="stretch",
                    resolution=8, max_boxes=2, in_memory=in_memory)
    assert ds.max_boxes == 2
    if in_memory:
        assert ds.dropped_boxes == {"train": 2, "test": 0}  # tags 2 and 5: 3 boxes each
        assert "train: 2 beyond max_boxes and 2 degenerate" in ds.description
    else:
        assert ds.dropped_boxes == {"train": 0, "test": 0}  # nothing read yet
        assert "counted as examples are read" in ds.description
    _check_split(ds, "train", {**VOC["2007"]["train"], **VOC["2007"]["validation"]},
                 max_boxes=2)  # the last two boxes are kept
    assert ds.dropped_boxes == {"train": 2, "test": 0}


@pytest.mark.parametrize("resize", ["letterbox", "stretch"])
def test_geometry_is_pixel_exact(data_dir, resize):
    """Tags 6 (8x16) and 7 (16x8): box over the middle half, pixel-aligned, scaled by 2 (x and y
    letterboxed; stretched 4 along the short side)."""
    ds = data.build("voc/2007", data_dir=data_dir, task="detection", resolution=32,
                    resize=resize)
    ex = all_fields(ds, "test", 3)
    checked = []
    for i, tag in enumerate(_tags(ex)):
        img = np.rint(ex["image"][i] * 255).astype(int)
        if tag == 8:
            continue
        checked.append(tag)
        top, left, h, w = ((8, 0, 16, 32) if tag == 6 else (0, 8, 32, 16)) if \
            resize == "letterbox" else (0, 0, 32, 32)
        want = np.array([left + w / 4, top + h / 4, left + 3 * w / 4, top + 3 * h / 4])
        np.testing.assert_allclose(ex["boxes"][i, 0] * 32, want, atol=1e-4)
        x0, y0, x1, y1 = want.astype(int)
        inside = np.zeros((32, 32), bool)
        inside[y0 + 2:y1 - 2, x0 + 2:x1 - 2] = True
        placed = np.zeros((32, 32), bool)
        placed[top:top + h, left:left + w] = True
        outside = placed.copy()
        outside[max(y0 - 2, 0):y1 + 2, max(x0 - 2, 0):x1 + 2] = False
        assert (img[inside] == [BOX_RED, 10 * tag, 0]).all()
        assert (img[outside] == [0, 10 * tag, 200]).all()
        assert (img[~placed] == images.LETTERBOX_FILL).all()  # grey letterbox padding
        if resize == "letterbox":
            assert (~placed).sum() == 32 * 16
    assert sorted(checked) == [6, 7]


def test_letterbox_geometry_numpy():
    assert images.letterbox_placement((8, 16), (32, 32)) == (8, 0, 16, 32)
    assert images.letterbox_placement((16, 8), (32, 32)) == (0, 8, 32, 16)
    assert images.letterbox_placement((375, 500), (416, 416)) == (52, 0, 312, 416)
    assert images.letterbox_placement((1, 1000), (10, 10)) == (4, 0, 1, 10)  # at least 1 px
    img = np.zeros((3, 6, 1), np.uint8)
    img[:, 2:4] = 255
    canvas, placement = images.letterbox(img, (4, 4))
    assert placement == (1, 0, 2, 4) and canvas.dtype == np.uint8
    assert (canvas[[0, 3]] == images.LETTERBOX_FILL).all()
    np.testing.assert_array_equal(canvas[1:3, :, 0], images.resize(img, (2, 4))[..., 0])
    canvas, _ = images.letterbox(img.astype(np.float32) / 255, (4, 4), fill=0.5)
    assert canvas.dtype == np.float32 and (canvas[0] == 0.5).all()
    # boxes: x' = (left + x w) / W, y' = (top + y h) / H; difficult flags follow
    bx = np.array([[[0.0, 0.0, 1.0, 1.0], [0.5, 0.25, 0.75, 0.5], [0.2, 0.3, 0.2, 0.6]]])
    cl, diff = np.array([[1, 2, 3]]), np.array([[False, True, True]])
    out, classes, count, flags = boxes.letterbox(bx, cl, np.array([3]), (8, 0, 16, 32),
                                                 (32, 32), (diff,))
    np.testing.assert_allclose(out[0, :2], [[0, .25, 1, .75], [.5, .375, .75, .5]], atol=1e-7)
    assert classes.tolist() == [[1, 2, -1]] and count.tolist() == [2]
    assert flags.tolist() == [[False, True, False]]  # the degenerate third box is gone


def test_box_extras_follow_every_rearrangement():
    bx = np.array([[[0, 0, .1, .1], [.2, .2, .3, .3], [.4, .4, .5, .5]]], np.float32)
    cl, diff = np.array([[1, 2, 3]]), np.array([[True, False, True]])
    *_, flags = boxes.compact(bx, cl, np.array([[False, True, True]]), (diff,))
    assert flags.tolist() == [[False, True, False]]
    *_, dropped, flags = boxes.truncate(bx, cl, 2, (diff,))
    assert dropped == 1 and flags.tolist() == [[False, True]]
    assert boxes.truncate(bx[:, :0], cl[:, :0], 2, (diff[:, :0],))[-1].tolist() == [[False] * 2]
    assert len(boxes.window(bx, cl, np.array([3]), [0], [0], [10], [10], (10, 10))) == 3
    # augmentation: a translation pushes the first box out; its flag leaves with it
    example = {"image": np.zeros((1, 10, 10, 3), np.float32), "boxes": bx, "box_classes": cl,
               "box_count": np.array([3]), "box_difficult": diff}
    out = augment.translate(example, np.array([[2, 2]]), 1)  # up-left by one pixel
    assert out["box_classes"].tolist() == [[2, 3, -1]]
    assert out["box_difficult"].tolist() == [[False, True, False]]
    crop = augment.inception_crop(example, np.array([[0.25, 0.0, 0.99, 0.99]]))  # bottom-right
    assert crop["box_classes"].tolist() == [[-1, -1, -1]] and not crop["box_difficult"].any()
    flipped = augment.mirror(example, np.array([True]))
    assert flipped["box_difficult"].tolist() == diff.tolist()
    with pytest.raises(ValueError, match="box_difficult must be False on padding"):
        data.ArraySource(example["image"], boxes=bx, box_classes=np.array([[1, 2, -1]]),
                         box_difficult=diff)


def test_voc_2007_plus_2012(data_dir):
    assert tfds_detection.parse_name("voc/2007+2012") == ["voc/2007", "voc/2012"]
    assert tfds_detection.parse_name("voc/2007+voc/2012") == ["voc/2007", "voc/2012"]
    ds = data.build("voc/2007+2012", data_dir=data_dir, task="detection", resize="stretch",
                    resolution=8)
    # train: both years' train+validation; eval: voc/2007 test
    assert (ds.size("train"), ds.size("test")) == (5 + 3, 3)
    assert ("voc/2007/5.0.0:train+validation + voc/2012/5.0.0:train+validation / "
            "voc/2007/5.0.0:test") in ds.description
    both = {**VOC["2007"]["train"], **VOC["2007"]["validation"], **VOC["2012"]["train"],
            **VOC["2012"]["validation"]}
    _check_split(ds, "train", both)
    _check_split(ds, "test", VOC["2007"]["test"])
    same = data.build("voc/2007+voc/2012", data_dir=data_dir, task="detection", resolution=8,
                      resize="stretch", in_memory=False)
    for a, b in zip(ds.batches("train", 4, seed=3, process_index=0, process_count=1),
                    same.batches("train", 4, seed=3, process_index=0, process_count=1)):
        for key in a:
            np.testing.assert_array_equal(a[key], b[key])
    with pytest.raises(ValueError, match="repeats a part"):
        data.build("voc/2007+2007", data_dir=data_dir, task="detection")
    with pytest.raises(ValueError, match="cannot be combined"):
        data.build("voc/2007+coco/2017", data_dir=data_dir, task="detection")


def test_voc2012_evaluates_on_validation_not_the_unlabelled_test(data_dir):
    ds = data.build("voc/2012", data_dir=data_dir, task="detection", resolution=8)
    assert (ds.size("train"), ds.size("test")) == (3, 1)
    assert "voc/2012/5.0.0:validation" in ds.description
    for in_memory in (True, False):
        with pytest.raises(ValueError, match=r"split voc/2012/5.0.0:test holds no boxes.*"
                                             r"unlabelled split"):
            data.build("voc/2012", data_dir=data_dir, task="detection", resolution=8,
                       eval_split="test", in_memory=in_memory)


def test_coco_crowd_is_difficult_and_reads_without_tensorflow(data_dir):
    if importlib.util.find_spec("tensorflow") is None:
        with pytest.raises(ImportError):  # TFDS's coco code needs TensorFlow to describe itself
            tfds.builder("coco/2017", data_dir=data_dir)
    ds = data.build("coco/2017", data_dir=data_dir, task="detection", resize="stretch",
                    resolution=16)
    assert (ds.num_classes, ds.class_names, ds.max_boxes) == (80, tuple(COCO_NAMES), 100)
    assert (ds.size("train"), ds.size("test")) == (2, 1)  # eval: 'validation' (test unlabelled)
    assert "coco/2017/1.1.0:train / coco/2017/1.1.0:validation" in ds.description
    assert "difficult 'is_crowd'" in ds.description
    assert (ds.mean, ds.std) == tfds_source.STATS["imagenet2012"]
    _check_split(ds, "train", COCO["train"])
    _check_split(ds, "test", COCO["validation"])
    plain = data.build("coco/2017", data_dir=data_dir, task="detection", resolution=16,
                       difficult_key="")
    assert not all_fields(plain, "train", 2)["box_difficult"].any()


def test_not_prepared_says_how_to_prepare(data_dir, tmp_path):
    for name in ("voc/2012", "coco/2017"):
        with pytest.raises(ValueError) as err:
            data.build(name, data_dir=str(tmp_path), task="detection")
        msg = str(err.value)
        assert f"TFDS dataset {name!r} is not prepared in {tmp_path}" in msg
        assert f"tfds build {name} --data_dir={tmp_path} --file_format=array_record" in msg
    FakeVoc(config="2007", data_dir=str(tmp_path)).download_and_prepare(
        file_format="array_record")
    with pytest.raises(ValueError, match="TFDS dataset 'voc/2012' is not prepared"):
        data.build("voc/2007+2012", data_dir=str(tmp_path), task="detection")


def test_batches_serve_the_detection_task(data_dir):
    kw = dict(data_dir=data_dir, task="detection", resolution=32, augment="inception_crop")
    ds = data.build("voc/2007", **kw)
    task = tasks.create("detection", ds.num_classes)
    task.check_dataset(ds)
    one = dict(process_index=0, process_count=1)
    batches = list(ds.batches("train", 4, seed=5, **one))
    lazy = list(data.build("voc/2007", in_memory=False, **kw).batches("train", 4, seed=5, **one))
    assert len(batches) == 1
    b = batches[0]
    assert set(b) == {"image", "valid", "boxes", "box_classes", "box_count", "box_difficult"}
    assert b["image"].shape == (4, 32, 32, 3) and b["boxes"].shape == (4, 50, 4)
    assert (b["box_classes"].dtype, b["box_count"].dtype, b["box_difficult"].dtype) == (
        np.int32, np.int32, bool)
    for key in b:
        np.testing.assert_array_equal(b[key], lazy[0][key])  # per batch == in memory
    # crops remove boxes; each surviving box keeps its own class and difficult flag
    plain = next(ds.batches("train", 4, seed=5, augment=False, shuffle=True, **one))
    for i in range(4):
        real = b["box_classes"][i] >= 0
        assert real.sum() == b["box_count"][i] and not b["box_difficult"][i, ~real].any()
        pairs = set(zip(plain["box_classes"][i].tolist(), plain["box_difficult"][i].tolist()))
        assert set(zip(b["box_classes"][i][real].tolist(),
                       b["box_difficult"][i][real].tolist())) <= pairs
    # eval batches pad with no boxes and no difficult flags
    last = list(ds.batches("test", 2, **one))[-1]
    assert last["valid"].tolist() == [True, False] and not last["box_difficult"][1].any()


def test_detection_options_are_checked(data_dir):
    kw = dict(data_dir=data_dir, task="detection")
    with pytest.raises(ValueError, match="resize must be one of letterbox, stretch"):
        data.build("voc/2007", resize="crop", **kw)
    with pytest.raises(ValueError, match="max_boxes must be an integer >= 1"):
        data.build("voc/2007", max_boxes=0, **kw)
    with pytest.raises(ValueError, match="num_classes only apply with task='segmentation'"):
        data.build("voc/2007", num_classes=20, **kw)
    with pytest.raises(ValueError, match="max_boxes only apply with task='detection'"):
        data.build("voc/2007", data_dir=data_dir, max_boxes=3)
    with pytest.raises(ValueError, match="objects_key='labels' is not a Sequence of objects"):
        data.build("voc/2007", objects_key="labels", **kw)
    with pytest.raises(ValueError, match="difficult_key='pose' is not a bool feature.*"
                                         "candidates: is_truncated, is_difficult"):
        data.build("voc/2007", difficult_key="pose", **kw)
    ds = data.build("voc/2007", difficult_key="is_truncated", resolution=8, **kw)
    assert not all_fields(ds, "train", 8)["box_difficult"].any()  # none is truncated


def test_voc_config_builds_on_prepared_voc(data_dir):
    """``configs/yolov3_mobilenet_v1_voc.py`` (the published recipe) lines up with TFDS voc:
    20 classes, VOC07 scoring, multi-scale sizes the model takes; nothing is compiled."""
    from lightjax.train import config as config_lib
    from lightjax.train import experiment

    cfg = config_lib.load("yolov3_mobilenet_v1_voc")
    assert cfg.data.name == "voc/2007+2012" and tuple(cfg.data.multiscale) == (320, 608, 32)
    assert (cfg.train.batch_size, cfg.train.lr, tuple(cfg.train.decay_epochs)) == \
        (64, 1e-3, (216, 243))
    cfg.data.data_dir = str(data_dir)
    cfg.train.batch_size = 4
    exp = experiment.Experiment(cfg)
    assert exp.dataset.num_classes == 20 and exp.task.voc07
    assert exp.dataset.train_sizes == tuple(range(320, 609, 32))
    assert exp.dataset.image_shape == (416, 416, 3)
