"""Object detection of the embedded synthetic shapes: YOLOv3-Mobile (MobileNetV1 backbone,
YOLOv3 neck) on 128x128 scenes, offline on a CPU.

    lightjax train --config yolov3_mobilenet_v1_shapes --workdir runs/det   # ~9-10 min, 2 cores
    lightjax eval --workdir runs/det                             # mAP@0.5 (VOC07), COCO AP
    lightjax predict --workdir runs/det scene.png --out pictures # boxes drawn, JSON

The dataset (``data.name='shapes'``, ``view='detection'``) draws coloured circles, squares,
triangles, rings and crosses (5 classes) on textured backgrounds; 'easy' scenes hold 1 to 3
shapes of 24-50 % of the image side; 2,000 train / 500 test scenes. The network is YOLOv3-Mobile
with a half-width backbone (alpha 0.5) and a quarter-width neck (``head_width=0.25``, standard 3x3
neck convs): 2,184,954 params, 99M MACs at 128x128 (the x0.5 neck is 6,076,410 / 242M, 80 % of
them in the neck), the published strides 32/16/8 (4x4, 8x8 and 16x16 maps), YOLOv3's COCO anchors
in pixels, output biases at the objectness/class priors. Adam 8e-3, cosine schedule, one warm-up
epoch, 16 epochs, evaluated at epochs 8 and 16. (The depthwise-separable neck,
``--config.model.head_conv=separable``, learns the classes much more slowly at this size in our
runs; the published recipe is in ``yolov3_mobilenet_v1_voc``.)

Data mode ``stream``: 2,000 fresh scenes every epoch (a function of the data seed, the epoch and
the index), tested on a fixed 500. Adam 8e-3: ``lightjax lr-range --config
yolov3_mobilenet_v1_shapes --steps 100 --min 1e-4 --max 1`` (on the x0.5 neck) puts the smoothed
loss's minimum at 7.4e-2 (suggesting 7.4e-3). Why the x0.25 neck: on 2 CPU cores the x0.5 neck
needed 20 epochs (19 min) for 76 % mAP@0.5 and reached 58 % in 14 epochs (12.5 min); the x0.25
neck trains ~1.7x as many images per second and learned faster per epoch too (49.4 % at epoch 6
of a 24-epoch run, where the x0.5 neck had 37.9 % at epoch 5 of 20 and 43.0 % at epoch 7 of 14).
Measured figures: README and benchmarks/RESULTS.md.

``get_config('medium')``: the same recipe on 'medium' scenes (2-5 smaller shapes, lower
saturation, more texture and noise). ``get_config('tiny')`` is a test-sized run: a narrower net
(alpha 0.25, neck x0.25, separable, stem stride 1) on 32x32 'medium' scenes, few examples,
1 epoch.
"""
import ml_collections

from lightjax.train.defaults import train_section


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    cfg = ml_collections.ConfigDict()
    cfg.model = ml_collections.ConfigDict(dict(
        name="yolov3_mobilenet_v1", alpha=0.5, head_width=0.25, head_conv="standard",
        stem_stride=2))
    cfg.data = ml_collections.ConfigDict(dict(
        name="shapes", mode="stream", view="detection", difficulty="easy", resolution=128,
        train_size=None, epoch_size=2000, test_size=500, augment="auto", multiscale=None))
    cfg.task = ml_collections.ConfigDict(dict(name="detection", ignore_thresh=0.7, anchors=None,
                                              anchor_masks=None))
    cfg.train = train_section(
        epochs=16, batch_size=32, eval_batch_size=250, optimizer="adam", lr=8e-3,
        weight_decay=5e-5, schedule="cosine", decay_epochs=(), warmup_epochs=1.0,
        log_every_steps=20, checkpoint_every_epochs=4, eval_every_epochs=8)
    if arg == "medium":
        cfg.data.difficulty = "medium"
    elif arg == "tiny":
        cfg.model.update(alpha=0.25, head_width=0.25, head_conv="separable", stem_stride=1)
        cfg.data.update(difficulty="medium", resolution=32, epoch_size=64, test_size=32)
        cfg.train.epochs = 1
        cfg.train.lr = 2e-3
        cfg.train.warmup_epochs = 0.0
        cfg.train.batch_size = 16
        cfg.train.eval_every_epochs = 1
        cfg.train.checkpoint_every_epochs = 2
    elif arg:
        raise ValueError(f"yolov3_mobilenet_v1_shapes config: unknown argument {arg!r} "
                         f"(allowed: medium, tiny)")
    return cfg
