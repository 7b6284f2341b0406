"""MobileNetV1 on CIFAR-100 with the sources' recipe (the activation study of MobileNet-rhs).

200 epochs, batch 128, SGD momentum 0.9, lr 0.1 x0.2 at epochs 60/120/160, weight decay 5e-4 (not
on depthwise kernels, BN or biases), CIFAR stem (stride 1), pad-4 crop + flip.

    lightjax train --config configs/mobilenet_v1_cifar100.py --workdir runs/mnv1-c100
    lightjax train --config configs/mobilenet_v1_cifar100.py:rhs --workdir runs/rhs-c100
    lightjax train --config configs/mobilenet_v1_cifar100.py --config.model.activation=swish

``arg``: ``standard`` (default, ReLU) or ``rhs`` (MobileNet-rhs: ReLU-h-swish, pointwise bias).
The sources report MobileNet-rhs at 70.10% top-1 / 88.62% top-5 and ≈ +5 points over ReLU
MobileNetV1. Needs CIFAR-100 prepared for TFDS in ``data.data_dir`` (see the README).
"""
import ml_collections

from lightjax.train.defaults import train_section


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    variant = arg or "standard"
    if variant not in ("standard", "rhs"):
        raise ValueError(f"mobilenet_v1_cifar100: unknown argument {arg!r} (standard, rhs)")
    cfg = ml_collections.ConfigDict()
    cfg.model = ml_collections.ConfigDict(dict(
        name="mobilenet_v1", alpha=1.0, stem_stride=1, variant=variant,
        activation="relu_hswish" if variant == "rhs" else "relu",
        pointwise_bias=variant == "rhs"))
    cfg.data = ml_collections.ConfigDict(dict(name="cifar100", resolution=32, augment="auto",
                                              data_dir="~/tensorflow_datasets"))
    cfg.train = train_section()
    return cfg
