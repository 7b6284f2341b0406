"""Pruning schedules of a trained run: ratio x criterion x schedule, every member a traced mask.

    lightjax train --workdir runs/digits                                       # the trained run
    lightjax sweep pruning_schedules:runs/digits --workdir runs/prune-sweep
    lightjax sweep pruning_schedules:tiny --workdir /tmp/ps --dry-run          # test-sized

(``sweeps/pruning_schedules.py:ARG`` names the same file by path; copy it to change it.)

``arg``: a trained run directory (its config is the base; members fine-tune for 8 epochs from
half its learning rate, cosine-decayed: the ``lightjax prune --epochs 8 --lr-scale 0.5`` recipe)
or ``tiny`` (digits:tiny pruned while training from scratch, 1 epoch). Axes: ``prune.ratio``
{0.25, 0.5, 0.75} x ``prune.criterion`` {l1, l2, fpgm (He et al. 2019), bn_gamma} x
``prune.ramp_epochs`` {0 = one-shot, 4 = the gradual cubic ramp of Zhu & Gupta 2017}. Every axis
only changes mask values, so the whole grid of 24 members is ONE compiled, vmapped group (chunk it
with ``--max-members-per-step``).
"""
import json
import os

from lightjax.sweep import Sweep, product

RATIOS = (0.25, 0.5, 0.75)
CRITERIA = ("l1", "l2", "fpgm", "bn_gamma")


def get_sweep(arg=None):
    if arg == "tiny":
        return Sweep("digits:tiny", product({"prune.ratio": [0.0, 0.5]},
                                            {"prune.criterion": ["l1", "fpgm"]},
                                            {"prune.ramp_epochs": [0.0]},
                                            {"train.epochs": [1], "data.resolution": [16]}))
    if arg is None or not os.path.isfile(os.path.join(arg, "config.json")):
        raise ValueError(f"give a trained run directory (sweeps/pruning_schedules.py:RUNDIR) or "
                         f"'tiny'; got {arg!r}")
    with open(os.path.join(arg, "config.json")) as f:
        lr = float(json.load(f)["train"]["lr"])
    recipe = {"prune.init_from": [arg], "train.epochs": [8], "train.lr": [0.5 * lr],
              "train.schedule": ["cosine"], "train.warmup_epochs": [0.0]}
    return Sweep(arg, product({"prune.ratio": list(RATIOS)}, {"prune.criterion": list(CRITERIA)},
                              {"prune.ramp_epochs": [0.0, 4.0]}, recipe))
