"""The TFDS path, for real: small datasets written by TFDS itself into a temporary data_dir
(array_record files + dataset_info.json), then read back through ``data.build(name, data_dir=)``.

No TensorFlow is needed: TFDS encodes PIL images without it, and reads array_record through its
random-access data sources. The builders are defined with ``skip_registration=True`` so that
reading goes through exactly what a user gets: TFDS's registered ``cifar10`` builder for the
CIFAR-10 stand-in, and TFDS's read-only builder (from the files alone) for the custom name.
"""
import importlib.util
import json
import os
import shutil

import numpy as np
import pytest
from dataset_arrays import all_examples
import tensorflow_datasets as tfds
from PIL import Image

from lightjax import data
from lightjax.data import tfds_source

CIFAR_TRAIN, CIFAR_TEST = 30, 11
SHAPES = "lightjax_test_shapes"


def _cifar_like(split, n):
    rng = np.random.default_rng(0 if split == "train" else 1)
    return [(f"{split}_{i}", rng.integers(0, 256, (32, 32, 3), dtype=np.uint8), i % 10)
            for i in range(n)]


class FakeCifar10(tfds.image_classification.Cifar10, skip_registration=True):
    """TFDS's own CIFAR-10 builder (same name, version, features) with generated examples."""
    name = "cifar10"

    def _split_generators(self, dl_manager):
        self.info.features["label"].names = [f"class_{i}" for i in range(10)]
        return {"train": self._generate_examples("train", CIFAR_TRAIN),
                "test": self._generate_examples("test", CIFAR_TEST)}

    def _generate_examples(self, split, n):
        for key, image, label in _cifar_like(split, n):
            yield key, {"id": key, "image": Image.fromarray(image), "label": label}


def _shape_examples(split):
    """Grayscale images of varying sizes, each one flat gray level; label = level // 50."""
    n = 17 if split == "train" else 6
    for i in range(n):
        label = i % 4
        level = 50 * label + 3 * i + (1 if split == "test" else 0)
        h, w = 10 + i % 7, 12 + (3 * i) % 11
        yield i, label, level, (h, w)


