"""``lightjax predict`` on tiny detection and segmentation runs, and the drawing helpers: pictures
at the original size, boxes and masks mapped back to the original pixels and equal to a direct
call of the model and post-processing, one-line errors before any jit.

Each run directory is its tiny config's initial state saved as checkpoint 0 with the functions
``lightjax train`` writes runs with (``config.json`` + ``checkpoints/0``): a run like any other
to ``predict``, without compiling a train step (10-25 s each on a 2-core CPU)."""
import json
import os
import shutil

import jax
import numpy as np
import pytest
from PIL import Image

from lightjax import cli
from lightjax.commands import predict as predict_lib
from lightjax.data import draw, shapes
from lightjax.data import images as image_lib
from lightjax.detect import postprocess
from lightjax.train import run as run_lib
from lightjax.train import step as step_lib
from run_fixtures import initial_run

#: (height, width, PIL mode, format) of the saved test images; 32x32 is the runs' input size
SHAPES = [(32, 32, "RGB", "png"), (48, 80, "RGB", "png"), (70, 40, "L", "png"),
          (50, 50, "RGBA", "png"), (36, 60, "RGB", "jpg")]
THRESHOLD = 0.05  # an untrained network's scores are low: keep enough boxes to compare


def _images(folder, view):
    """Shapes test scenes saved as image files of different sizes and modes."""
    folder.mkdir()
    scenes = shapes.generate("scenes", "medium", "test", len(SHAPES), 0, 64)["images"]
    paths = []
    for i, ((h, w, mode, ext), scene) in enumerate(zip(SHAPES, scenes)):
        pixels = (np.clip(scene, 0, 1) * 255).round().astype(np.uint8)
        path = folder / f"{view}{i}.{ext}"
        Image.fromarray(pixels).resize((w, h), Image.BILINEAR).convert(mode).save(path)
        paths.append(path)
    return paths


def _predict(capsys, workdir, out, *inputs, extra=()):
    capsys.readouterr()
    status = cli.main(["predict", "--workdir", str(workdir), *map(str, inputs), "--out", str(out),
                       *extra])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


@pytest.fixture(scope="module")
def detection(tmp_path_factory):
    root = tmp_path_factory.mktemp("predict-det")
    work = root / "run"
    # untrained: start objectness at 0.5 (not the 0.01 prior) so that boxes pass the threshold
    run = initial_run(work, "yolov3_mobilenet_v1_shapes:tiny",
                      ["--config.model.objectness_prior=0.5"])
    paths = _images(root / "images", "det")
    (root / "images" / "notes.txt").write_text("not an image: directories skip it")
    out = root / "out"
    # a directory (its .png/.jpg files, sorted) and a file given again: each image once
    status = cli.main(["predict", "--workdir", str(work), str(root / "images"), str(paths[0]),
                       "--out", str(out), "--score-threshold", str(THRESHOLD),
                       "--batch-size", "3"])
    assert status == 0
    return run, paths, out, json.loads((out / "predictions.json").read_text())


@pytest.fixture(scope="module")
def segmentation(tmp_path_factory):
    root = tmp_path_factory.mktemp("predict-seg")
    work = root / "run"
    exp, state = initial_run(work, "shapes_segmentation:tiny")
    paths = _images(root / "images", "seg")
    out = root / "out"
    assert cli.main(["predict", "--workdir", str(work), *map(str, paths), "--out",
                     str(out)]) == 0
    return (exp, state), paths, out, json.loads((out / "predictions.json").read_text())


def _apply(run, paths, task):
    """The model of ``run = (experiment, state)`` on ``predict.preprocess`` of ``paths`` (one
    batch): the per-pixel argmax (segmentation) or the detections at ``THRESHOLD``."""
    exp, state = run
    ds = exp.dataset
    prepared = [predict_lib.preprocess(str(p), task, ds.image_shape, ds.mean, ds.std)
                for p in paths]
    images = np.stack([p[0] for p in prepared])
    variables = step_lib.model_variables(state, state.params, exp.plugins)
    t = exp.task

    def forward(v, x):
        outputs = exp.model.apply(v, x, train=False)
        if task == "segmentation":
            return outputs.argmax(-1)
        return postprocess.detect(outputs, (32, 32), t.anchors, t.masks, t.iou_threshold,
                                  THRESHOLD, t.max_detections)

    return exp, jax.device_get(jax.jit(forward)(variables, images)), [p[1] for p in prepared]


