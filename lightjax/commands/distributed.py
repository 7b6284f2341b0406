"""``--distributed`` / ``--coordinator`` options: one process per host, every process runs the same
command (``jax.distributed.initialize``); each loads only its own part of the data.

- ``--distributed``: ``jax.distributed.initialize()`` with its automatic cluster detection (Cloud
  TPU pod slices, SLURM, Open MPI, Kubernetes JobSet).
- ``--coordinator HOST:PORT --num-processes N --process-id I``: explicit, e.g. several processes
  on one machine (on CPU the collectives use gloo).
"""
from __future__ import annotations

import argparse
from lightjax.errors import ValidationError


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--distributed", action="store_true",
                   help="multi-host: jax.distributed.initialize() with automatic detection")
    p.add_argument("--coordinator", help="multi-process: coordinator address HOST:PORT")
    p.add_argument("--num-processes", type=int, help="with --coordinator: number of processes")
    p.add_argument("--process-id", type=int, help="with --coordinator: this process's index")


def initialize(args: argparse.Namespace) -> None:
    """Start ``jax.distributed`` as the options ask (nothing without them)."""
    manual = (args.coordinator, args.num_processes, args.process_id)
    if args.coordinator is None and (args.num_processes is not None
                                     or args.process_id is not None):
        raise ValidationError("--num-processes/--process-id need --coordinator HOST:PORT")
    if args.coordinator is not None:
        if args.distributed:
            raise ValidationError("give either --distributed or --coordinator, not both")
        if args.num_processes is None or args.process_id is None:
            raise ValidationError("--coordinator needs --num-processes N and --process-id I")
        if args.num_processes < 1 or not 0 <= args.process_id < args.num_processes:
            raise ValidationError(f"--process-id must be in [0, {args.num_processes}) and "
                             f"--num-processes >= 1, got {args.process_id} of "
                             f"{args.num_processes}")
    elif not args.distributed:
        return
    import jax

    # CPU collectives across processes (ignored by GPU/TPU backends)
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    if args.coordinator is not None:
        jax.distributed.initialize(*manual)
    else:
        jax.distributed.initialize()
