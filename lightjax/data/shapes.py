"""The embedded ``shapes`` dataset: SYNTHETIC scenes of coloured shapes, generated offline.

Nothing is downloaded: images are drawn with vectorised numpy from a seed (deterministic on any
machine), at ``resolution`` x ``resolution`` RGB (default 64), and kept in memory (cached per
arguments). Five shape kinds — circle, square, triangle, ring, cross — of varied size, position,
rotation and colour, with one-pixel anti-aliased edges, on a textured background (a base colour
plus two sinusoidal gratings) with Gaussian pixel noise. Scenes are described in fractions of the
image, so one seed gives the same scenes at every resolution (a true resolution multiplier; only
the visibility rule below, counted in pixels, can differ between resolutions).

Views (``view=``):

- ``'segmentation'`` (default): 1 to 8 shapes per image (by difficulty), anywhere (shapes may be
  cut by the border); later shapes occlude earlier ones. Fields ``mask`` (per-pixel class of what
  is visible: 0 = background, 1 + kind) and the boxes below; ``num_classes = 6`` (background +
  5 kinds), box classes are mask ids (1..5).
- ``'detection'``: the same scenes; fields ``boxes``, ``box_classes`` (kind 0..4),
  ``box_count``; ``num_classes = 5``.
- ``'classification'``: one target shape, entirely inside the image, on top of 0 to 3 smaller
  distractors (30-70 % of its size) of the same kinds and colours; ``label = kind * 3 + colour``
  of the target (the largest shape; colours red, green, blue with hue jitter): 15 classes named
  like ``'red circle'``. Only size tells the target apart, so small networks and low resolutions
  do measurably worse (the MobileNetV1 alpha x rho grid in the README).

Boxes: a shape's FULL extent, occluded parts included, clipped to the image: the pixel-aligned
box of every pixel centre inside the shape. In the segmentation/detection scenes a shape with less
than 25 % of its pixels visible is not drawn at all (nor given a box), so every box has a visible
shape and every mask pixel a box.
Boxes are listed in drawing order (bottom first), compacted; ``max_boxes`` (default 8, the most
shapes a scene has) entries per example. With a smaller ``max_boxes`` the topmost boxes are kept
and the rest are counted in ``dataset.dropped_boxes`` (per split) and the description.

``difficulty`` ('easy', 'medium' (default), 'hard') grows the number of shapes, shrinks them,
lowers colour saturation and raises texture, hue jitter (classification) and pixel noise; see
:mod:`lightjax.data.shapes_scenes`. Sizes default to 2,000 train / 500 test; a seed's first k
examples do not depend on the split size. Normalization: the train split's mean/std. Augmentation
``'auto'`` is ``'flip'`` for every view (all five kinds are mirror-symmetric classes).

Modes (``mode=``): ``'fixed'`` (default) draws one training set of ``train_size`` scenes, seen
every epoch; ``'stream'`` draws ``epoch_size`` FRESH training scenes every epoch — example i of
epoch e is a pure function of (``seed``, e, i) (:func:`generate_epoch`), so a resumed run, every
process of a multi-host run and every vmapped member see the same scenes, and nothing is stored.
Drawing costs about 0.8 ms per 64x64 scene on one core (2,000 scenes: ~1.6 s per epoch). The test
split is the same fixed set in both modes.

For tests: :func:`tiny` (``TINY``: 32x32, 16 train / 8 test).
"""
from __future__ import annotations

import functools

import numpy as np

from lightjax.data import augment as augment_lib
from lightjax.data import boxes as box_lib
from lightjax.data import shapes_render, shapes_scenes
from lightjax.data.array_source import ArraySource
from lightjax.data.shapes_render import KINDS, MAX_SHAPES
from lightjax.data.shapes_scenes import COLOURS, DIFFICULTIES
from lightjax.data.source import Dataset, check_int, make_dataset
from lightjax.errors import ValidationError