# --- detection ------------------------------------------------------------------------------------
def test_detection_pictures_at_original_size_and_boxes_inside(detection):
    _, paths, out, result = detection
    assert result["task"] == "detection" and result["step"] == 0
    assert result["score_threshold"] == THRESHOLD and result["input_size"] == [32, 32]
    assert [r["file"] for r in result["images"]] == [str(p) for p in sorted(paths)]
    names = result["classes"]
    assert names == list(shapes.class_names("detection"))
    total = 0
    for record, (h, w, _, _) in zip(result["images"], SHAPES):
        assert (record["width"], record["height"]) == (w, h)
        with Image.open(out / record["picture"]) as picture:
            assert picture.size == (w, h) and picture.mode == "RGB"
        for d in record["detections"]:
            x0, y0, x1, y1 = d["box"]
            assert 0 <= x0 <= x1 <= w and 0 <= y0 <= y1 <= h
            assert d["score"] >= THRESHOLD and names[d["class"]] == d["name"]
        total += len(record["detections"])
    assert total > 0
    assert sorted(os.listdir(out)) == sorted(
        ["predictions.json"] + [os.path.splitext(p.name)[0] + ".png" for p in paths])


def test_detection_equals_the_model_and_postprocess_mapped_back(detection):
    run, paths, _, result = detection
    paths = sorted(paths)
    exp, det, geometries = _apply(run, paths, "detection")
    for i, (record, path) in enumerate(zip(result["images"], paths)):
        with Image.open(path) as img:
            w, h = img.size
        # the letterbox, by hand: scale to fit 32x32 with the aspect kept, centred
        ratio = min(32 / h, 32 / w)
        nh, nw = round(h * ratio), round(w * ratio)
        top, left = (32 - nh) // 2, (32 - nw) // 2
        assert geometries[i].offset == (top, left)
        n = int(det.count[i])
        assert len(record["detections"]) == n
        for k, d in enumerate(record["detections"]):
            fx0, fy0, fx1, fy1 = det.boxes[i, k]
            want = [(fx0 * 32 - left) * w / nw, (fy0 * 32 - top) * h / nh,
                    (fx1 * 32 - left) * w / nw, (fy1 * 32 - top) * h / nh]
            want = np.clip(want, 0, [w, h, w, h])
            np.testing.assert_allclose(d["box"], want, atol=0.01)
            assert d["class"] == int(det.classes[i, k])
            assert d["score"] == pytest.approx(float(det.scores[i, k]), abs=1e-4)


def test_letterbox_pads_grey_and_maps_boxes_back():
    image = np.zeros((20, 40, 3), np.uint8)  # h 20, w 40 -> 16 x 32 in a 32 x 32 input
    canvas, geometry = predict_lib.letterbox(image, (32, 32))
    assert canvas.shape == (32, 32, 3) and geometry.offset == (8, 0)
    grey = np.float32(128 / 255)  # the detection datasets' letterbox grey
    assert np.all(canvas[:8] == grey) and np.all(canvas[24:] == grey)
    assert np.all(canvas[8:24] == 0.0)
    back = predict_lib.boxes_to_original(np.array([[0.0, 0.25, 1.0, 0.75],
                                                   [0.25, 0.0, 0.5, 1.0]]), (32, 32), geometry)
    np.testing.assert_allclose(back, [[0, 0, 40, 20], [10, 0, 20, 20]])


# --- segmentation ---------------------------------------------------------------------------------
def test_segmentation_masks_at_original_size_equal_the_model(segmentation):
    run, paths, out, result = segmentation
    assert result["task"] == "segmentation" and result["step"] == 0
    assert result["classes"][0] == "background"
    exp, small, _ = _apply(run, paths, "segmentation")
    for i, (record, (h, w, _, _)) in enumerate(zip(result["images"], SHAPES)):
        assert (record["width"], record["height"]) == (w, h)
        with Image.open(out / record["picture"]) as picture:
            assert picture.size == (w, h)
        with Image.open(out / record["mask"]) as img:
            assert img.mode == "L"
            mask = np.asarray(img)
        assert mask.shape == (h, w) and mask.max() < exp.dataset.num_classes
        np.testing.assert_array_equal(mask, image_lib.resize_nearest(small[i], (h, w)))
        counts = {p["class"]: p["count"] for p in record["pixels"]}
        assert sum(counts.values()) == h * w
        assert counts == {c: int(n) for c, n in enumerate(np.bincount(mask.ravel())) if n}


