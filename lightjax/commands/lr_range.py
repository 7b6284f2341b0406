"""``lightjax lr-range``: a learning-rate range test (Smith 2017; fastai's lr_find) on a config.

Trains from the config's initial state with the learning rate rising exponentially from --min to
--max over --steps steps (the config's optimizer; its lr and schedule are bypassed) and prints the
smoothed loss against the lr, with two suggestions: the lr of the minimum loss / 10, and the lr
of the steepest descent. Nothing is written unless --out is given.

Examples::

    lightjax lr-range --config shapes_segmentation --steps 100
    lightjax lr-range --config digits --config.train.optimizer=sgd --max 10 --out lr.json
"""
from __future__ import annotations

import argparse
import json
import os

from lightjax.errors import ValidationError


def add_parser(subparsers) -> None:
    from lightjax import commands

    p = subparsers.add_parser("lr-range", help="learning-rate range test of a config",
                              description=__doc__.replace("``", ""),
                              epilog=commands.config_help())
    p.add_argument("--config", help="NAME[:ARG] or FILE.py[:ARG] (default: digits)")
    p.add_argument("--steps", type=int, default=100, help="steps of the test (default 100)")
    p.add_argument("--min", type=float, default=1e-6, dest="lr_min",
                   help="first learning rate (default 1e-6)")
    p.add_argument("--max", type=float, default=1.0, dest="lr_max",
                   help="last learning rate (default 1)")
    p.add_argument("--out", help="write the curve and suggestions to this JSON file (new file)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(run=run, accepts_overrides=True)


def run(args: argparse.Namespace) -> int:
    from lightjax.train import config as config_lib
    from lightjax.train import lr_range

    lr_range.check(args.steps, args.lr_min, args.lr_max)
    if args.out and os.path.exists(args.out):
        raise ValidationError(f"--out {args.out} exists; give a new file name")
    cfg = config_lib.override(config_lib.load(args.config), args.overrides)
    result = lr_range.run(cfg, args.steps, args.lr_min, args.lr_max,
                          progress=not args.no_progress)
    n = result["steps"]
    print(f"{'lr':>10}  smoothed loss   ({result['optimizer']}, {n} steps"
          f"{', stopped when the loss blew up' if result['stopped_early'] else ''})")
    for i in sorted(set(int(round(v)) for v in [j * (n - 1) / 15 for j in range(16)])):
        print(f"{result['lr'][i]:10.2e}  {result['smoothed'][i]:.4f}")
    print(f"suggested lr {result['suggested_lr']:.2e} (minimum loss at "
          f"{result['min_loss_lr']:.2e}, / 10); steepest descent at {result['steepest_lr']:.2e}")
    if args.out:
        with open(args.out, "w") as f:
            json.dump(result, f)
    return 0
