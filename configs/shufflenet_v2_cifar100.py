"""ShuffleNet V2 (scale 1.0, stride-1 stem) on CIFAR-100 with the sources' step recipe.

    lightjax train --config configs/shufflenet_v2_cifar100.py --workdir runs/snv2-c100
    lightjax train --config configs/shufflenet_v2_cifar100.py --config.model.activation=relu_hswish

The sources report that swapping ReLU for ReLU-h-swish helps ShuffleNet V2 slightly on CIFAR-100
(not yet measured by us). Needs CIFAR-100 prepared for TFDS in ``data.data_dir``.
"""
import ml_collections

from lightjax.train.defaults import train_section


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    cfg = ml_collections.ConfigDict()
    cfg.model = ml_collections.ConfigDict(dict(name="shufflenet_v2", scale=float(arg or 1.0),
                                               stem_stride=1, activation="relu"))
    cfg.data = ml_collections.ConfigDict(dict(name="cifar100", resolution=32, augment="auto",
                                              data_dir="~/tensorflow_datasets"))
    cfg.train = train_section()
    return cfg