# --- errors: one line, exit status 2, before any jit ----------------------------------------------
def test_bad_input_is_one_line_before_anything_compiles(detection, tmp_path, capsys,
                                                        monkeypatch):
    _, paths, out, _ = detection
    work = out.parent / "run"
    image = paths[0]
    bare = tmp_path / "bare"
    bare.mkdir()
    shutil.copy(work / "config.json", bare / "config.json")
    (tmp_path / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    (tmp_path / "empty").mkdir()
    (tmp_path / "file").write_text("x")

    def no_load(*args, **kwargs):
        raise AssertionError("load_run reached")

    monkeypatch.setattr(run_lib, "load_run", no_load)
    cases = [
        ((tmp_path / "nope", image, tmp_path / "o1"), (), "no such directory"),
        ((bare, image, tmp_path / "o2"), (), "holds no checkpoint"),
        ((work, tmp_path / "bad.png", tmp_path / "o3"), (), "cannot read image"),
        ((work, tmp_path / "missing.png", tmp_path / "o4"), (), "no such image file"),
        ((work, tmp_path / "empty", tmp_path / "o5"), (), "no images found"),
        ((work, image, tmp_path / "file"), (), "is a file"),
        ((work, image, out), (), "exists; pass --overwrite"),
        ((work, image, tmp_path / "o6"), ("--score-threshold", "1.5"), "--score-threshold"),
        ((work, image, tmp_path / "o7"), ("--batch-size", "0"), "--batch-size"),
    ]
    for (workdir, source, target), extra, message in cases:
        status, stdout, err = _predict(capsys, workdir, target, source, extra=extra)
        assert status == 2 and stdout == "", (message, err)
        assert err.startswith("lightjax: error:") and message in err, (message, err)
        assert err.count("\n") == 1 and "Traceback" not in err
    assert not any((tmp_path / f"o{i}").exists() for i in range(1, 8))


def test_overwrite_replaces_the_outputs_with_the_same_predictions(detection, capsys):
    run, paths, out, result = detection
    (out / "det1.png").write_bytes(b"old")
    status, stdout, _ = _predict(capsys, out.parent / "run", out, out.parent / "images",
                                 extra=("--score-threshold", str(THRESHOLD), "--batch-size", "3",
                                        "--overwrite"))
    assert status == 0 and "5 images (detection, step 0)" in stdout
    assert json.loads((out / "predictions.json").read_text()) == result
    with Image.open(out / "det1.png") as picture:
        assert picture.size == (80, 48)


def test_classification_top5_and_caption(tmp_path, capsys):
    initial_run(tmp_path / "run", "digits:tiny")
    (path,) = _images(tmp_path / "images", "cls")[2:3]
    status, _, _ = _predict(capsys, tmp_path / "run", tmp_path / "out", path)
    assert status == 0
    record = json.loads((tmp_path / "out" / "predictions.json").read_text())["images"][0]
    top = record["top5"]
    assert len(top) == 5 and [t["name"] for t in top] == [str(t["class"]) for t in top]
    assert all(a["probability"] >= b["probability"] for a, b in zip(top, top[1:]))
    assert 0 < sum(t["probability"] for t in top) <= 1 + 1e-6
    with Image.open(tmp_path / "out" / record["picture"]) as picture:
        assert picture.size == (40, 70)


def test_help_lists_predict(capsys):
    assert cli.main([]) == 2
    assert "\n    predict" in capsys.readouterr().err
    assert cli.main(["predict", "--help"]) == 0
    text = capsys.readouterr().out
    assert "--score-threshold" in text and "predictions.json" in text


def test_output_names_stay_distinct():
    names = predict_lib.output_names(["a/x.png", "b/x.png", "c/x.jpg", "x_mask.png", "d/x.png"])
    files = [f"{n}{s}" for n in names for s in (".png", "_mask.png")]
    assert names[0] == "x" and names[1] == "x_png" and len(set(files)) == len(files)


# --- drawing --------------------------------------------------------------------------------------
def test_a_box_changes_only_its_outline():
    blank = np.zeros((40, 50, 3), np.uint8)
    drawn = draw.draw_boxes(blank, np.array([[5.0, 8.0, 30.0, 20.0]]), [2], width=1)
    assert drawn.shape == blank.shape and not np.shares_memory(drawn, blank)
    changed = np.any(drawn != blank, axis=-1)
    edge = np.zeros((40, 50), bool)
    edge[8, 5:31] = edge[20, 5:31] = edge[8:21, 5] = edge[8:21, 30] = True
    np.testing.assert_array_equal(changed, edge)
    assert tuple(drawn[8, 10]) == draw.class_color(2)
    assert not np.any(blank)  # the input is untouched


def test_labels_colours_overlay_and_caption():
    colours = {draw.class_color(i) for i in range(20)}
    assert len(colours) == 20 and draw.class_color(3) == draw.class_color(3)
    blank = np.full((60, 80, 3), 255, np.uint8)
    labelled = draw.draw_boxes(blank, np.array([[10, 30, 60, 55]]), [0], ["circle 0.87"])
    assert np.any(labelled[:30] != 255)  # the tag sits above the box
    mask = np.zeros((60, 80), np.int32)
    mask[10:20, 10:20] = 3
    grey = np.full((60, 80, 3), 100, np.uint8)
    over = draw.overlay_mask(grey, mask, 0.5, transparent=[0])
    np.testing.assert_array_equal(over[mask == 0], grey[mask == 0])
    want = np.round(0.5 * 100 + 0.5 * np.asarray(draw.class_color(3), np.float32))
    np.testing.assert_array_equal(over[15, 15], want)
    captioned = draw.draw_caption(grey, "red circle 0.91")
    assert captioned.shape == grey.shape and np.any(captioned[:12, :40] != 100)
