"""ShuffleNet V2 (Ma et al. 2018; scale 1.0, stride-1 stem) on CIFAR-100 with the MobileNet-rhs
source's step recipe (the same as ``mobilenet_v1_cifar100``).

    lightjax train --config shufflenet_v2_cifar100 --workdir runs/snv2-c100
    lightjax train --config shufflenet_v2_cifar100 --config.model.activation=relu_hswish

``arg``: the scale (0.5, 1.0 (default), 1.5, 2.0). The MobileNet-rhs source reports that swapping
ReLU for ReLU-h-swish helps ShuffleNet V2 slightly on CIFAR-100 (not yet measured by us). Needs
CIFAR-100 prepared for TFDS in ``data.data_dir``.
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
