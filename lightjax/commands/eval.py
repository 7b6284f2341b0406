"""``lightjax eval``: evaluate the latest checkpoint of a run directory: the task's metrics, a
per-class table (top-1 per class, IoU per class, AP@0.5 per class) and one JSON line.

Example::

    lightjax eval --workdir runs/digits-20261123-140000 --split test
"""
from __future__ import annotations

import argparse
import json


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("eval", help="evaluate a trained run",
                              description=__doc__.replace("``", ""))
    p.add_argument("--workdir", required=True, help="a directory written by lightjax train")
    p.add_argument("--split", default="test", help="split to evaluate (default: test)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from lightjax.train import run as run_lib

    metrics = run_lib.evaluate(args.workdir, args.split)
    print(f"{args.split}: {run_lib.describe(metrics)}  ({metrics['count']} images, step "
          f"{metrics['step']})")
    for line in run_lib.per_class_lines(metrics):
        print(line)
    print(json.dumps(metrics))
    return 0
