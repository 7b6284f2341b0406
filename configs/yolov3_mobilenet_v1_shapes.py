"""Object detection of the embedded synthetic shapes: YOLOv3-Mobile (MobileNetV1 backbone,
depthwise-separable YOLOv3 neck) on 64x64 scenes, offline on a CPU.

    lightjax train --config yolov3_mobilenet_v1_shapes            # into runs/...-<time>
    lightjax eval --workdir runs/det                              # mAP@0.5 (VOC07), COCO AP

The dataset (``data.name='shapes'``, ``view='detection'``) draws coloured circles, squares,
triangles, rings and crosses (5 classes) on textured backgrounds, at most 8 per image, 2,000
train / 500 test scenes. The network is narrow (backbone alpha 0.25, neck width x0.25,
separable neck) with ``stem_stride=1`` so the 64x64 input gives 4x4, 8x8 and 16x16 maps
(strides 16, 8, 4); the anchors are YOLOv3's COCO clusters in pixels, most of them larger than
these scenes' shapes (each box takes its best-fitting anchor by size IoU all the same).
Adam 2e-3 with a cosine schedule and one warm-up epoch (the published recipe, batch 64 with
lr 1e-3, steps x0.1, is in ``yolov3_mobilenet_v1_voc``'s docstring once it lands). The measured
mAP is in the README when recorded. ``get_config('tiny')`` is a test-sized run (32x32, few
examples, 1 epoch).
"""
import ml_collections

from lightjax.train.defaults import train_section


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    cfg = ml_collections.ConfigDict()
    cfg.model = ml_collections.ConfigDict(dict(
        name="yolov3_mobilenet_v1", alpha=0.25, head_width=0.25, head_conv="separable",
        stem_stride=1))
    cfg.data = ml_collections.ConfigDict(dict(
        name="shapes", view="detection", difficulty="medium", resolution=64,
        train_size=2000, test_size=500, augment="auto"))
    cfg.task = ml_collections.ConfigDict(dict(name="detection", ignore_thresh=0.7))
    cfg.train = train_section(
        epochs=30, batch_size=32, eval_batch_size=250, optimizer="adam", lr=2e-3,
        weight_decay=5e-5, schedule="cosine", decay_epochs=(), warmup_epochs=1.0,
        log_every_steps=20, checkpoint_every_epochs=2)
    if arg == "tiny":
        cfg.data.resolution = 32
        cfg.data.train_size = 64
        cfg.data.test_size = 32
        cfg.train.epochs = 1
        cfg.train.warmup_epochs = 0.0
        cfg.train.batch_size = 16
    elif arg:
        raise ValueError(f"yolov3_mobilenet_v1_shapes config: unknown argument {arg!r} "
                         f"(allowed: tiny)")
    return cfg
