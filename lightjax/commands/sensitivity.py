"""``lightjax sensitivity``: per-layer pruning sensitivity of a trained run (no retraining).

Examples::

    lightjax sensitivity --workdir runs/digits                     # ratios 0.1 ... 0.9, L1
    lightjax sensitivity --workdir runs/digits --tolerance 1 --cap 0.7   # also writes ratios.json
    lightjax prune --workdir runs/digits --ratios runs/digits/sensitivity/ratios.json
    lightjax sensitivity --workdir runs/det --skip backbone --tolerance 2   # YOLOv3 head, mAP

Writes ``sensitivity.csv``, ``sensitivity.json`` and ``sensitivity.png`` (one curve per layer) to
``--out`` (default ``<workdir>/sensitivity``), which must not hold earlier results.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from lightjax.errors import ValidationError


def _ratios(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"--ratios must be comma-separated numbers, got "
                                         f"{text!r}") from None


def add_parser(subparsers) -> None:
    from lightjax.prune import criteria

    p = subparsers.add_parser("sensitivity", help="per-layer pruning sensitivity analysis",
                              description=__doc__.replace("``", ""))
    p.add_argument("--workdir", required=True, help="a run directory written by lightjax train")
    p.add_argument("--out", help="output directory (default: <workdir>/sensitivity)")
    p.add_argument("--ratios", type=_ratios, default=None, help="default 0.1,0.2,...,0.9")
    p.add_argument("--criterion", default="l1", choices=tuple(criteria.CRITERIA))
    p.add_argument("--groups", default="", help="comma-separated groups, layers or module-path "
                                                "prefixes such as neck0 (default: all)")
    p.add_argument("--skip", default="", help="comma-separated layers, groups or module-path "
                                              "prefixes to keep whole (e.g. backbone)")
    p.add_argument("--bn-batches", type=int, default=0,
                   help="re-estimate BN statistics on this many batches per point (default 0)")
    p.add_argument("--split", default="test")
    p.add_argument("--tolerance", type=float,
                   help="loss of the task's metric (top-1, mIoU, mAP@0.5) in points: also choose "
                        "per-layer ratios (ratios.json)")
    p.add_argument("--cap", type=float, default=0.7, help="largest ratio chosen (default 0.7)")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from lightjax.prune import ranking, sensitivity
    from lightjax.prune.session import PruningSession

    if not os.path.isfile(os.path.join(args.workdir, "config.json")):
        raise ValidationError(f"{args.workdir} holds no lightjax run (no config.json)")
    ratios = args.ratios or sensitivity.DEFAULT_RATIOS
    for r in ratios:
        ranking.check_ratio(r, "each of --ratios")
    ranking.check_ratio(args.cap, "--cap")
    if args.tolerance is not None and args.tolerance < 0:
        raise ValidationError(f"--tolerance must be >= 0 points, got {args.tolerance}")
    out = args.out or os.path.join(args.workdir, "sensitivity")
    existing = [n for n in ("sensitivity.csv", "sensitivity.json", "ratios.json")
                if os.path.exists(os.path.join(out, n))]
    if existing or (os.path.exists(out) and not os.path.isdir(out)):
        raise ValidationError(f"{out} already holds results ({', '.join(existing) or 'a file'}); "
                         f"choose another --out")
    session = PruningSession.open(args.workdir, skip=[s for s in args.skip.split(",") if s])
    groups = [g for g in args.groups.split(",") if g] or None
    log = None if args.no_progress else (lambda row: print(json.dumps(row), file=sys.stderr))
    rows = sensitivity.analyze(session, ratios, args.criterion, groups, args.bn_batches,
                               args.split, log)
    paths = sensitivity.save(rows, out)
    metric = sensitivity.metric_of(rows)
    base = rows[0][metric]
    print(f"baseline {metric} {100 * base:.2f}%; {metric} drop (points) per group and ratio:")
    names = list(dict.fromkeys(r["group"] for r in rows[1:]))
    print(f"{'group':<22}" + "".join(f"{r:>7.1f}" for r in ratios))
    for name in names:
        drops = {r["ratio"]: 100 * r["drop"] for r in rows if r["group"] == name}
        print(f"{name:<22}" + "".join(f"{drops[r]:>7.2f}" for r in ratios))
    if args.tolerance is not None:
        chosen = sensitivity.choose_ratios(rows, args.tolerance / 100, args.cap)
        path = os.path.join(out, "ratios.json")
        with open(path, "w") as f:
            json.dump(chosen, f, indent=1)
        paths.append(path)
        print("chosen ratios: " + ", ".join(f"{k}={v}" for k, v in chosen.items()))
    print("wrote " + ", ".join(paths))
    return 0
