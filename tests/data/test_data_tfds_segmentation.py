"""TFDS segmentation datasets, for real: written by TFDS into a temporary data_dir (array_record),
read back through ``data.build(name, task='segmentation', ...)`` without TensorFlow."""
import numpy as np
import pytest
import tensorflow_datasets as tfds
from dataset_arrays import all_fields
from PIL import Image

from lightjax import data
from lightjax.data import images, tfds_segmentation

IGN = data.IGNORE_LABEL
PETS, CITY = "lightjax_test_pets", "lightjax_test_city"
N_TRAIN, N_TEST = 6, 3


def _example(i, split, size=16):
    """A 16x(16..20) RGB image and its mask: left half 1, right half 2, a top row of 9
    (out of range) and a 0 pixel; red = 100 * mask class, green = the example number."""
    h, w = size, size + 2 * (i % 3)
    mask = np.zeros((h, w), np.uint8)
    mask[:, : w // 2], mask[:, w // 2:] = 1, 2
    mask[0, :] = 9
    mask[h - 1, 0] = 0
    image = np.zeros((h, w, 3), np.uint8)
    image[..., 0] = np.where(mask == 9, 250, mask * 100)
    image[..., 1] = 10 * i + (5 if split == "test" else 0)
    return image, mask


class Pets(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """Like oxford_iiit_pet: 'image', a ClassLabel 'label' and 'segmentation_mask'."""
    name = PETS
    VERSION = tfds.core.Version("1.0.0")

    def _info(self):
        return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict({
            "image": tfds.features.Image(shape=(None, None, 3)),
            "label": tfds.features.ClassLabel(num_classes=2),
            "segmentation_mask": tfds.features.Image(shape=(None, None, 1))}),
            supervised_keys=("image", "label"))

    def _split_generators(self, dl_manager):
        return {"train": self._generate_examples("train", N_TRAIN),
                "test": self._generate_examples("test", N_TEST)}

    def _generate_examples(self, split, n):
        for i in range(n):
            image, mask = _example(i, split)
            yield i, {"image": Image.fromarray(image), "label": i % 2,
                      "segmentation_mask": Image.fromarray(mask)}


class City(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """Like cityscapes: 'image_left' + 'segmentation_label' as the supervised pair, and a
    second one-channel feature so the mask choice matters."""
    name = CITY
    VERSION = tfds.core.Version("1.0.0")

    def _info(self):
        return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict({
            "image_left": tfds.features.Image(shape=(16, 16, 3)),
            "depth": tfds.features.Image(shape=(16, 16, 1)),
            "segmentation_label": tfds.features.Image(shape=(16, 16, 1))}),
            supervised_keys=("image_left", "segmentation_label"))

    def _split_generators(self, dl_manager):
        return {"train": self._generate_examples("train", 4),
                "validation": self._generate_examples("test", 2)}

    def _generate_examples(self, split, n):
        for i in range(n):
            image, mask = _example(0, split)
            yield i, {"image_left": Image.fromarray(image),
                      "segmentation_label": Image.fromarray(mask),
                      "depth": Image.fromarray(np.full((16, 16), 7, np.uint8))}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("tfds_seg")
    for cls in (Pets, City):
        cls(data_dir=str(root)).download_and_prepare(file_format="array_record")
    return str(root)


def _expected(i, split, resolution, ignore_value=None):
    image, mask = _example(i, split)
    mask = tfds_segmentation.map_mask(mask.astype(np.int32), 3, ignore_value)
    return images.resize_nearest(mask, (resolution, resolution)).astype(np.int32)


def _check_red(red, mask):
    """Away from region borders (3x3 uniform in the mask), red = 100 * class (+-3)."""
    c = mask[1:-1, 1:-1]
    uniform = np.ones_like(c, bool)
    for dy in range(3):
        for dx in range(3):
            uniform &= mask[dy:dy + c.shape[0], dx:dx + c.shape[1]] == c
    sel = uniform & ((c == 1) | (c == 2))
    assert sel.any()
    np.testing.assert_allclose(np.rint(red[1:-1, 1:-1] * 255)[sel], 100 * c[sel], atol=3)


@pytest.mark.parametrize("in_memory", [True, False])
def test_pets_like_round_trip(data_dir, in_memory):
    ds = data.build(PETS, data_dir=data_dir, task="segmentation", num_classes=3, resolution=8,
                    in_memory=in_memory)
    assert (ds.task, ds.fields, ds.num_classes) == ("segmentation", ("mask",), 3)
    assert ds.ignore_label == IGN and ds.image_shape == (8, 8, 3) and ds.augment == "none"
    assert "'image' + 'segmentation_mask'" in ds.description
    for split, n in (("train", N_TRAIN), ("test", N_TEST)):
        ex = all_fields(ds, split, 4)
        assert ex["mask"].dtype == np.int32 and ex["mask"].shape == (n, 8, 8)
        for i in range(n):
            np.testing.assert_array_equal(ex["mask"][i], _expected(i, split, 8))
            # the image went through the same geometry: red = 100 * class inside regions
            _check_red(ex["image"][i, ..., 0], ex["mask"][i])


def test_nearest_neighbour_resize_of_masks():
    mask = np.arange(16).reshape(4, 4)
    np.testing.assert_array_equal(images.resize_nearest(mask, (2, 2)), [[5, 7], [13, 15]])
    np.testing.assert_array_equal(images.resize_nearest(mask, (8, 8))[::2, ::2], mask)
    assert images.resize_nearest(mask, (4, 4)) is mask


def test_ignore_value_and_mask_mapping():
    raw = np.array([[0, 1, 2, 9]])
    np.testing.assert_array_equal(tfds_segmentation.map_mask(raw, 3, None), [[0, 1, 2, IGN]])
    np.testing.assert_array_equal(tfds_segmentation.map_mask(raw, 3, 9), [[0, 1, 2, IGN]])
    # ignore_value inside [0, num_classes): that class is ignored ('void')
    np.testing.assert_array_equal(tfds_segmentation.map_mask(raw[:, :3], 3, 0), [[IGN, 1, 2]])
    with pytest.raises(ValueError, match=r"mask value 9 is outside \[0, 3\) and is not "
                                         r"ignore_value=0"):
        tfds_segmentation.map_mask(raw, 3, 0)
    np.testing.assert_array_equal(tfds_segmentation.map_mask(raw, 10, 0), [[IGN, 1, 2, 9]])


def test_lazy_inception_crops_match_in_memory_geometry(data_dir):
    kw = dict(data_dir=data_dir, task="segmentation", num_classes=3, resolution=8,
              augment="inception_crop", mean=0.5, std=0.25)
    lazy = data.build(PETS, in_memory=False, **kw)
    one = dict(process_index=0, process_count=1)
    a = list(lazy.batches("train", 3, seed=1, **one))
    b = list(lazy.batches("train", 3, seed=1, **one))
    for x, y in zip(a, b):
        for key in x:
            np.testing.assert_array_equal(x[key], y[key])
    for batch in a:  # a crop keeps the mask/pixel correspondence
        for image, mask in zip(batch["image"][..., 0], batch["mask"]):
            _check_red(image * 0.25 + 0.5, mask)


def test_city_like_keys_and_validation_split(data_dir):
    ds = data.build(CITY, data_dir=data_dir, task="segmentation", num_classes=3,
                    ignore_value=9)
    assert ds.image_shape == (16, 16, 3) and ds.size("test") == 2
    assert "'image_left' + 'segmentation_label'" in ds.description
    mask = all_fields(ds, "test", 2)["mask"][0]
    np.testing.assert_array_equal(mask, _expected(0, "test", 16))
    assert (mask[0] == IGN).all() and mask[15, 0] == 0 and mask[5, 3] == 1 and mask[5, 12] == 2
    depth = data.build(CITY, data_dir=data_dir, task="segmentation", num_classes=8,
                       mask_key="depth")
    assert (all_fields(depth, "train", 4)["mask"] == 7).all()


def test_segmentation_errors(data_dir):
    kw = dict(data_dir=data_dir, task="segmentation")
    with pytest.raises(ValueError, match="needs num_classes="):
        data.build(PETS, **kw)
    with pytest.raises(ValueError, match=r"num_classes must be an integer in \[1, 255\]"):
        data.build(PETS, num_classes=300, **kw)
    with pytest.raises(ValueError, match="mask_key='label' is not a one-channel Image feature"):
        data.build(PETS, num_classes=3, mask_key="label", **kw)
    with pytest.raises(ValueError, match="mask value 9 is outside"):
        data.build(PETS, num_classes=3, ignore_value=255, **kw)
    with pytest.raises(ValueError, match="only apply with task='segmentation'"):
        data.build(PETS, data_dir=data_dir, num_classes=3)
    with pytest.raises(ValueError, match="task must be 'classification', 'segmentation' or "
                                         "'detection'"):
        data.build(PETS, data_dir=data_dir, task="tracking")
    with pytest.raises(ValueError, match="not an object-detection dataset"):
        data.build(PETS, data_dir=data_dir, task="detection")
    with pytest.raises(ValueError, match="not an image-classification dataset.*task='segm"):
        data.build(CITY, data_dir=data_dir)