VIEWS = ("segmentation", "detection", "classification")
DEFAULT_RESOLUTION = 64
TRAIN_SIZE, TEST_SIZE = 2000, 500
BLOCK = 256  # scenes drawn per random stream: default_rng([seed, split, family, difficulty, block])
TINY = {"resolution": 32, "train_size": 16, "test_size": 8}
AUTO_POLICY = "flip"
_SPLITS = ("train", "test")
STREAM = len(_SPLITS)  # the random-stream id of streamed training epochs
#: ``mode``: 'fixed' (one set of train_size scenes, seen every epoch) or 'stream' (epoch_size
#: fresh scenes every epoch).
MODES = ("fixed", "stream")


def class_names(view: str) -> tuple[str, ...]:
    """Names of the classes of ``view``, indexed by label / mask id / box class."""
    if view == "segmentation":
        return ("background",) + KINDS
    if view == "detection":
        return KINDS
    return tuple(f"{colour} {kind}" for kind in KINDS for colour in COLOURS)


def _draw(family: str, difficulty: str, stream: tuple[int, ...], n: int, resolution: int
          ) -> dict[str, np.ndarray]:
    """The first ``n`` examples of the random stream ``stream`` (blocks of :data:`BLOCK` scenes,
    block b drawn from ``default_rng([*stream, b])``), as read-only arrays."""
    parts = []
    for block in range(-(-n // BLOCK)):
        rng = np.random.default_rng([*stream, block])
        m = min(BLOCK, n - block * BLOCK)
        if family == "scenes":
            scenes, labels = shapes_scenes.draw_scenes(rng, BLOCK, difficulty), None
        else:
            scenes, labels = shapes_scenes.draw_targets(rng, BLOCK, difficulty)
        images, masks, boxes, kinds = shapes_render.render(scenes.head(m), resolution, rng,
                                                           visibility=family == "scenes")
        part = {"images": images}
        if family == "scenes":
            part.update(masks=masks, boxes=boxes, kinds=kinds)
        else:
            part["labels"] = labels[:m]
        parts.append(part)
    out = {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}
    for value in out.values():
        value.setflags(write=False)
    return out


@functools.lru_cache(maxsize=12)
def generate(family: str, difficulty: str, split: str, n: int, seed: int, resolution: int
             ) -> dict[str, np.ndarray]:
    """The first ``n`` examples of a fixed split (read-only arrays, cached): 'scenes' gives
    images, masks, boxes, kinds; 'target' gives images and labels."""
    stream = (seed, _SPLITS.index(split), ("scenes", "target").index(family),
              DIFFICULTIES.index(difficulty))
    return _draw(family, difficulty, stream, n, resolution)


@functools.lru_cache(maxsize=2)
def generate_epoch(family: str, difficulty: str, epoch: int, n: int, seed: int, resolution: int
                   ) -> dict[str, np.ndarray]:
    """The ``n`` fresh training examples of ``epoch`` in ``mode='stream'`` (read-only arrays; the
    last two epochs cached). Example i of epoch e is a pure function of (seed, e, i): block
    ``i // BLOCK`` is drawn from ``default_rng([seed, STREAM, family, difficulty, e, block])``,
    a stream no fixed split uses, and the first k examples do not depend on ``n``."""
    stream = (seed, STREAM, ("scenes", "target").index(family), DIFFICULTIES.index(difficulty),
              epoch)
    return _draw(family, difficulty, stream, n, resolution)


def _check_int(label: str, value: object, low: int) -> int:
    return check_int(f"shapes: {label}", value, low)


def _source(view: str, arrays: dict[str, np.ndarray], max_boxes: int) -> ArraySource:
    if view == "classification":
        return ArraySource(arrays["images"], arrays["labels"])
    classes = arrays["kinds"] + (1 if view == "segmentation" else 0)
    classes = np.where(arrays["kinds"] >= 0, classes, -1)
    boxes, classes, _, dropped = box_lib.truncate(arrays["boxes"], classes, max_boxes)
    return ArraySource(arrays["images"], masks=arrays["masks"] if view == "segmentation" else None,
                       boxes=boxes, box_classes=classes, dropped_boxes=dropped)


def build(resolution: int = DEFAULT_RESOLUTION, *, view: str = "segmentation",
          difficulty: str = "medium", mode: str = "fixed", train_size: int | None = None,
          epoch_size: int | None = None, test_size: int = TEST_SIZE, seed: int = 0,
          max_boxes: int | None = None, augment: str = "auto", mean=None, std=None) -> Dataset:
    """The synthetic shapes :class:`Dataset` (see the module docstring).

    ``mode='fixed'``: ``train_size`` scenes (default 2,000) seen every epoch. ``mode='stream'``:
    every epoch draws ``epoch_size`` (default 2,000) fresh training scenes, a pure function of
    (``seed``, epoch, index) (:func:`generate_epoch`); ``train_size`` is refused there. The test
    split is the same fixed set in both modes.
    """
    if view not in VIEWS:
        raise ValidationError(f"shapes: view must be one of {', '.join(VIEWS)}, got {view!r}")
    if difficulty not in DIFFICULTIES:
        raise ValidationError(f"shapes: difficulty must be one of {', '.join(DIFFICULTIES)}, "
                              f"got {difficulty!r}")
    if mode not in MODES:
        raise ValidationError(f"shapes: mode must be one of {', '.join(MODES)} (data.mode), got "
                              f"{mode!r}")
    if mode == "stream" and train_size is not None:
        raise ValidationError(f"shapes: mode='stream' draws epoch_size fresh scenes every epoch, "
                              f"so train_size (a fixed set) does not apply; got train_size="
                              f"{train_size!r}: set epoch_size instead (or train_size=None)")
    if mode == "fixed" and epoch_size is not None:
        raise ValidationError(f"shapes: epoch_size is for mode='stream'; mode='fixed' uses "
                              f"train_size, got epoch_size={epoch_size!r}")
    resolution = _check_int("resolution", resolution, 1)
    label = "epoch_size" if mode == "stream" else "train_size"
    size = epoch_size if mode == "stream" else train_size
    sizes = {"train": _check_int(label, TRAIN_SIZE if size is None else size, 1),
             "test": _check_int("test_size", test_size, 1)}
    seed = _check_int("seed", seed, 0)
    if view == "classification" and max_boxes is not None:
        raise ValidationError("shapes: max_boxes is only used by the 'segmentation' and "
                              "'detection' views (the classification view has no boxes)")
    max_boxes = None if view == "classification" else _check_int(
        "max_boxes", MAX_SHAPES if max_boxes is None else max_boxes, 1)
    policy = AUTO_POLICY if augment == "auto" else augment_lib.check_policy(augment)
    family = "target" if view == "classification" else "scenes"

    def train_epoch(epoch: int) -> ArraySource:
        return _source(view, generate_epoch(family, difficulty, int(epoch), sizes["train"], seed,
                                            resolution), max_boxes)

    splits = {"train": train_epoch(0) if mode == "stream" else
              _source(view, generate(family, difficulty, "train", sizes["train"], seed,
                                     resolution), max_boxes),
              "test": _source(view, generate(family, difficulty, "test", sizes["test"], seed,
                                             resolution), max_boxes)}
    names = class_names(view)
    dropped = sum(s.dropped_boxes for s in splits.values())
    note = (f"; {dropped} boxes beyond max_boxes={max_boxes} dropped "
            f"(train {splits['train'].dropped_boxes}, test {splits['test'].dropped_boxes})"
            if dropped else "")
    what = (f"{sizes['train']} fresh train scenes per epoch" if mode == "stream" else
            f"{sizes['train']} train")
    dataset = make_dataset(
        "shapes", len(names), splits, (resolution, resolution, 3), augment=policy, mean=mean,
        std=std, class_names=names, task=view, max_boxes=max_boxes,
        description=f"synthetic shapes ({view}, {difficulty}, {resolution}x{resolution}, seed "
                    f"{seed}), {what} / {sizes['test']} test{note}")
    if mode == "stream":
        dataset.epoch_sources = {"train": train_epoch}
    return dataset


def tiny(view: str = "segmentation", **overrides) -> Dataset:
    """A tiny shapes dataset for tests: ``TINY`` (32x32, 16 train / 8 test) plus ``overrides``."""
    return build(view=view, **{**TINY, **overrides})
