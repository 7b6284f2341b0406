"""``lightjax predict``: run a trained run on image files; write pictures and predictions.json.

Examples::

    lightjax predict --workdir runs/det photos/ street.jpg --out runs/det-pictures
    lightjax predict --workdir runs/seg scene.png --out out/seg --overwrite
    lightjax predict --workdir runs/det photos/ --out out/det --score-threshold 0.5

IMAGES are image files (PNG, JPEG, ...; any size; greyscale, RGB or RGBA) and/or directories
(their *.png, *.jpg, *.jpeg files, sorted, not recursive). The latest checkpoint of the run is
used; each image is prepared like the run's evaluation data: resized to the run's input
resolution (detection: letterboxed, i.e. scaled with its aspect kept and padded with grey
128/255, as the detection datasets do) and normalised with the dataset's mean/std (the dataset is rebuilt from the run's config, as
lightjax eval does).

Written into --out (created; existing files are refused unless --overwrite), per image at its
ORIGINAL size:

  <stem>.png          detection: boxes with class name and score (score >= --score-threshold);
                      segmentation: the predicted mask over the image (alpha 0.5, background
                      left clear); classification: the top-1 class and probability
  <stem>_mask.png     segmentation only: the class id of every pixel (8-bit greyscale)
  predictions.json    per image: file, width, height, picture, and detections (box
                      [x_min, y_min, x_max, y_max] in original pixels, class, name, score),
                      segmentation pixel counts per class and the mask file, or the
                      classification top-5 (class, name, probability)
"""
from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import math
import os
from typing import Any, Sequence

import numpy as np

from lightjax.errors import ValidationError

#: what a directory argument contributes (lower-cased suffixes)
EXTENSIONS = (".png", ".jpg", ".jpeg")
JSON_NAME = "predictions.json"
TASKS = ("classification", "segmentation", "detection")
TOP_K = 5


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("predict", help="run a trained run on image files (pictures + JSON)",
                              description=__doc__.replace("``", ""))
    p.add_argument("--workdir", required=True, help="a directory written by lightjax train")
    p.add_argument("images", nargs="+", metavar="IMAGES",
                   help="image files and/or directories of *.png, *.jpg, *.jpeg")
    p.add_argument("--out", required=True, help="output directory (created)")
    p.add_argument("--score-threshold", type=float, default=0.3,
                   help="detection: keep boxes scoring at least this much (default: 0.3)")
    p.add_argument("--batch-size", type=int, default=16,
                   help="images per forward pass (default: 16)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace existing output files in --out")
    p.set_defaults(run=run)


# --- inputs ---------------------------------------------------------------------------------------
def find_images(paths: Sequence[str]) -> list[str]:
    """The image files of ``paths``: files as given, directories' *.png/*.jpg/*.jpeg sorted;
    duplicates dropped. ``ValidationError`` for a missing path or when nothing is found."""
    found, seen = [], set()
    for path in paths:
        if os.path.isdir(path):
            names = sorted(n for n in os.listdir(path)
                           if n.lower().endswith(EXTENSIONS)
                           and os.path.isfile(os.path.join(path, n)))
            candidates = [os.path.join(path, n) for n in names]
        elif os.path.isfile(path):
            candidates = [path]
        else:
            raise ValidationError(f"{path}: no such image file or directory")
        for c in candidates:
            key = os.path.realpath(c)
            if key not in seen:
                seen.add(key)
                found.append(c)
    if not found:
        raise ValidationError(f"no images found in {', '.join(paths)} (directories are searched "
                              f"for {', '.join('*' + e for e in EXTENSIONS)})")
    return found


def read_image(path: str, channels: int = 3) -> np.ndarray:
    """uint8 (H, W, channels) of an image file (alpha dropped, greyscale <-> RGB converted);
    ``ValidationError`` naming the file when it cannot be decoded."""
    from lightjax.data import images as image_lib

    try:
        return image_lib.decode(path, channels)
    except image_lib.DECODE_ERRORS as err:
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise ValidationError(f"cannot read image {path}: {reason}") from None


@dataclasses.dataclass(frozen=True)
class Geometry:
    """Where an original ``height x width`` image lies in the network input: scaled by
    ``scale`` (y, x) and placed at ``offset`` (top, left) pixels."""

    height: int
    width: int
    scale: tuple[float, float]
    offset: tuple[int, int]


def letterbox(image: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, Geometry]:
    """Scale ``image`` (H, W, C; uint8 or float in [0, 1]) to fit ``size = (height, width)``
    with its aspect kept, centred on grey padding, exactly as the detection datasets do
    (:func:`lightjax.data.images.letterbox`): float32 [0, 1] and its :class:`Geometry`."""
    from lightjax.data import images as image_lib

    h, w = image.shape[:2]
    canvas, (top, left, nh, nw) = image_lib.letterbox(
        image, (int(size[0]), int(size[1])),
        image_lib.LETTERBOX_FILL if image.dtype == np.uint8 else image_lib.LETTERBOX_FILL / 255.0)
    return image_lib.to_float(canvas), Geometry(h, w, (nh / h, nw / w), (top, left))


