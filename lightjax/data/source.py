"""The :class:`Dataset` type: a pair of random-access splits, batching, sharding, augmentation.

Batches are dicts of numpy arrays for ONE process: ``'image'`` float32 (B_local, H, W, C)
normalized, ``'valid'`` bool (B_local,), and the dataset's ``fields`` (:mod:`lightjax.data.fields`:
``'label'`` int32 (B_local,); ``'mask'`` int32 (B_local, H, W); ``'boxes'`` float32
(B_local, M, 4), ``'box_classes'`` int32 (B_local, M), ``'box_count'`` int32 (B_local,)).

``batch_size`` is the GLOBAL batch. With ``P`` processes every process yields the same number of
batches and process ``p`` gets rows ``[p*B/P, (p+1)*B/P)`` of every global batch, so
``jax.make_array_from_process_local_data`` assembles the global batch.

Multi-scale training (``train_sizes``, e.g. YOLOv3's 320-608): each augmented training batch is
resized (after augmentation; bilinear images, nearest-neighbour masks; boxes are fractions and
stay) to one square size drawn from ``default_rng([seed, epoch, b, 2])``, the same for every
process. A jitted train step compiles once per size (ten for 320..608 step 32) and reuses it. The order is
``np.random.default_rng([seed, epoch]).permutation(n)`` (or ``arange(n)`` unshuffled) and the
augmentation of global batch ``b`` is drawn from ``default_rng([seed, epoch, b, 1])``: both are
functions of (seed, epoch) only, so ``start_batch=k`` resumes an epoch exactly. A streamed split
(``Dataset.epoch_sources``, e.g. shapes with ``mode='stream'``) also draws the epoch's examples
themselves as a function of the epoch.

Without ``drop_remainder`` (the eval default) the last global batch is padded to ``batch_size``
with rows of zero images, ``valid`` False, masks all ``IGNORE_LABEL``, no boxes (count 0, classes
-1) and label 0; ``'valid'`` marks the real examples (all True in full batches), so metrics summed
over ``valid`` cover every example exactly once, on any number of processes.
"""
from __future__ import annotations

import dataclasses
from typing import Callable, Iterator, Mapping, Sequence

import numpy as np

from lightjax.data import augment as augment_lib
from lightjax.data import fields as fields_lib
from lightjax.data.array_source import ArraySource, Source, channel_stats
from lightjax.errors import ValidationError

__all__ = ["ArraySource", "Dataset", "Source", "channel_stats", "check_int", "make_dataset"]

EVAL_ALIASES = ("test", "val", "validation", "eval")


