"""A folder of images written with PIL: classes, conversion, resizing, bad files."""
import os

import numpy as np
import pytest
from dataset_arrays import all_examples
from PIL import Image

from lightjax import data

# class -> flat RGB colour; 'bird' is written as grayscale, 'ant' as JPEG
COLOURS = {"cat": (200, 30, 30), "ant": (10, 220, 40), "bird": (90, 90, 90)}


def _write(path, colour, size=(12, 10), gray=False, fmt=None):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    arr = np.zeros((size[1], size[0], 3), np.uint8) + np.asarray(colour, np.uint8)
    img = Image.fromarray(arr)
    if gray:
        img = img.convert("L")
    img.save(path, format=fmt)


def _make(root, eval_dir="test", per_class=3):
    for split, n in (("train", per_class), (eval_dir, 2)):
        for name, colour in COLOURS.items():
            for i in range(n):
                ext = "jpg" if name == "ant" else "png"
                _write(os.path.join(root, split, name, f"{i}.{ext}"), colour, gray=name == "bird")
    return str(root)


def _raw(ds, split):
    return all_examples(ds, split, 3)


def test_folder_dataset(tmp_path):
    root = _make(tmp_path)
    (tmp_path / "train" / "cat" / ".DS_Store").write_bytes(b"\0junk")  # hidden: skipped
    ds = data.build("folder", root=root, resolution=8)
    assert ds.class_names == ("ant", "bird", "cat")  # sorted
    assert ds.num_classes == 3
    assert ds.image_shape == (8, 8, 3)
    assert (ds.size("train"), ds.size("test")) == (9, 6)
    assert ds.augment == "none"
    for split in ("train", "test"):
        raw, labels = _raw(ds, split)
        for img, label in zip(raw, labels):
            colour = np.asarray(COLOURS[ds.class_names[label]]) / 255.0
            tol = 0.04 if ds.class_names[label] == "ant" else 1e-3  # JPEG is lossy
            np.testing.assert_allclose(img.reshape(-1, 3).mean(0), colour, atol=tol)
            if ds.class_names[label] == "bird":  # grayscale converted to 3 equal channels
                np.testing.assert_allclose(img[..., 0], img[..., 2], atol=1e-6)


def test_resolution_inferred_and_val_dir(tmp_path):
    root = _make(tmp_path, eval_dir="val")
    ds = data.build("folder", root=root, augment="flip")
    assert ds.image_shape == (10, 12, 3)  # the first training image's size
    assert ds.augment == "flip"
    assert ds.size("test") == ds.size("val") == 6


def test_non_image_file_is_named(tmp_path):
    root = _make(tmp_path)
    bad = tmp_path / "train" / "cat" / "notes.txt"
    bad.write_text("not an image")
    with pytest.raises(ValueError, match=r"notes\.txt is not an image file"):
        data.build("folder", root=root, resolution=8)


def test_unreadable_image_is_named(tmp_path):
    root = _make(tmp_path)
    bad = tmp_path / "test" / "ant" / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n garbage that is not a png")
    with pytest.raises(ValueError, match=r"cannot read image .*broken\.png"):
        data.build("folder", root=root, resolution=8)


def test_layout_errors(tmp_path):
    with pytest.raises(ValueError, match="needs root="):
        data.build("folder")
    with pytest.raises(ValueError, match="is not a directory"):
        data.build("folder", root=str(tmp_path / "missing"))
    with pytest.raises(ValueError, match=r"train does not exist"):
        data.build("folder", root=str(tmp_path))
    (tmp_path / "train").mkdir()
    (tmp_path / "test").mkdir()
    with pytest.raises(ValueError, match="no class sub-directories"):
        data.build("folder", root=str(tmp_path))
    root = _make(tmp_path)
    (tmp_path / "train" / "dog").mkdir()
    with pytest.raises(ValueError, match=r"class directory .*dog has no images"):
        data.build("folder", root=root)
    os.rmdir(tmp_path / "train" / "dog")
    _write(str(tmp_path / "test" / "emu" / "0.png"), (1, 2, 3))
    with pytest.raises(ValueError, match=r"emu does not exist in the train split"):
        data.build("folder", root=root)


def test_missing_eval_split(tmp_path):
    _write(str(tmp_path / "train" / "a" / "0.png"), (1, 2, 3))
    with pytest.raises(ValueError, match=r"no eval split.*test.*val.*validation"):
        data.build("folder", root=str(tmp_path))
