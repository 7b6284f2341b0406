"""Partial binarization of a trained run: the fraction of binary weight channels x the fraction of
binary input positions, every member a traced selection.

    lightjax train --workdir runs/digits                                       # the trained run
    lightjax sweep binarization_ratios:runs/digits --workdir runs/bin-sweep
    lightjax sweep binarization_ratios:tiny --workdir /tmp/br --dry-run       # test-sized

``arg``: a trained run directory (its config is the base; members fine-tune for 4 epochs with
XNOR layers on every conv/dense layer but the first and the last, the lowest-error channels
binary, at the run's learning rate / 10) or ``tiny`` (digits:tiny binarized while training from
scratch, 1 epoch). Axes: ``binary.weight_ratios`` {0, .5, 1} x ``binary.input_ratios`` {0, .5,
1} (inputs: a window from the top-left). Both only change selection values, so the 9 members are
ONE compiled, vmapped group.
"""
import json
import os

from lightjax.sweep import Sweep, product

RATIOS = ([0.0], [0.5], [1.0])


def get_sweep(arg=None):
    axes = ({"binary.weight_ratios": list(RATIOS)}, {"binary.input_ratios": list(RATIOS)})
    fixed = {"binary.method": ["xnor"], "binary.selection": ["error"]}
    if arg == "tiny":
        return Sweep("digits:tiny", product(*axes, fixed, {"train.epochs": [1],
                                                          "data.resolution": [16]}))
    if arg is None or not os.path.isfile(os.path.join(arg, "config.json")):
        raise ValueError(f"give a trained run directory (binarization_ratios:RUNDIR) or 'tiny'; "
                         f"got {arg!r}")
    with open(os.path.join(arg, "config.json")) as f:
        lr = float(json.load(f)["train"]["lr"])
    recipe = {"binary.init_from": [arg], "train.epochs": [4], "train.lr": [0.1 * lr],
              "train.warmup_epochs": [0.0]}
    return Sweep(arg, product(*axes, fixed, recipe))
