"""The ``lightjax`` command line. Each sub-command lives in ``lightjax/commands/``.

Bad input (:class:`lightjax.errors.ValidationError`, a missing file, bad flags) prints one line
(``lightjax: error: ...``) to stderr and exits with status 2; any other exception is a bug and
keeps its traceback. A diverged run exits 1; SIGINT/SIGTERM exit 130/143 after a checkpoint.
``lightjax`` alone prints the help (exit status 2).
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import NoReturn, Sequence

from lightjax import commands, errors
from lightjax.commands import binarize as binarize_command
from lightjax.commands import cost as cost_command
from lightjax.commands import eval as eval_command
from lightjax.commands import export as export_command
from lightjax.commands import import_weights as import_weights_command
from lightjax.commands import launch_tpu as launch_tpu_command
from lightjax.commands import lr_range as lr_range_command
from lightjax.commands import predict as predict_command
from lightjax.commands import prune as prune_command
from lightjax.commands import sensitivity as sensitivity_command
from lightjax.commands import sweep as sweep_command
from lightjax.commands import train as train_command

COMMANDS = (train_command, eval_command, lr_range_command, predict_command, cost_command,
            prune_command, sensitivity_command, binarize_command, sweep_command,
            launch_tpu_command, export_command, import_weights_command)


#: OS errors a user causes (a missing or unreadable file, a directory in the way); others are bugs.
USER_OS_ERRORS = (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError,
                  FileExistsError)


class UsageError(Exception):
    """A user error: reported as one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    """Errors are one line; descriptions and epilogs keep their line breaks."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:  # one line instead of usage + message
        raise UsageError(f"{self.prog}: {message}")


DESCRIPTION = ("lightjax: lightweight CNNs (MobileNet, ShuffleNet) and their compression in "
               "JAX/Flax.")

#: Sub-commands whose help gets the shared configs / sweeps epilog unless they set their own.
EPILOGS = {"train": commands.config_help, "sweep": commands.sweep_help}


def _epilog() -> str:
    return (f"{commands.config_help()}\n{commands.sweep_help()}\n\n"
            "'lightjax COMMAND --help' shows a command's options and examples.")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="lightjax", description=DESCRIPTION, epilog=_epilog())
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser,
                                metavar="COMMAND", title="commands")
    for command in COMMANDS:
        command.add_parser(sub)
    for name, epilog in EPILOGS.items():
        child = sub.choices.get(name)
        if child is not None and child.epilog is None:
            child.epilog = epilog()
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        parser = build_parser()
        if not argv:  # `lightjax` alone: the help, with the list of commands
            parser.print_help(sys.stderr)
            return 2
        try:
            args, extra = parser.parse_known_args(argv)
        except SystemExit as stop:  # --help / --version: argparse printed it
            return stop.code if isinstance(stop.code, int) else 0
        if extra and not getattr(args, "accepts_overrides", False):
            raise UsageError(f"lightjax {args.command}: unrecognized arguments: {' '.join(extra)}")
        args.overrides = extra
        return int(args.run(args) or 0)
    except BrokenPipeError:  # output piped into e.g. `head`: not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except errors.Interrupted as err:
        print(f"lightjax: {err}", file=sys.stderr)
        return err.exit_code
    except errors.Diverged as err:
        print(f"lightjax: {err}", file=sys.stderr)
        return 1
    except (UsageError, errors.ValidationError, *USER_OS_ERRORS) as err:
        message = str(err).splitlines()[0] if str(err) else type(err).__name__
        print(f"lightjax: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
