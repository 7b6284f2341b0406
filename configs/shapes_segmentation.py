"""Semantic segmentation of the embedded synthetic shapes: MobileNetV1-FCN (transposed-conv
decoder with stride-16/8 skips, Long et al. 2015) on 64x64 scenes, offline on a CPU.

    lightjax train --config shapes_segmentation                  # into runs/shapes_segmentation-<time>
    lightjax eval --workdir runs/seg                             # mIoU, pixel accuracy
    lightjax prune --workdir runs/seg --ratio 0.5 --epochs 4     # mIoU is the metric
    lightjax sweep shapes_segmentation_alpha --workdir runs/seg-alpha   # alpha sweep

The dataset (``data.name='shapes'``, ``view='segmentation'``) is synthetic: coloured circles,
squares, triangles, rings and crosses on textured, noisy backgrounds, 2,000 train / 500 test
images, 6 classes (background + 5 kinds). The measured mIoU and wall time are in the README.
``get_config('tiny')`` is a test-sized run (32x32, few examples, 1 epoch).
"""
import ml_collections

from lightjax.train.defaults import train_section


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    cfg = ml_collections.ConfigDict()
    cfg.model = ml_collections.ConfigDict(dict(name="mobilenet_v1_fcn", alpha=0.5,
                                               stem_stride=2, activation="relu"))
    cfg.data = ml_collections.ConfigDict(dict(
        name="shapes", view="segmentation", difficulty="medium", resolution=64,
        train_size=2000, test_size=500, augment="auto"))
    cfg.task = ml_collections.ConfigDict(dict(name="segmentation"))
    cfg.train = train_section(
        epochs=20, batch_size=32, eval_batch_size=250, optimizer="adam", lr=2e-3,
        weight_decay=1e-5, schedule="cosine", decay_epochs=(), warmup_epochs=1.0,
        log_every_steps=20, checkpoint_every_epochs=2)
    if arg == "tiny":
        cfg.data.resolution = 32
        cfg.data.train_size = 64
        cfg.data.test_size = 32
        cfg.model.alpha = 0.25
        cfg.train.epochs = 1
        cfg.train.warmup_epochs = 0.0
        cfg.train.batch_size = 16
    elif arg:
        raise ValueError(f"shapes_segmentation config: unknown argument {arg!r} (allowed: tiny)")
    return cfg
