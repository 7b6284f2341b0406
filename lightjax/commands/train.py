"""``lightjax train``: train (or resume) a run from a config.

Examples::

    lightjax train                                    # the digits default, into runs/digits-<time>
    lightjax train --config configs/mobilenet_v1_cifar100.py:rhs --workdir runs/rhs
    lightjax train --workdir runs/rhs                 # same command again: resumes
    lightjax train --config digits --config.model.alpha=0.5 --config.train.epochs=10
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("train", help="train or resume a run",
                              description=__doc__.splitlines()[0])
    p.add_argument("--config", help="configs/FILE.py[:ARG] or a name in configs/ "
                                    "(default: digits; when resuming: the workdir's config)")
    p.add_argument("--workdir", help="run directory (default: runs/<config>-<time>)")
    p.add_argument("--max-steps", type=int, help="stop (with a checkpoint) after this many "
                                                 "total steps; the same command resumes")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
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
    if args.workdir is None:
        name = os.path.splitext(os.path.basename((args.config or "digits").split(":")[0]))[0]
        args.workdir = os.path.join("runs", f"{name}-{time.strftime('%Y%m%d-%H%M%S')}")
    try:
        summary = run_lib.train(cfg, args.workdir, progress=not args.no_progress,
                                max_steps=args.max_steps)
    except run_lib.Diverged as err:
        print(f"lightjax: {err}", file=sys.stderr)
        return 1
    if not summary["finished"]:
        print(f"stopped at step {summary['steps']}; run the same command to resume")
        print(json.dumps(summary))
        return 0
    print(f"test top-1 {100 * summary['top1']:.2f}%  top-5 {100 * summary['top5']:.2f}%  "
          f"loss {summary['loss']:.4f}  params {summary['params']:,}  MACs {summary['macs']:,}  "
          f"steps {summary['steps']}  {summary['seconds']:.0f} s")
    print(json.dumps(summary))
    return 0