def check_int(label: str, value: object, low: int) -> int:
    """``value`` as an int if it is an integer (not a bool) >= ``low``, else a one-line
    ``ValidationError`` naming ``label``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValidationError(f"{label} must be an integer >= {low}, got {value!r}")
    return int(value)


def _positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValidationError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


@dataclasses.dataclass
class Dataset:
    """A named pair of splits ('train' and the eval split 'test') with batching.

    ``mean``/``std`` (per channel, [0, 1] pixel space) normalize every batch; ``augment`` is the
    resolved training policy (see :mod:`lightjax.data.augment`); ``image_shape`` is (H, W, C) after
    resizing — set the model's ``input_channels`` from ``image_shape[-1]``. The eval split also
    answers to 'val', 'validation' and 'eval'.

    ``num_classes`` counts the classes of the task's target: labels (classification), mask ids
    including background (segmentation: masks hold ``0 .. num_classes-1`` or ``ignore_label``),
    box classes (detection). ``class_names`` name them; box classes index ``class_names`` too.
    """

    name: str
    num_classes: int
    image_shape: tuple[int, int, int]
    splits: Mapping[str, Source]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    augment: str = "none"
    class_names: tuple[str, ...] = ()
    description: str = ""
    #: fields of every batch besides 'image' and 'valid' (see :mod:`lightjax.data.fields`)
    fields: tuple[str, ...] = ("label",)
    #: 'classification', 'segmentation' or 'detection' ('' = the natural task of ``fields``)
    task: str = ""
    #: mask value of unlabelled pixels (segmentation: :data:`~lightjax.data.fields.IGNORE_LABEL`)
    ignore_label: int | None = None
    #: M, the fixed number of box entries per example (datasets with boxes)
    max_boxes: int | None = None
    #: multi-scale training: square sizes (pixels) one of which every augmented training batch is
    #: resized to (see :func:`multiscale_sizes`); () keeps ``image_shape``
    train_sizes: tuple[int, ...] = ()
    #: streamed splits: ``{split: epoch -> Source}`` gives that epoch's examples (fresh ones every
    #: epoch, a pure function of the epoch; ``splits[split]`` is epoch 0's, for sizes and fields)
    epoch_sources: Mapping[str, Callable[[int], Source]] = dataclasses.field(
        default_factory=dict)

    def __post_init__(self):
        self.fields = tuple(self.fields)
        self.task = self.task or fields_lib.task_of(self.fields)
        fields_lib.check_fields(self.fields, self.task, f"dataset {self.name!r}")
        if "mask" in self.fields:
            if self.ignore_label not in (None, fields_lib.IGNORE_LABEL):
                raise ValidationError(f"dataset {self.name!r}: ignore_label must be "
                                      f"{fields_lib.IGNORE_LABEL} (IGNORE_LABEL), got "
                                      f"{self.ignore_label!r}")
            self.ignore_label = fields_lib.IGNORE_LABEL
        if "boxes" in self.fields and (isinstance(self.max_boxes, bool) or not isinstance(
                self.max_boxes, (int, np.integer)) or self.max_boxes < 1):
            raise ValidationError(f"dataset {self.name!r}: max_boxes must be a positive integer "
                                  f"for examples with boxes, got {self.max_boxes!r}")
        for key, source in self.splits.items():
            if tuple(source.fields) != self.fields:
                raise ValidationError(f"dataset {self.name!r}: split {key!r} carries "
                                      f"{', '.join(source.fields) or 'no fields'}, expected "
                                      f"{', '.join(self.fields)}")
            if getattr(source, "max_boxes", self.max_boxes) != self.max_boxes:
                raise ValidationError(f"dataset {self.name!r}: split {key!r} has "
                                      f"{source.max_boxes} box entries per example, expected "
                                      f"max_boxes={self.max_boxes}")
        self.image_shape = tuple(int(s) for s in self.image_shape)
        self.train_sizes = tuple(int(v) for v in self.train_sizes)
        c = self.image_shape[-1]
        if len(self.mean) != c or len(self.std) != c:
            raise ValidationError(f"dataset {self.name!r}: mean/std need {c} values (one per channel), "
                             f"got {len(self.mean)} and {len(self.std)}")
        if any(s <= 0 for s in self.std):
            raise ValidationError(f"dataset {self.name!r}: std must be positive, got {self.std}")
        augment_lib.check_policy(self.augment, allow_auto=False)

    # -- splits ---------------------------------------------------------------------------------
    def split_name(self, split: str) -> str:
        """The stored split for ``split`` ('val'/'validation'/'eval' mean the eval split)."""
        if split in self.splits:
            return split
        if split in EVAL_ALIASES:
            for alias in EVAL_ALIASES:
                if alias in self.splits:
                    return alias
        raise ValidationError(f"dataset {self.name!r} has no split {split!r}; splits: "
                         f"{', '.join(self.splits)} (the eval split also answers to "
                         f"{', '.join(a for a in EVAL_ALIASES if a not in self.splits)})")

    @property
    def dropped_boxes(self) -> dict[str, int]:
        """Per split: boxes the builder could not fit into ``max_boxes`` entries (0 if none)."""
        return {key: int(getattr(source, "dropped_boxes", 0))
                for key, source in self.splits.items()}

    def size(self, split: str) -> int:
        return len(self.splits[self.split_name(split)])

    def steps_per_epoch(self, split: str, batch_size: int, drop_remainder: bool = True) -> int:
        n = self.size(split)
        batch_size = _positive_int("batch_size", batch_size)
        if drop_remainder:
            if batch_size > n:
                raise ValidationError(f"batch_size={batch_size} is larger than the {n} examples of "
                                 f"{self.name!r} split {split!r}; with drop_remainder=True no "
                                 f"batch would be produced — use a batch size <= {n}")
            return n // batch_size
        return -(-n // batch_size)

    # -- batches --------------------------------------------------------------------------------
    def batches(self, split: str, batch_size: int, *, seed: int = 0, epoch: int = 0,
                shuffle: bool | None = None, augment: bool | str | None = None,
                drop_remainder: bool | None = None, process_index: int | None = None,
                process_count: int | None = None, start_batch: int = 0
                ) -> Iterator[dict[str, np.ndarray]]:
        """Iterate over one epoch of ``split`` for this process (see the module docstring).

        Defaults: ``shuffle`` and ``augment`` True for 'train' only, ``drop_remainder`` True for
        'train' only, process index/count from jax. ``augment`` may also name a policy, which
        overrides the dataset's. ``start_batch=k`` skips the first k batches without loading them.
        Arguments are checked here, before the first batch.
        """
        key = self.split_name(split)
        source = self.splits[key]
        n = len(source)
        is_train = key == "train"
        shuffle = is_train if shuffle is None else bool(shuffle)
        drop_remainder = is_train if drop_remainder is None else bool(drop_remainder)
        if augment is None:
            augment = is_train
        policy = (augment_lib.check_policy(augment, allow_auto=False) if isinstance(augment, str)
                  else self.augment if augment else "none")
        for label, value in (("seed", seed), ("epoch", epoch), ("start_batch", start_batch)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
                raise ValidationError(f"{label} must be a non-negative integer, got {value!r}")
        if process_index is None or process_count is None:
            import jax
            process_index = jax.process_index() if process_index is None else process_index
            process_count = jax.process_count() if process_count is None else process_count
        batch_size = _positive_int("batch_size", batch_size)
        process_count = _positive_int("process_count", process_count)
        if isinstance(process_index, bool) or not 0 <= process_index < process_count:
            raise ValidationError(f"process_index must be in [0, {process_count}), got "
                             f"{process_index!r}")
        if batch_size % process_count:
            raise ValidationError(f"batch_size={batch_size} (the global batch) must be divisible by "
                             f"the number of processes ({process_count})")
        steps = self.steps_per_epoch(split, batch_size, drop_remainder)
        if start_batch > steps:
            raise ValidationError(f"start_batch={start_batch} is past the end of the epoch "
                             f"({steps} batches of {batch_size} in split {split!r})")
        order = (np.random.default_rng([int(seed), int(epoch)]).permutation(n) if shuffle
                 else np.arange(n))
        if key in self.epoch_sources:  # streamed: this epoch's own examples
            source = self.epoch_sources[key](int(epoch))
        return self._iterate(source, order, batch_size, steps, int(start_batch), policy,
                             (int(seed), int(epoch)), int(process_index), process_count)

    def _iterate(self, source: Source, order: np.ndarray, batch_size: int, steps: int,
                 start_batch: int, policy: str, seed_epoch: tuple[int, int], process_index: int,
                 process_count: int) -> Iterator[dict[str, np.ndarray]]:
        local = batch_size // process_count
        lo_local = process_index * local
        mean = np.asarray(self.mean, np.float32)
        inv_std = np.float32(1.0) / np.asarray(self.std, np.float32)
        for b in range(start_batch, steps):
            ids = order[b * batch_size:(b + 1) * batch_size]
            params = augment_lib.draw(policy, batch_size,
                                      np.random.default_rng([*seed_epoch, b, 1]),
                                      self.image_shape[0])
            lo, hi = min(lo_local, len(ids)), min(lo_local + local, len(ids))
            real = hi - lo
            shape = self.image_shape
            if self.train_sizes and policy != "none":
                side = self.train_sizes[np.random.default_rng([*seed_epoch, b, 2]).integers(
                    len(self.train_sizes))]
                shape = (side, side, shape[-1])
            batch = {key: fields_lib.empty(key, local, shape, self.max_boxes)
                     for key in ("image",) + self.fields}
            batch["valid"] = np.zeros((local,), bool)
            if real:
                part = params[slice(lo, hi)]
                example = source.load(ids[lo:hi], part.crops if source.crops_at_decode else None)
                example = augment_lib.apply(example, part, crops_done=source.crops_at_decode)
                if shape != self.image_shape:
                    example = augment_lib.rescale(example, shape[:2])
                batch["image"][:real] = (example["image"] - mean) * inv_std
                for key in self.fields:
                    batch[key][:real] = example[key]
                batch["valid"][:real] = True
            yield batch

    def __repr__(self) -> str:
        sizes = ", ".join(f"{k}={len(v)}" for k, v in self.splits.items())
        return (f"Dataset({self.name!r}, task={self.task!r}, num_classes={self.num_classes}, "
                f"image_shape={self.image_shape}, {sizes}, augment={self.augment!r})")


def multiscale_sizes(spec: Sequence[int], name: str = "multiscale") -> tuple[int, ...]:
    """``(smallest, largest, step)`` pixels -> the sizes ``smallest, smallest + step, ...,
    largest`` (YOLOv3's 320..608 in steps of 32 is ``(320, 608, 32)``); every size must be a
    positive multiple of ``step``."""
    try:
        lo, hi, step = (int(v) for v in spec)
        ok = all(float(v) == int(v) for v in spec) and 0 < lo <= hi and step > 0
    except (TypeError, ValueError):
        ok = False
    if not ok or (hi - lo) % step:
        raise ValidationError(f"{name} must be (smallest, largest, step) in pixels with "
                              f"0 < smallest <= largest and largest - smallest a multiple of "
                              f"step, e.g. (320, 608, 32); got {spec!r}")
    return tuple(range(lo, hi + 1, step))


def make_dataset(name: str, num_classes: int, splits: Mapping[str, Source],
                 image_shape: Sequence[int], *, augment: str, mean=None, std=None,
                 class_names: Sequence[str] = (), description: str = "", task: str = "",
                 ignore_label: int | None = None, max_boxes: int | None = None) -> Dataset:
    """Build a :class:`Dataset`; mean/std default to the train split's per-channel statistics,
    ``fields`` come from the splits, ``task`` defaults to their natural task and ``max_boxes``
    to the train split's box entries."""
    if mean is None or std is None:
        m, s = channel_stats(splits["train"])
        mean = m if mean is None else mean
        std = s if std is None else std
    channels = int(image_shape[-1])

    def per_channel(label, value):
        try:
            return tuple(float(v) for v in np.broadcast_to(np.asarray(value, float), (channels,)))
        except (ValueError, TypeError):
            raise ValidationError(f"dataset {name!r}: {label} must be a number or {channels} numbers "
                             f"(one per channel), got {value!r}") from None

    train = splits["train"]
    if max_boxes is None:
        max_boxes = getattr(train, "max_boxes", None)
    return Dataset(name=name, num_classes=int(num_classes), image_shape=tuple(image_shape),
                   splits=dict(splits), mean=per_channel("mean", mean),
                   std=per_channel("std", std), augment=augment,
                   class_names=tuple(class_names), description=description,
                   fields=tuple(train.fields), task=task, ignore_label=ignore_label,
                   max_boxes=max_boxes)
