"""Exceptions that mean "the user asked for something that cannot be done", and interruptions.

The command line turns exactly these (and user-caused OS errors such as a missing file) into one
line on stderr with exit status 2; any other exception is a bug and keeps its traceback.

- :class:`ValidationError` (a ``ValueError``): bad configuration, option, file or data.
- :class:`InvalidTypeError` (a ``TypeError`` too): an argument of the wrong type.
- :class:`Diverged`: the loss became NaN/Inf; the last good checkpoint is kept (exit status 1).
- :class:`Interrupted`: SIGINT/SIGTERM stopped a run after a checkpoint (exit 130/143).
"""
from __future__ import annotations

import signal as signal_lib


class ValidationError(ValueError):
    """Bad user input: the message names the option and what is allowed."""


class InvalidTypeError(ValidationError, TypeError):
    """A user-supplied value of the wrong type."""


class Diverged(RuntimeError):
    """The loss became NaN/Inf; the message says which checkpoint is kept."""


class Interrupted(Exception):
    """A run stopped on SIGINT/SIGTERM after writing its checkpoint.

    ``exit_code`` is the shell convention ``128 + signal number`` (130 for SIGINT, 143 for
    SIGTERM); the message says how to resume.
    """

    def __init__(self, signum: int, message: str):
        super().__init__(message)
        self.signum = int(signum)

    @property
    def exit_code(self) -> int:
        return 128 + self.signum

    @property
    def signal_name(self) -> str:
        return signal_lib.Signals(self.signum).name
