"""``lightjax train``: train (or resume) a run from a config.

Examples::

    lightjax train                                    # the digits default, into runs/digits-<time>
    lightjax train --config mobilenet_v1_cifar100:rhs --workdir runs/rhs
    lightjax train --config shapes_segmentation --workdir runs/seg   # segmentation (mIoU)
    lightjax train --workdir runs/rhs                 # same command again: resumes
    lightjax train --config yolov3_mobilenet_v1_voc --workdir /nfs/det --distributed  # every host

Ctrl-C or SIGTERM: the current step finishes, a checkpoint is written, and the command exits
with status 130/143; the same command resumes. A second process on the same workdir is refused
while the first runs.
    lightjax train --config digits --config.model.alpha=0.5 --config.train.epochs=10
"""
from __future__ import annotations

import argparse
import json
import os
import time

from lightjax.commands import distributed


def add_parser(subparsers) -> None:
    from lightjax import commands

    p = subparsers.add_parser("train", help="train or resume a run",
                              description=__doc__.replace("``", ""),
                              epilog=commands.config_help())
    p.add_argument("--config", help=f"NAME[:ARG] (bundled: {commands.config_names()}; "
                                    f"./configs/NAME.py wins) or FILE.py[:ARG]; default: digits, "
                                    f"or the workdir's config when resuming")
    p.add_argument("--workdir", help="run directory (default: runs/<config>-<time>)")
    p.add_argument("--max-steps", type=int, help="stop (with a checkpoint) after this many "
                                                 "total steps; the same command resumes")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    distributed.add_arguments(p)
    p.set_defaults(run=run, accepts_overrides=True)


def _config(args: argparse.Namespace):
    from lightjax.train import config as config_lib

    saved = os.path.join(args.workdir, "config.json") if args.workdir else None
    if args.config is None and saved and os.path.isfile(saved):
        with open(saved) as f:
            cfg = config_lib.from_json(f.read())
    else:
        cfg = config_lib.load(args.config)
    return config_lib.override(cfg, args.overrides)


def run(args: argparse.Namespace) -> int:
    from lightjax.train import run as run_lib

    cfg = _config(args)
    distributed.initialize(args)  # after the config is read and checked, before any device use
    if args.workdir is None:
        name = os.path.splitext(os.path.basename((args.config or "digits").split(":")[0]))[0]
        args.workdir = os.path.join("runs", f"{name}-{time.strftime('%Y%m%d-%H%M%S')}")
    summary = run_lib.train(cfg, args.workdir, progress=not args.no_progress,
                            max_steps=args.max_steps)
    if not summary["finished"]:
        print(f"stopped at step {summary['steps']}; run `lightjax train --workdir "
              f"{args.workdir}` to resume")
        print(json.dumps(summary))
        return 0
    print(f"test {run_lib.describe(summary)}  params {summary['params']:,}  "
          f"MACs {summary['macs']:,}  steps {summary['steps']}  {summary['seconds']:.0f} s")
    print(json.dumps(summary))
    return 0