def stretch(image: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, Geometry]:
    """Resize ``image`` to ``size`` (bilinear, aspect not kept), as the datasets do: float32
    [0, 1] and its :class:`Geometry`."""
    from lightjax.data import images as image_lib

    h, w = image.shape[:2]
    th, tw = int(size[0]), int(size[1])
    return (image_lib.to_float(image_lib.resize(image, (th, tw))),
            Geometry(h, w, (th / h, tw / w), (0, 0)))


def boxes_to_original(boxes: np.ndarray, input_hw: tuple[int, int],
                      geometry: Geometry) -> np.ndarray:
    """(K, 4) ``(x_min, y_min, x_max, y_max)`` fractions of the network input -> pixels of the
    original image (undoing the letterbox), clipped to it."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    ih, iw = input_hw
    sy, sx = geometry.scale
    top, left = geometry.offset
    x = (boxes[:, 0::2] * iw - left) / sx
    y = (boxes[:, 1::2] * ih - top) / sy
    out = np.stack([x[:, 0], y[:, 0], x[:, 1], y[:, 1]], axis=1)
    return np.clip(out, 0.0, [geometry.width, geometry.height, geometry.width, geometry.height])


def preprocess(path: str, task: str, image_shape: Sequence[int], mean: Sequence[float],
               std: Sequence[float]) -> tuple[np.ndarray, Geometry]:
    """The network input of one image file, as the run's evaluation data: (H, W, C) float32
    normalised, and where the original lies in it."""
    h, w, c = (int(s) for s in image_shape)
    image = read_image(path, c)
    prepared, geometry = (letterbox if task == "detection" else stretch)(image, (h, w))
    prepared = (prepared - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
    return prepared.astype(np.float32), geometry


# --- outputs --------------------------------------------------------------------------------------
def output_names(files: Sequence[str]) -> list[str]:
    """A distinct base name per file (``<stem>``; ``<stem>_<ext>``, then a number, on clashes),
    such that neither ``<base>.png`` nor ``<base>_mask.png`` of one image is another's file."""
    taken = {JSON_NAME}
    bases = []
    for path in files:
        stem, ext = os.path.splitext(os.path.basename(path))
        first = [stem, f"{stem}_{ext.lstrip('.')}"] if ext else [stem]
        for base in itertools.chain(first, (f"{stem}_{n}" for n in itertools.count(2))):
            if f"{base}.png" not in taken and f"{base}_mask.png" not in taken:
                break
        taken.update({f"{base}.png", f"{base}_mask.png"})
        bases.append(base)
    return bases


def check_out(out: str, names: Sequence[str], overwrite: bool) -> None:
    """``ValidationError`` when ``out`` is not a directory (it may not exist yet), or when one of
    ``names`` exists there and ``overwrite`` is off (or is a directory)."""
    if os.path.exists(out) and not os.path.isdir(out):
        raise ValidationError(f"--out {out} is a file, not a directory; choose a directory")
    for name in names:
        path = os.path.join(out, name)
        if os.path.isdir(path):
            raise ValidationError(f"{path} is a directory; cannot write a file there")
        if os.path.exists(path) and not overwrite:
            raise ValidationError(f"{path} exists; pass --overwrite to replace it, or choose "
                                  f"another --out")


def check_workdir(workdir: str):
    """The run's config; ``ValidationError`` unless ``workdir`` holds a run with a checkpoint."""
    from lightjax.train import run as run_lib

    if not os.path.isdir(workdir):
        raise ValidationError(f"--workdir {workdir}: no such directory")
    cfg = run_lib.read_config(workdir)
    directory = os.path.join(workdir, "checkpoints")
    steps = [n for n in os.listdir(directory) if n.isdigit()] if os.path.isdir(directory) else []
    if not steps:
        raise ValidationError(f"{workdir} holds no checkpoint (checkpoints/ is missing or empty); "
                              f"train it first: lightjax train --workdir {workdir}")
    return cfg


def _planned(bases: Sequence[str], task: str | None) -> list[str]:
    names = [f"{b}.png" for b in bases]
    if task == "segmentation":
        names += [f"{b}_mask.png" for b in bases]
    return names + [JSON_NAME]


def _save_png(array: np.ndarray, path: str) -> None:
    from PIL import Image

    Image.fromarray(array).save(path)


def class_name(names: Sequence[str], index: int) -> str:
    return str(names[index]) if 0 <= index < len(names) else f"class {index}"


# --- the run --------------------------------------------------------------------------------------
def _forward(exp, score_threshold: float):
    """jit of ``(state, images) -> host-ready outputs`` of the task."""
    import jax

    from lightjax.train import step as step_lib

    model, plugins, task = exp.model, exp.plugins, exp.task
    hw = tuple(int(s) for s in exp.dataset.image_shape[:2])

    def forward(state, images):
        variables = step_lib.model_variables(state, step_lib.eval_params(state), plugins)
        outputs = model.apply(variables, images, train=False)
        return task.predictions(outputs, hw, score_threshold=score_threshold)

    return jax.jit(forward)


