"""Learning-rate x seed sweep of the shapes detection demo (YOLOv3-Mobile, mAP@0.5): members that
differ only in traced values (seed, learning rate) are ONE vmapped group, one compiled program.

    lightjax sweep yolov3_shapes_lr --workdir runs/yolo-lr                   # CPU
    lightjax sweep yolov3_shapes_lr:tiny --workdir /tmp/yl --dry-run         # test-sized

``arg``: ``None`` (``yolov3_mobilenet_v1_shapes`` at lr {1e-3, 2e-3} x seeds {0, 1}: 4 members
in 1 group; the results table's metric is mAP@0.5), ``tiny`` (``yolov3_mobilenet_v1_shapes:tiny``,
lr {1e-3, 2e-3}, one seed each).
"""
from lightjax.sweep import Sweep, product, zip_axes


def get_sweep(arg=None):
    if arg == "tiny":
        return Sweep("yolov3_mobilenet_v1_shapes:tiny",
                     zip_axes({"train.lr": [1e-3, 2e-3], "train.seed": [0, 1]}))
    if arg is not None:
        raise ValueError(f"unknown argument {arg!r} (allowed: tiny)")
    return Sweep("yolov3_mobilenet_v1_shapes", product({"train.lr": [1e-3, 2e-3]},
                                                       {"train.seed": [0, 1]}))
