"""MobileNetV1 activation study: ReLU against ReLU6, leaky ReLU, swish, h-swish, RReLU and
ReLU-h-swish, everything else fixed.

Activations: swish (Ramachandran et al. 2017), hard-swish (Howard et al. 2019, MobileNetV3), RReLU
(a learnable per-channel negative slope), ReLU-h-swish (x for x > 0, hard-swish below) on
MobileNetV1 (Howard et al. 2017, arXiv:1704.04861).

The ReLU-h-swish member is MobileNet-rhs as its source defines it, not ReLU-h-swish plugged into
the standard unit: the rhs unit (dw -> BN -> ReLU-h-swish -> pw -> BN, ``model.variant='rhs'``)
with a bias in every pointwise conv (``model.pointwise_bias=True``, the convention by which the
MobileNet-rhs source counts its parameters). Every other activation uses the standard unit
(dw -> BN -> act -> pw -> BN -> act, no pointwise bias). ``:grid`` separates the two effects:
every unit variant x every activation.

    lightjax sweep activations --workdir runs/act                        # digits, CPU
    lightjax sweep activations:tiny --workdir /tmp/act --dry-run         # test-sized plan
    lightjax sweep activations:cifar100 --workdir runs/act-c100          # real hardware
    lightjax sweep activations:rrelu_init --workdir runs/rrelu           # traced init axis
    lightjax sweep activations:grid --workdir runs/act-grid              # variant x activation
    lightjax sweep activations:grid_cifar100 --workdir runs/act-grid-c100

(``sweeps/activations.py:ARG`` names the same file by path; copy it to change it.)

``arg``:

- ``None``: digits default, the 7 activations x 2 seeds (vmapped per group), 14 members in 7
  compiled groups;
- ``tiny``: test-sized, relu / hard_swish / relu_hswish (MobileNet-rhs) at 8x8, 1 epoch, 2 seeds;
- ``cifar100``: the ``mobilenet_v1_cifar100`` recipe, the 7 activations x 2 seeds (activation
  differences there are about a point, the size of seed noise);
- ``rrelu_init``: RReLU's initial negative slope a_i in {0 (= ReLU at start), 0.1, 0.25} x 2 seeds
  on digits: a traced axis, so all 6 members are ONE vmapped group;
- ``grid`` / ``grid_cifar100``: unit variant {standard, rhs (with pointwise bias)} x the 7
  activations x 2 seeds on digits / CIFAR-100: 28 members in 14 compiled groups.

Each activation (and variant) is its own compiled group; ``notebooks/activation_study.ipynb``
draws the result.
"""
from lightjax.sweep import Sweep, product

ACTIVATIONS = ("relu", "relu6", "leaky_relu_0.1", "swish", "hard_swish", "rrelu", "relu_hswish")
SEEDS = (0, 1)
#: Unit variants of MobileNetV1: the standard unit, and MobileNet-rhs's unit with the pointwise
#: bias its source counts.
VARIANTS = {"standard": {"model.variant": "standard", "model.pointwise_bias": False},
            "rhs": {"model.variant": "rhs", "model.pointwise_bias": True}}
#: The activation whose study member is the whole MobileNet-rhs unit, not just its activation.
RHS_ACTIVATION = "relu_hswish"


def study(activations):
    """One member per activation: ReLU-h-swish builds MobileNet-rhs, the rest the standard unit."""
    return [{"model.activation": a, **VARIANTS["rhs" if a == RHS_ACTIVATION else "standard"]}
            for a in activations]


def grid(activations=ACTIVATIONS):
    """Every unit variant x every activation."""
    return product(list(VARIANTS.values()), {"model.activation": list(activations)})


def get_sweep(arg=None):
    seeds = {"train.seed": list(SEEDS)}
    if arg == "tiny":
        return Sweep("digits:tiny", product(study(["relu", "hard_swish", RHS_ACTIVATION]),
                                            {"data.resolution": [8]}, seeds,
                                            {"train.epochs": [1]}))
    if arg == "cifar100":
        return Sweep("mobilenet_v1_cifar100", product(study(ACTIVATIONS), seeds))
    if arg == "rrelu_init":
        return Sweep("digits", product({"model.activation": ["rrelu"]},
                                       {"train.activation_init": [0.0, 0.1, 0.25]}, seeds))
    if arg == "grid":
        return Sweep("digits", product(grid(), seeds))
    if arg == "grid_cifar100":
        return Sweep("mobilenet_v1_cifar100", product(grid(), seeds))
    if arg is not None:
        raise ValueError(f"unknown argument {arg!r} (allowed: tiny, cifar100, rrelu_init, grid, "
                         f"grid_cifar100)")
    return Sweep("digits", product(study(ACTIVATIONS), seeds))
