"""The small sweep of the device-layout tests (a sweep file: ``lightjax sweep
tests/sweep/layout_sweep.py``), in float64 so layouts compare tightly (run with JAX_ENABLE_X64=1).

Three members of MobileNetV1 on 8x8 digits, one epoch of 5 steps (batch 256): 2 seeds, each
with its own learning rate and (traced) weight decay, at alpha 0.25 form one vmapped group, and
one member at alpha 0.5 forms a group of its own, so on several devices the first group is split
over the mesh's 'sweep' axis and the second over its 'data' axis. Few steps and float64 because
training this small net is chaotic: round-off differences between layouts (float32: ~1e-7,
float64: ~1e-16) grow by orders of magnitude per step through ReLU gates and nearly BN-invariant
parameters (see tests/sweep/test_sweep_equivalence.py). Every layout compiles its own programs
(most of the time these tests take), so the sweep is as small as shows all of that.
"""
from lightjax.sweep import Sweep, product, zip_axes

FIXED = {"train.epochs": 1, "train.batch_size": 256, "train.warmup_epochs": 0.0,
         "data.resolution": 8, "train.dtype": "float64"}


def get_sweep(arg=None) -> Sweep:
    grid = product(zip_axes({"train.seed": [0, 1], "train.lr": [0.05, 0.02],
                             "train.weight_decay": [5e-4, 1e-3]}),
                   {"model.alpha": [0.25]})
    wide = {"train.seed": 0, "train.lr": 0.05, "train.weight_decay": 5e-4, "model.alpha": 0.5}
    return Sweep("digits:tiny", [{**m, **FIXED} for m in grid + [wide]])
