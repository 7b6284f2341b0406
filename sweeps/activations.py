"""MobileNetV1 activation study (SPEC section 2): ReLU against ReLU6, leaky ReLU, swish, h-swish,
RReLU and ReLU-h-swish (MobileNet-rhs), everything else fixed.

    lightjax sweep sweeps/activations.py --workdir runs/act                  # digits, CPU
    lightjax sweep sweeps/activations.py:tiny --workdir /tmp/act --dry-run
    lightjax sweep sweeps/activations.py:cifar100 --workdir runs/act-c100    # real hardware
    lightjax sweep sweeps/activations.py:rrelu_init --workdir runs/rrelu     # traced init axis

``arg``: ``None`` (digits default, every activation x 2 seeds vmapped per group), ``tiny``
(test-sized: 3 activations at 8x8, 1 epoch, 2 seeds), ``cifar100`` (the sources' CIFAR-100 recipe,
every activation x 2 seeds: activation differences are about a point, the size of seed noise),
``rrelu_init`` (RReLU's initial negative slope a_i in {0 (= ReLU at start), 0.1, 0.25} x 2 seeds on
digits: a traced axis, so all 6 members are ONE vmapped group).
Each activation is its own compiled group; ``notebooks/activation_study.ipynb`` draws the result.
"""
from lightjax.sweep import Sweep, product

ACTIVATIONS = ("relu", "relu6", "leaky_relu_0.1", "swish", "hard_swish", "rrelu", "relu_hswish")
SEEDS = (0, 1)


def get_sweep(arg=None):
    if arg == "tiny":
        return Sweep("digits:tiny", product({"model.activation": ["relu", "hard_swish",
                                                                  "relu_hswish"]},
                                            {"data.resolution": [8]},
                                            {"train.seed": list(SEEDS)},
                                            {"train.epochs": [1]}))
    if arg == "cifar100":
        return Sweep("mobilenet_v1_cifar100", product({"model.activation": list(ACTIVATIONS)},
                                                      {"train.seed": list(SEEDS)}))
    if arg == "rrelu_init":
        return Sweep("digits", product({"model.activation": ["rrelu"]},
                                       {"train.activation_init": [0.0, 0.1, 0.25]},
                                       {"train.seed": list(SEEDS)}))
    if arg is not None:
        raise ValueError(f"unknown argument {arg!r} (allowed: tiny, cifar100, rrelu_init)")
    return Sweep("digits", product({"model.activation": list(ACTIVATIONS)},
                                   {"train.seed": list(SEEDS)}))
