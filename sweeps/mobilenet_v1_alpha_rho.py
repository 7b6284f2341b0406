"""MobileNetV1 width multiplier alpha x resolution rho (MobileNet paper Tables 6/7, Figures 4/5).

    lightjax sweep sweeps/mobilenet_v1_alpha_rho.py --workdir runs/alpha-rho          # digits, CPU
    lightjax sweep sweeps/mobilenet_v1_alpha_rho.py:tiny --workdir /tmp/ar --dry-run
    lightjax sweep sweeps/mobilenet_v1_alpha_rho.py:cifar100 --workdir runs/ar-c100   # real hardware

``arg``: ``None`` (digits default scaled to CPU: alpha {1, .75, .5, .25} x rho {32, 24, 16},
2 seeds vmapped per group), ``tiny`` (test-sized), ``cifar100`` (the sources' CIFAR-100 recipe).
"""
from lightjax.sweep import Sweep, product

ALPHAS = (1.0, 0.75, 0.5, 0.25)


def get_sweep(arg=None):
    if arg == "tiny":
        return Sweep("digits:tiny", product({"model.alpha": [0.5, 0.25]},
                                            {"data.resolution": [16, 8]},
                                            {"train.seed": [0, 1]},
                                            {"train.epochs": [1]}))
    if arg == "cifar100":
        return Sweep("mobilenet_v1_cifar100", product({"model.alpha": list(ALPHAS)},
                                                      {"data.resolution": [32, 28, 24]}))
    if arg is not None:
        raise ValueError(f"unknown argument {arg!r} (allowed: tiny, cifar100)")
    return Sweep("digits", product({"model.alpha": list(ALPHAS)},
                                   {"data.resolution": [32, 24, 16]},
                                   {"train.seed": [0, 1]}))
