"""Orbax checkpoints of the whole train state under ``<workdir>/checkpoints/<step>``.

Restoring checks shapes against the model being built, so a checkpoint from a different
architecture or a damaged checkpoint gives a clear ``ValueError`` instead of an orbax traceback;
nothing on disk is modified when that happens.
"""
from __future__ import annotations

import os
from typing import Any

import jax
import orbax.checkpoint as ocp
from lightjax.errors import ValidationError


class Checkpoints:
    """Periodic saves with keep-last-N, and restore of the latest (or a given) step."""

    def __init__(self, workdir: str, keep: int = 3):
        self.directory = os.path.join(os.path.abspath(workdir), "checkpoints")
        self.manager = ocp.CheckpointManager(
            self.directory, options=ocp.CheckpointManagerOptions(max_to_keep=keep, create=True))

    def latest_step(self) -> int | None:
        return self.manager.latest_step()

    def save(self, step: int, state: Any) -> None:
        if step in self.manager.all_steps():
            return
        self.manager.save(step, args=ocp.args.StandardSave(state))

    def restore(self, like: Any, step: int | None = None) -> Any:
        """Restore into the structure/shapes of ``like`` (a state or its abstract version)."""
        step = self.latest_step() if step is None else step
        if step is None:
            raise ValidationError(f"no checkpoint in {self.directory}")
        abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, like)
        try:
            return self.manager.restore(step, args=ocp.args.StandardRestore(abstract))
        except ValueError as err:
            if "not compatible with the stored shape" in str(err) or "tree structure" in str(err):
                raise ValidationError(
                    f"checkpoint {self.directory}/{step} does not fit this model (saved from a "
                    f"different architecture or widths): {str(err).splitlines()[0]}") from None
            raise ValidationError(f"checkpoint {self.directory}/{step} could not be read: "
                             f"{str(err).splitlines()[0]}") from None
        except (OSError, KeyError, TypeError) as err:  # missing/corrupted files or metadata
            raise ValidationError(f"checkpoint {self.directory}/{step} is damaged or incomplete "
                             f"({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''})"
                             ) from None

    def wait(self) -> None:
        self.manager.wait_until_finished()

    def close(self) -> None:
        self.manager.close()