class LightjaxTestShapes(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """A custom TFDS image-classification dataset (variable image size, one channel)."""
    name = SHAPES
    VERSION = tfds.core.Version("1.0.0")

    def _info(self):
        return tfds.core.DatasetInfo(
            builder=self,
            features=tfds.features.FeaturesDict({
                "picture": tfds.features.Image(shape=(None, None, 1)),
                "kind": tfds.features.ClassLabel(names=["w", "x", "y", "z"])}),
            supervised_keys=("picture", "kind"))

    def _split_generators(self, dl_manager):
        return {"train": self._generate_examples("train"),
                "validation": self._generate_examples("validation")}

    def _generate_examples(self, split):
        for i, label, level, (h, w) in _shape_examples("test" if split != "train" else split):
            img = Image.fromarray(np.full((h, w), level, np.uint8))
            yield i, {"picture": img, "kind": label}


class LightjaxTestTabular(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """Not an image dataset."""
    name = "lightjax_test_tabular"
    VERSION = tfds.core.Version("1.0.0")

    def _info(self):
        return tfds.core.DatasetInfo(
            builder=self,
            features=tfds.features.FeaturesDict({
                "x": tfds.features.Tensor(shape=(3,), dtype=np.float32),
                "label": tfds.features.ClassLabel(num_classes=2)}),
            supervised_keys=("x", "label"))

    def _split_generators(self, dl_manager):
        return {"train": self._generate_examples(4), "test": self._generate_examples(2)}

    def _generate_examples(self, n):
        for i in range(n):
            yield i, {"x": np.full((3,), i, np.float32), "label": i % 2}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("tfds")
    for cls in (FakeCifar10, LightjaxTestShapes, LightjaxTestTabular):
        cls(data_dir=str(root)).download_and_prepare(file_format="array_record")
    return str(root)


def _every(ds, split):
    return all_examples(ds, split, 8)


def test_cifar10_round_trip(data_dir):
    ds = data.build("cifar10", data_dir=data_dir)
    assert ds.num_classes == 10  # from the TFDS metadata
    assert ds.class_names == tuple(f"class_{i}" for i in range(10))
    assert ds.image_shape == (32, 32, 3)
    assert (ds.size("train"), ds.size("test")) == (CIFAR_TRAIN, CIFAR_TEST)
    assert ds.augment == "cifar"
    assert ds.mean == tfds_source.STATS["cifar10"][0] and ds.std == tfds_source.STATS["cifar10"][1]
    for split, n in (("train", CIFAR_TRAIN), ("test", CIFAR_TEST)):
        raw, labels = _every(ds, split)
        got = {np.rint(img * 255).astype(np.uint8).tobytes(): int(y)
               for img, y in zip(raw, labels)}
        want = {img.tobytes(): label for _, img, label in _cifar_like(split, n)}
        assert got == want  # every image with its label, each exactly once


def test_cifar10_resized_and_augmented(data_dir):
    ds = data.build("cifar10", data_dir=data_dir, resolution=16)
    assert ds.image_shape == (16, 16, 3)
    kw = dict(seed=1, epoch=0, process_index=0, process_count=1)
    a = list(ds.batches("train", 8, **kw))
    b = list(ds.batches("train", 8, **kw))
    assert len(a) == CIFAR_TRAIN // 8
    for x, y in zip(a, b):
        assert x["image"].shape == (8, 16, 16, 3)
        np.testing.assert_array_equal(x["image"], y["image"])
    plain = next(ds.batches("train", 8, augment=False, **kw))
    assert not np.array_equal(a[0]["image"], plain["image"])
    np.testing.assert_array_equal(a[0]["label"], plain["label"])


@pytest.mark.parametrize("in_memory", [True, False])
def test_custom_name_variable_size_grayscale(data_dir, in_memory):
    ds = data.build(SHAPES, data_dir=data_dir, resolution=8, in_memory=in_memory)
    assert type(ds.splits["train"]).__name__ == ("ArraySource" if in_memory else "LazySource")
    assert ds.num_classes == 4 and ds.class_names == ("w", "x", "y", "z")
    assert ds.image_shape == (8, 8, 1)
    assert ds.augment == "none"
    assert ds.size("test") == ds.size("validation") == 6  # no 'test' split: 'validation' serves
    for split in ("train", "test"):
        raw, labels = _every(ds, split)
        levels = np.rint(raw * 255).astype(int)
        assert (levels == levels[:, :1, :1]).all()  # flat images stay flat
        got = sorted(zip(levels[:, 0, 0, 0].tolist(), labels.tolist()))
        want = sorted((lvl, lab) for _, lab, lvl, _ in _shape_examples(split))
        assert got == want


def test_lazy_matches_in_memory_and_crops_deterministically(data_dir):
    mem = data.build(SHAPES, data_dir=data_dir, resolution=8, in_memory=True,
                     augment="inception_crop", mean=0.5, std=0.25)
    lazy = data.build(SHAPES, data_dir=data_dir, resolution=8, in_memory=False,
                      augment="inception_crop", mean=0.5, std=0.25)
    kw = dict(process_index=0, process_count=1)
    for a, b in zip(mem.batches("test", 4, **kw), lazy.batches("test", 4, **kw)):
        np.testing.assert_array_equal(a["image"], b["image"])
        np.testing.assert_array_equal(a["label"], b["label"])
    first = list(lazy.batches("train", 4, seed=2, **kw))
    again = list(lazy.batches("train", 4, seed=2, **kw))
    halves = [list(lazy.batches("train", 4, seed=2, process_index=p, process_count=2))
              for p in (0, 1)]
    for i, (a, b) in enumerate(zip(first, again)):
        assert a["image"].shape == (4, 8, 8, 1)
        np.testing.assert_array_equal(a["image"], b["image"])
        np.testing.assert_array_equal(
            a["image"], np.concatenate([halves[0][i]["image"], halves[1][i]["image"]]))


def test_not_prepared_says_how_to_prepare(data_dir):
    with pytest.raises(ValueError) as err:
        data.build("cifar100", data_dir=data_dir)
    msg = str(err.value)
    assert "TFDS dataset 'cifar100' is not prepared in " + data_dir in msg
    assert f"tfds build cifar100 --data_dir={data_dir} --file_format=array_record" in msg
    assert "download_and_prepare(file_format='array_record')" in msg
    assert "data_dir" in msg
    assert not os.path.exists(os.path.join(data_dir, "cifar100"))  # nothing downloaded


def test_unknown_name_and_non_image_dataset(data_dir):
    with pytest.raises(ValueError, match=r"unknown dataset 'no_such_dataset'.*digits, shapes, "
                                         r"cifar10, cifar100, imagenet2012, folder.*TFDS"):
        data.build("no_such_dataset", data_dir=data_dir)
    with pytest.raises(ValueError, match="not an image-classification dataset"):
        data.build("lightjax_test_tabular", data_dir=data_dir)
    with pytest.raises(ValueError, match="no split 'dev'"):
        data.build("cifar10", data_dir=data_dir, eval_split="dev")


def test_tfrecord_only_needs_tensorflow(data_dir, tmp_path):
    if importlib.util.find_spec("tensorflow") is not None:
        pytest.skip("tensorflow installed: tfrecord datasets are readable")
    # The same files, but the metadata claims TFDS's default tfrecord format.
    dst = tmp_path / "cifar10"
    shutil.copytree(os.path.join(data_dir, "cifar10"), dst)
    info_path = dst / "3.0.2" / "dataset_info.json"
    info = json.loads(info_path.read_text())
    info["fileFormat"] = "tfrecord"
    info.pop("alternativeFileFormats", None)
    info_path.write_text(json.dumps(info))
    with pytest.raises(ValueError, match=r"needs TensorFlow to read.*tfds convert_format"):
        data.build("cifar10", data_dir=str(tmp_path))
