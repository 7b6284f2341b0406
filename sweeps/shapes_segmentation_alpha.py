"""Width multiplier sweep of the shapes segmentation network (MobileNetV1-FCN, mIoU).

    lightjax sweep shapes_segmentation_alpha --workdir runs/seg-alpha           # CPU
    lightjax sweep shapes_segmentation_alpha:tiny --workdir /tmp/sa --dry-run   # test-sized

``arg``: ``None`` (the ``shapes_segmentation`` recipe at alpha {1, .5, .25}, one seed, its 24
epochs: 3 groups; the results table's metric is mIoU), ``tiny`` (``shapes_segmentation:tiny`` at
alpha {.5, .25}).
"""
from lightjax.sweep import Sweep, product


def get_sweep(arg=None):
    if arg == "tiny":
        return Sweep("shapes_segmentation:tiny", product({"model.alpha": [0.5, 0.25]}))
    if arg is not None:
        raise ValueError(f"unknown argument {arg!r} (allowed: tiny)")
    return Sweep("shapes_segmentation", product({"model.alpha": [1.0, 0.5, 0.25]}))
