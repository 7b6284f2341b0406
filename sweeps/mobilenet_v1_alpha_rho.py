"""MobileNetV1 width multiplier alpha x resolution rho (Howard et al. 2017, arXiv:1704.04861:
Tables 6/7, Figures 4/5).

    lightjax sweep mobilenet_v1_alpha_rho --workdir runs/alpha-rho                # digits, CPU
    lightjax sweep mobilenet_v1_alpha_rho:tiny --workdir /tmp/ar --dry-run        # the plan
    lightjax sweep mobilenet_v1_alpha_rho:shapes --workdir runs/ar-shapes         # shapes, CPU
    lightjax sweep mobilenet_v1_alpha_rho:cifar100 --workdir runs/ar-c100         # real hardware

(``sweeps/mobilenet_v1_alpha_rho.py:ARG`` names the same file by path; copy it to change it.)

``arg``: ``None`` (digits default scaled to CPU: alpha {1, .75, .5, .25} x rho {32, 24, 16},
2 seeds vmapped per group: 24 members in 12 groups), ``tiny`` (test-sized: alpha {.5, .25} x rho
{16, 8} x 2 seeds, 1 epoch), ``shapes`` (the synthetic shapes' classification view, where width
and resolution matter on a CPU: the ``shapes_classification`` recipe, 28 epochs, at alpha
{1, .5, .25} x rho {32, 24, 16} x 2 seeds, evaluated once at the end on 5,000 test scenes: 18
members in 9 groups, ~41 min on 2 CPU cores; alpha .75 is left out to fit a 45-minute budget
-- each halving of alpha quarters the MACs, so the three widths span the grid evenly in log
MACs; the single ``train.eval_every_epochs`` value is the recipe's epoch count, so members are
evaluated once, at the end), ``cifar100`` (the ``mobilenet_v1_cifar100`` recipe, alpha x rho
{32, 28, 24}).
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
    if arg == "shapes":
        return Sweep("shapes_classification", product({"model.alpha": [1.0, 0.5, 0.25]},
                                                      {"data.resolution": [32, 24, 16]},
                                                      {"train.seed": [0, 1]},
                                                      {"train.eval_every_epochs": [28]}))
    if arg is not None:
        raise ValueError(f"unknown argument {arg!r} (allowed: tiny, shapes, cifar100)")
    return Sweep("digits", product({"model.alpha": list(ALPHAS)},
                                   {"data.resolution": [32, 24, 16]},
                                   {"train.seed": [0, 1]}))
