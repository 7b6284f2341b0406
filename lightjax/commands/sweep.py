"""``lightjax sweep``: run a grid of members (vmapped per compiled group) into one results table.

Examples::

    lightjax sweep mobilenet_v1_alpha_rho --workdir runs/alpha-rho
    lightjax sweep mobilenet_v1_alpha_rho:tiny --workdir /tmp/ar --dry-run
    lightjax sweep mobilenet_v1_alpha_rho --workdir runs/alpha-rho   # again: resumes
    lightjax sweep mobilenet_v1_alpha_rho --workdir /nfs/alpha-rho --distributed  # on every host

Writes ``sweep.json``, ``results.jsonl`` (one row per member: config, the task's metrics — top-1
and top-5, or mIoU —, its primary ``metric``, loss, params, MACs, latency, seconds, status) and
per-group checkpoints under ``--workdir``. Ctrl-C / SIGTERM checkpoint the running group and exit
130/143; the same command resumes without training any member twice.
"""
from __future__ import annotations

import argparse

from lightjax.commands import distributed
from lightjax.errors import ValidationError


def add_parser(subparsers) -> None:
    from lightjax import commands

    p = subparsers.add_parser("sweep", help="run a sweep of many members",
                              description=__doc__.replace("``", ""),
                              epilog=commands.sweep_help())
    p.add_argument("sweep", help=f"NAME[:ARG] (bundled: {commands.sweep_names()}) or "
                                 f"FILE.py[:ARG] defining get_sweep(arg)")
    p.add_argument("--workdir", required=True, help="sweep directory (resumed when it exists)")
    p.add_argument("--max-members-per-step", type=int, default=None,
                   help="split groups into chunks of at most this many vmapped members")
    p.add_argument("--dry-run", action="store_true", help="print the plan and exit")
    p.add_argument("--max-steps", type=int, help="stop each group after this many steps "
                                                 "(checkpointed; the same command resumes)")
    p.add_argument("--no-progress", action="store_true")
    distributed.add_arguments(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from lightjax.sweep import runner, spec

    distributed.initialize(args)
    sweep = spec.load(args.sweep)
    if args.max_members_per_step is not None and args.max_members_per_step < 1:
        raise ValidationError(f"--max-members-per-step must be >= 1, got {args.max_members_per_step}")
    if args.dry_run:
        print(runner.describe_plan(sweep, args.max_members_per_step))
        return 0
    rows = runner.run(sweep, args.workdir, args.max_members_per_step,
                      progress=not args.no_progress, max_steps=args.max_steps)
    import jax

    if jax.process_index() == 0:
        print(runner.format_table(rows))
        missing = len(sweep.members) - len(rows)
        if missing:
            print(f"{missing} members unfinished; run the same command to resume")
    return 0