def predict(workdir: str, paths: Sequence[str], out: str, score_threshold: float = 0.3,
            batch_size: int = 16, overwrite: bool = False) -> dict[str, Any]:
    """Run the latest checkpoint of ``workdir`` on the images of ``paths``; write the pictures,
    masks and ``predictions.json`` into ``out``; return what the JSON holds.

    Every user error (options, workdir, checkpoint, images, output files) is a
    ``ValidationError`` raised before anything is compiled or written."""
    import jax

    from lightjax.data import draw
    from lightjax.train import run as run_lib

    if isinstance(score_threshold, bool) or not isinstance(score_threshold, (int, float)) or \
            not math.isfinite(score_threshold) or not 0.0 <= score_threshold < 1.0:
        raise ValidationError(f"--score-threshold must be a number in [0, 1), got "
                              f"{score_threshold!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValidationError(f"--batch-size must be a positive integer, got {batch_size!r}")
    cfg = check_workdir(workdir)
    files = find_images(paths)
    for f in files:  # every file readable, before anything is compiled
        read_image(f, 3)
    bases = output_names(files)
    section = cfg.get("task")
    check_out(out, _planned(bases, section.get("name") if section is not None else None),
              overwrite)

    _, exp, state = run_lib.load_run(workdir)
    dataset, task_name = exp.dataset, exp.task.name
    if task_name not in TASKS:
        raise ValidationError(f"lightjax predict handles {', '.join(TASKS)} runs; {workdir} is a "
                              f"{task_name!r} run")
    check_out(out, _planned(bases, task_name), overwrite)
    names = list(dataset.class_names) or [f"class {i}" for i in range(dataset.num_classes)]
    input_hw = tuple(int(s) for s in dataset.image_shape[:2])
    devices = jax.device_count()
    size = -(-min(batch_size, len(files)) // devices) * devices  # fixed: one compilation
    forward = _forward(exp, float(score_threshold))
    os.makedirs(out, exist_ok=True)

    records = []
    for start in range(0, len(files), size):
        chunk = files[start:start + size]
        prepared = [preprocess(f, task_name, dataset.image_shape, dataset.mean, dataset.std)
                    for f in chunk]
        images = np.zeros((size, *dataset.image_shape), np.float32)
        images[:len(chunk)] = np.stack([p[0] for p in prepared])
        result = jax.device_get(forward(state, jax.device_put(images, exp.batch_sharding)))
        for i, (path, (_, geometry)) in enumerate(zip(chunk, prepared)):
            base = bases[start + i]
            original = read_image(path, 3)
            record = {"file": path, "width": geometry.width, "height": geometry.height,
                      "picture": f"{base}.png"}
            if task_name == "detection":
                count = int(result["count"][i])
                boxes = boxes_to_original(result["boxes"][i, :count], input_hw, geometry)
                classes = [int(c) for c in result["classes"][i, :count]]
                scores = [float(s) for s in result["scores"][i, :count]]
                record["detections"] = [
                    {"box": [round(float(v), 2) for v in box], "class": c,
                     "name": class_name(names, c), "score": round(s, 4)}
                    for box, c, s in zip(boxes, classes, scores)]
                picture = draw.draw_boxes(original, boxes, classes,
                                          [f"{class_name(names, c)} {s:.2f}"
                                           for c, s in zip(classes, scores)])
            elif task_name == "segmentation":
                from lightjax.data import images as image_lib

                mask = image_lib.resize_nearest(result["mask"][i],
                                                (geometry.height, geometry.width))
                counts = np.bincount(mask.ravel(), minlength=dataset.num_classes)
                record["pixels"] = [{"class": c, "name": class_name(names, c),
                                     "count": int(n)} for c, n in enumerate(counts) if n]
                record["mask"] = f"{base}_mask.png"
                _save_png(mask.astype(np.uint8 if dataset.num_classes <= 256 else np.uint16),
                          os.path.join(out, record["mask"]))
                clear = [0] if names and names[0] == "background" else []
                picture = draw.overlay_mask(original, mask, 0.5, transparent=clear)
            else:
                probabilities = np.asarray(result["probabilities"][i], np.float64)
                top = np.argsort(-probabilities, kind="stable")[:TOP_K]
                record["top5"] = [{"class": int(c), "name": class_name(names, int(c)),
                                   "probability": round(float(probabilities[c]), 6)} for c in top]
                best = record["top5"][0]
                picture = draw.draw_caption(original, f"{best['name']} "
                                                      f"{best['probability']:.2f}")
            _save_png(picture, os.path.join(out, record["picture"]))
            records.append(record)

    summary = {"workdir": workdir, "step": int(state.step), "task": task_name,
               "classes": names, "input_size": list(input_hw)}
    if task_name == "detection":
        summary["score_threshold"] = float(score_threshold)
    summary["images"] = records
    with open(os.path.join(out, JSON_NAME), "w") as f:
        json.dump(summary, f, indent=2)
    return summary


def run(args: argparse.Namespace) -> int:
    result = predict(args.workdir, args.images, args.out, args.score_threshold, args.batch_size,
                     args.overwrite)
    print(f"{len(result['images'])} images ({result['task']}, step {result['step']}): pictures "
          f"and {JSON_NAME} in {args.out}")
    return 0
