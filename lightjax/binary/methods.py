"""Binarization methods as run configs: a trained run's config plus a ``binary`` section.

``config(run_cfg, method, ...)`` returns the config that ``lightjax binarize`` trains (through the
ordinary training loop, so the result is a normal, resumable run directory):

=========  ==========================================================================================
method     what trains
=========  ==========================================================================================
``bwn``    binary weights (scale ``alpha``), float inputs, one stage
``bnn``    +-1 weights and +-1 inputs, one stage
``xnor``   binary weights with ``alpha`` and +-1 inputs, one stage
``horq``   binary weights with ``alpha`` and the order-``order`` residual input approximation
``sq``     stochastic quantization: weight ratios ``ratios`` (50 -> 75 -> 87.5 -> 100%), channels
           re-drawn by roulette wheel at every stage; inputs of ``--mode`` (default xnor: +-1
           from the start)
``staged`` the same with deterministic channels chosen once (``selection``: ``error``, lowest
           quantization error first, or ``first``)
``srb``    staged residual binarization: weights to 100% by ``ratios`` (inputs float), then inputs
           by ``ratios`` with the sliding window and the HORQ residual approximation, then a final
           fine-tuning stage of at most ``final_epochs``, stopped once the metric has not improved
           for ``patience`` epochs (0: all of them); ``activations_first=True`` stages the inputs
           first
=========  ==========================================================================================

``input_scale`` adds XNOR-Net's input scale ``K`` to layers with sign inputs (bnn, xnor; sq/staged
in those modes). Every stage trains ``epochs`` epochs (SRB's final stage ``final_epochs``); the learning rate is the
run's times ``lr_scale``, with the run's schedule over the whole binarization and no warm-up.
"""
from __future__ import annotations

import copy
import math
from typing import Sequence

import ml_collections

from lightjax.binary import plugin, selection
from lightjax.errors import ValidationError

METHODS = ("bwn", "bnn", "xnor", "horq", "sq", "staged", "srb")
#: Layer modes SQ and staged binarization can use (``mode``).
MODES = ("bwn", "bnn", "xnor", "horq")
DEFAULT_RATIOS = (0.5, 0.75, 0.875, 1.0)


def config(run_cfg: ml_collections.ConfigDict, method: str, workdir: str | None = None, *,
           epochs: float = 2.0, ratios: Sequence[float] = DEFAULT_RATIOS, order: int = 2,
           mode: str = "xnor", selection_mode: str | None = None, layers: str | None = None,
           pad_value: float = 0.0, lr_scale: float = 0.1, activations_first: bool = False,
           final_epochs: float | None = None, seed: int = 0, activation: str | None = None,
           input_scale: bool = False, patience: int = 0) -> ml_collections.ConfigDict:
    """The config binarizing the run ``workdir`` (whose config is ``run_cfg``) with ``method``."""
    if method not in METHODS:
        raise ValidationError(f"unknown binarization method {method!r}; allowed: "
                              f"{', '.join(METHODS)}")
    if mode not in MODES:
        raise ValidationError(f"unknown --mode {mode!r}; allowed: {', '.join(MODES)}")
    if isinstance(order, bool) or not isinstance(order, int) or order < 1:
        raise ValidationError(f"--order (HORQ order) must be an integer >= 1, got {order!r}")
    if not epochs > 0 or (final_epochs is not None and not final_epochs > 0):
        raise ValidationError(f"--epochs and --final-epochs must be > 0, got {epochs}, "
                              f"{final_epochs}")
    if isinstance(patience, bool) or not isinstance(patience, int) or patience < 0:
        raise ValidationError(f"--patience must be an integer >= 0 (epochs), got {patience!r}")
    if patience and method != "srb":
        raise ValidationError(f"--patience applies to --method srb (its final fine-tuning stage), "
                              f"not {method!r}")
    if not 0 < lr_scale <= 10:
        raise ValidationError(f"--lr-scale must be in (0, 10], got {lr_scale}")
    ratios = tuple(selection.check_ratio(r, "--ratios value") for r in ratios)
    if not ratios or list(ratios) != sorted(ratios) or ratios[-1] != 1.0:
        raise ValidationError(f"--ratios must increase and end at 1.0 (e.g. 0.5,0.75,0.875,1), "
                              f"got {','.join(map(str, ratios))}")
    cfg = copy.deepcopy(run_cfg)
    for name in ("prune", "binary"):
        if cfg.get(name) is not None and cfg[name].get("init_from") is not None:
            cfg[name].init_from = None  # the run's own weights already hold what it started from
    b = plugin.section()
    b.init_from = workdir
    b.order = order
    b.layers = layers
    b.pad_value = float(pad_value)
    b.seed = seed
    b.activation = activation
    b.input_scale = bool(input_scale)
    if method in ("bwn", "bnn", "xnor", "horq"):
        b.method = method
        stage_epochs: list[float] = [epochs]
    elif method in ("sq", "staged"):
        b.method = mode
        b.selection = "stochastic" if method == "sq" else (selection_mode or "error")
        b.weight_ratios = ratios
        b.input_ratios = (1.0,)
        stage_epochs = [epochs] * len(ratios)
    else:  # srb
        b.method = "horq"
        b.selection = selection_mode or "first"
        ones = (1.0,) * len(ratios)
        zeros = (0.0,) * len(ratios)
        if activations_first:
            b.weight_ratios = zeros + ratios + (1.0,)
            b.input_ratios = ratios + ones + (1.0,)
        else:
            b.weight_ratios = ratios + ones + (1.0,)
            b.input_ratios = zeros + ratios + (1.0,)
        stage_epochs = [epochs] * (2 * len(ratios)) + [final_epochs or epochs]
    if selection_mode is not None:
        selection.check_mode(selection_mode)
        if method == "sq" and selection_mode != "stochastic":
            raise ValidationError("--selection does not apply to --method sq (always stochastic)")
        b.selection = selection_mode
    b.stage_epochs = tuple(stage_epochs[:-1])
    cfg.binary = b
    t = cfg.train
    t.epochs = int(math.ceil(sum(stage_epochs)))  # a fractional last stage is rounded up
    t.lr = float(t.lr) * lr_scale
    t.warmup_epochs = 0.0
    if patience:  # SRB's final stage: fine-tune until the metric stops improving
        t.plateau_patience = patience
        t.plateau_after_epochs = int(math.floor(sum(stage_epochs[:-1])))
    return cfg
