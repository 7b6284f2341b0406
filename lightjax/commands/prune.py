"""``lightjax prune``: prune a trained run, fine-tune, and save the compact model as a new run.

Examples::

    lightjax prune --workdir runs/digits --ratio 0.5                       # one-shot, L1, local
    lightjax prune --workdir runs/digits --method iterative --ratio 0.5 --rounds 3 --epochs 2
    lightjax prune --workdir runs/digits --method gradual --ratio 0.5 --epochs 4 --frequency 20
    lightjax prune --workdir runs/rhs --method pointwise --tolerance 1.0   # MobileNet-rhs procedure
    lightjax prune --workdir runs/digits --ratios runs/digits/sensitivity/ratios.json
    lightjax eval --workdir runs/digits-pruned-oneshot                     # reloads, no masks

The output directory (``--out``, default ``<workdir>-pruned-<method>``) is an ordinary run whose
config carries the compact ``widths``; ``prune.json`` there holds the history and before/after
figures.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

from lightjax import errors
from lightjax.errors import ValidationError


def _max_ratio(text: str) -> float | dict[str, float]:
    """``0.9`` or ``0.9,unit1/pw=0.25``: a default cap and per-group caps."""
    default, caps = 0.9, {}
    try:
        for part in (p.strip() for p in text.split(",") if p.strip()):
            if "=" in part:
                name, value = part.split("=", 1)
                caps[name.strip()] = float(value)
            else:
                default = float(part)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--max-ratio must be a number and/or GROUP=NUMBER pairs, got {text!r}") from None
    return {"*": default, **caps} if caps else default


def add_parser(subparsers) -> None:
    from lightjax.prune import criteria, ranking, schedules

    p = subparsers.add_parser("prune", help="structured filter pruning of a trained run",
                              description=__doc__.replace("``", ""))
    p.add_argument("--workdir", required=True, help="a run directory written by lightjax train")
    p.add_argument("--out", help="new run directory for the compact model "
                                 "(default: <workdir>-pruned-<method>)")
    p.add_argument("--method", default="oneshot", choices=schedules.METHODS)
    p.add_argument("--ratio", type=float, default=0.5,
                   help="fraction of filters to prune in [0, 1) (per group for local ranking, "
                        "of all prunable filters for global)")
    p.add_argument("--ratios", help="JSON file {group: ratio} (e.g. from lightjax sensitivity "
                                    "--tolerance); overrides --ratio")
    p.add_argument("--criterion", default="l1", choices=tuple(criteria.CRITERIA))
    p.add_argument("--ranking", default="local", choices=ranking.RANKINGS)
    p.add_argument("--round-to", type=int, default=1, help="keep a multiple of this many "
                                                             "channels per group (e.g. 8)")
    p.add_argument("--max-ratio", type=_max_ratio, default=0.9,
                   help="cap per group: a number (default 0.9), optionally followed by "
                        "per-group caps, e.g. 0.8,unit1/pw=0.25,unit2/pw=0.5")
    p.add_argument("--skip", default="", help="comma-separated layers, groups or module-path "
                                              "prefixes to keep whole (e.g. backbone)")
    p.add_argument("--epochs", type=float, default=1.0, help="fine-tuning epochs (per round / "
                                                             "trial)")
    p.add_argument("--lr-scale", type=float, default=0.1,
                   help="fine-tuning learning rate as a fraction of the run's (default 0.1)")
    p.add_argument("--rounds", type=int, default=3, help="iterative: prune/fine-tune rounds")
    p.add_argument("--frequency", type=int, default=10, help="gradual: steps between mask "
                                                              "updates")
    p.add_argument("--tolerance", type=float, default=1.0,
                   help="pointwise: accepted loss of the task's metric (top-1, mIoU, mAP@0.5) in points "
                        "against the unpruned model")
    p.add_argument("--max-layers", type=int, help="pointwise: layers to visit at most")
    p.add_argument("--bn-batches", type=int, default=10,
                   help="batches for BN statistics re-estimation after pruning (0: off)")
    p.add_argument("--no-progress", action="store_true", help="no per-step output")
    p.set_defaults(run=run)


def _check(args: argparse.Namespace) -> dict | None:
    from lightjax.prune import ranking
    from lightjax.train import workdir as workdir_lib

    if not os.path.isfile(os.path.join(args.workdir, "config.json")):
        raise ValidationError(f"{args.workdir} holds no lightjax run (no config.json)")
    ranking.check_ratio(args.ratio, "--ratio")
    caps = args.max_ratio if isinstance(args.max_ratio, dict) else {"*": args.max_ratio}
    for name, cap in caps.items():
        ranking.check_ratio(cap, f"--max-ratio{'' if name == '*' else ' of ' + name}")
    if args.round_to < 1 or args.rounds < 1 or args.frequency < 1 or args.epochs < 0:
        raise ValidationError("--round-to, --rounds and --frequency must be >= 1 and --epochs >= 0")
    if not 0 < args.lr_scale <= 10:
        raise ValidationError(f"--lr-scale must be in (0, 10], got {args.lr_scale}")
    args.out = args.out or f"{os.path.normpath(args.workdir)}-pruned-{args.method}"
    workdir_lib.check_new(args.out)
    if args.ratios:
        try:
            with open(args.ratios) as f:
                ratios = json.load(f)
        except json.JSONDecodeError as err:
            raise ValidationError(f"{args.ratios} is not valid JSON: {err}") from None
        if not isinstance(ratios, dict):
            raise ValidationError(f"{args.ratios} must hold a JSON object {{group: ratio}}")
        for k, v in ratios.items():
            ranking.check_ratio(v, f"ratio of {k} in {args.ratios}")
        if args.method == "pointwise":
            raise ValidationError("--ratios does not apply to --method pointwise")
        return ratios
    return None


def run(args: argparse.Namespace) -> int:
    from lightjax.prune import schedules
    from lightjax.prune.session import PruningSession, save_compact

    ratios = _check(args)
    skip = [s for s in args.skip.split(",") if s]
    session = PruningSession.open(args.workdir, skip=skip)
    if ratios is not None:
        for name in ratios:
            g = session.groups.check_name(name)
            if not g.prunable:
                raise ValidationError(f"{args.ratios}: group {g.name} cannot be pruned ({g.reason})")
    if isinstance(args.max_ratio, dict):
        for name in args.max_ratio:
            if name != "*":
                session.groups.check_name(name)
    before_cost = session.cost()
    before = session.evaluate()
    log = (lambda row: None) if args.no_progress else \
        (lambda row: print(json.dumps(row), file=sys.stderr))
    ratio = ratios if ratios is not None else args.ratio
    common = dict(epochs=args.epochs, lr_scale=args.lr_scale, log=log)
    try:
        if args.method == "pointwise":
            history = schedules.pointwise(session, args.tolerance, criterion=args.criterion,
                                          max_layers=args.max_layers,
                                          bn_batches=args.bn_batches, **common)
        else:
            sel = dict(criterion=args.criterion, ranking_mode=args.ranking,
                       round_to=args.round_to, max_ratio=args.max_ratio)
            if args.method == "oneshot":
                history = schedules.oneshot(session, ratio, bn_batches=args.bn_batches, **sel,
                                            **common)
            elif args.method == "iterative":
                history = schedules.iterative(session, ratio, args.rounds,
                                              bn_batches=args.bn_batches, **sel, **common)
            else:
                history = schedules.gradual(session, ratio, frequency=args.frequency, **sel,
                                            **common)
    except errors.Diverged as err:
        print(f"lightjax: {err} Nothing was written to {args.out}.", file=sys.stderr)
        return 1
    summary = {"method": args.method, "workdir": os.path.abspath(args.workdir),
               "criterion": args.criterion, "ranking": args.ranking,
               "metric": session.task.primary,
               "before": {"params": before_cost.params, "macs": before_cost.macs,
                          **{k: v for k, v in before.items() if isinstance(v, float)}},
               "history": history,
               "kept": {g.name: int(session.masks[g.name].sum()) for g in session.groups.prunable}}
    after = save_compact(session, args.out, summary, max(1, round(args.epochs)))
    print(f"params {before_cost.params:,} -> {after['params']:,} "
          f"({100 * (after['params'] / before_cost.params - 1):+.1f}%)  "
          f"MACs {before_cost.macs:,} -> {after['macs']:,} "
          f"({100 * (after['macs'] / before_cost.macs - 1):+.1f}%)")
    metric = session.task.primary
    print(f"{metric} {100 * before[metric]:.2f}% -> {100 * after[metric]:.2f}%  "
          f"compact run: {args.out}")
    print(json.dumps({"out": args.out, "before": summary["before"], "after": after}))
    return 0
