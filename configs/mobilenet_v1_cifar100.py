"""MobileNetV1 (Howard et al. 2017, arXiv:1704.04861) on CIFAR-100 with the MobileNet-rhs
source's recipe (its activation study and pruning experiments).

200 epochs, batch 128, SGD momentum 0.9, lr 0.1 x0.2 at epochs 60/120/160, weight decay 5e-4 (not
on depthwise kernels, BN or biases), CIFAR stem (stride 1), pad-4 crop + flip.

    lightjax train --config mobilenet_v1_cifar100 --workdir runs/mnv1-c100
    lightjax train --config mobilenet_v1_cifar100:rhs --workdir runs/rhs-c100
    lightjax train --config mobilenet_v1_cifar100 --config.model.activation=swish

(``configs/mobilenet_v1_cifar100.py[:rhs]`` names the same file by path; copy it to change it.)

``arg``: ``standard`` (default, ReLU) or ``rhs`` (MobileNet-rhs: the rhs unit with ReLU-h-swish
and a bias in every pointwise conv, 3,315,428 params).

Expected accuracy: not yet measured by us. The MobileNet-rhs source publishes top-1/top-5 of its
*pruned* models and their drops against the unpruned model; an unpruned MobileNet-rhs baseline of
70.10% top-1 / 88.62% top-5 on CIFAR-100 can be derived from those (pruned figure + drop), but it
is not a figure the source publishes as such. Needs CIFAR-100 prepared for TFDS in
``data.data_dir`` (see the README).
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
