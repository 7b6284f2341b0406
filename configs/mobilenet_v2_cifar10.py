"""MobileNetV2 (Sandler et al. 2018; alpha 1.0, stride-1 stem) on CIFAR-10: SGD + cosine, 200
epochs.

    lightjax train --config mobilenet_v2_cifar10 --workdir runs/mnv2-c10
    lightjax train --config mobilenet_v2_cifar10:0.5 --workdir runs/mnv2-c10-a05   # alpha 0.5

``arg``: the width multiplier alpha (default 1.0).

Expected: about 94% test top-1 (typical for MobileNetV2 on CIFAR-10 with this recipe; not yet
measured by us). Needs CIFAR-10 prepared for TFDS in ``data.data_dir``.
"""
import ml_collections

from lightjax.train.defaults import train_section


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    cfg = ml_collections.ConfigDict()
    cfg.model = ml_collections.ConfigDict(dict(name="mobilenet_v2", alpha=float(arg or 1.0),
                                               stem_stride=1, dropout=0.2))
    cfg.data = ml_collections.ConfigDict(dict(name="cifar10", resolution=32, augment="auto",
                                              data_dir="~/tensorflow_datasets"))
    cfg.train = train_section(nesterov=True, weight_decay=4e-5, schedule="cosine",
                              decay_epochs=(), warmup_epochs=1.0)
    return cfg
