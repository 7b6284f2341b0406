"""Orbax checkpoints of the whole train state under ``<workdir>/checkpoints/<step>``.

Restoring checks shapes against the model being built, so a checkpoint from a different
architecture gives a clear :class:`~lightjax.errors.ValidationError` instead of an orbax
traceback. A damaged latest checkpoint (truncated or missing files, e.g. a disk that filled up)
falls back to the previous one when one is kept: the damaged directory is moved, not deleted, to
``<workdir>/checkpoints.damaged/<step>`` and one line on stderr says so. With no earlier
checkpoint the error names the damaged one and what to do.
"""
from __future__ import annotations

import dataclasses
import itertools
import os
import shutil
import sys
from typing import Any

import jax
import orbax.checkpoint as ocp

from lightjax.errors import ValidationError


class Damaged(ValidationError):
    """A checkpoint's files are truncated, missing or unreadable."""


class Checkpoints:
    """Periodic saves with keep-last-N, and restore of the latest (or a given) step."""

    def __init__(self, workdir: str, keep: int = 3):
        self.workdir = os.path.abspath(workdir)
        self.directory = os.path.join(self.workdir, "checkpoints")
        self.keep = keep
        self.manager = self._manager()

    def _manager(self) -> ocp.CheckpointManager:
        return ocp.CheckpointManager(
            self.directory, options=ocp.CheckpointManagerOptions(max_to_keep=self.keep,
                                                                 create=True))

    def latest_step(self) -> int | None:
        return self.manager.latest_step()

    def all_steps(self) -> list[int]:
        return sorted(self.manager.all_steps())

    def save(self, step: int, state: Any) -> None:
        if step in self.manager.all_steps():
            return
        self.manager.save(step, args=ocp.args.StandardSave(state))

    def _restore_step(self, abstract: Any, step: int) -> Any:
        try:
            return self.manager.restore(step, args=ocp.args.StandardRestore(abstract))
        except ValueError as err:
            text = str(err)
            fits = not ("not compatible with the stored shape" in text or "tree structure" in text
                        or "Missing" in text or "keys" in text.lower() and "mismatch" in
                        text.lower())
            older = None if fits else self._restore_older(abstract, step)
            if older is not None:
                return older
            if not fits:
                raise ValidationError(
                    f"checkpoint {self.directory}/{step} does not fit this model (saved from a "
                    f"different architecture, widths or compression): "
                    f"{text.splitlines()[0]}") from None
            raise Damaged(f"checkpoint {self.directory}/{step} could not be read: "
                          f"{text.splitlines()[0] if text else type(err).__name__}") from None
        except Exception as err:  # noqa: BLE001 - truncated/missing files surface in many types
            first = str(err).splitlines()[0] if str(err) else ""
            raise Damaged(f"checkpoint {self.directory}/{step} is damaged or incomplete "
                          f"({type(err).__name__}: {first[:200]})") from None

    def _restore_older(self, abstract: Any, step: int) -> Any:
        """A checkpoint written before a state field existed (e.g. ``ema``, off, so ``None`` in
        ``abstract``): restore the other fields, or ``None`` if that does not fit either."""
        if not dataclasses.is_dataclass(abstract):
            return None
        unset = [f.name for f in dataclasses.fields(abstract) if getattr(abstract, f.name) is None]
        if not unset:
            return None
        for count in range(1, len(unset) + 1):  # the fewest absent fields first
            for absent in itertools.combinations(unset, count):
                target = {f.name: getattr(abstract, f.name) for f in dataclasses.fields(abstract)
                          if f.name not in absent}
                try:
                    restored = self.manager.restore(step, args=ocp.args.StandardRestore(target))
                except Exception:  # noqa: BLE001 - does not fit: try the next, else report
                    continue
                return abstract.replace(**restored)
        return None

    def restore(self, like: Any, step: int | None = None) -> Any:
        """Restore into the structure/shapes of ``like`` (a state or its abstract version).

        Without ``step``: the latest checkpoint, falling back to earlier ones if it is damaged.
        """
        abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, like)
        if step is not None:
            return self._restore_step(abstract, step)
        steps = self.all_steps()
        if not steps:
            raise ValidationError(f"no checkpoint in {self.directory}")
        while True:
            latest = steps[-1]
            try:
                return self._restore_step(abstract, latest)
            except Damaged as err:
                if len(steps) == 1:
                    raise Damaged(f"{err}; no earlier checkpoint is kept: move "
                                  f"{self.directory}/{latest} away to start this run again from "
                                  f"scratch, or restore it from a copy") from None
                self._set_aside(latest)
                steps = self.all_steps()
                print(f"lightjax: warning: {err}; moved it to "
                      f"{self.workdir}/checkpoints.damaged/{latest} and resuming from checkpoint "
                      f"{steps[-1]}", file=sys.stderr)

    def restore_raw(self, step: int | None = None) -> Any:
        """The latest (or ``step``'s) checkpoint as saved, without a target structure: nested
        dicts of numpy arrays (for reading another run's weights, e.g. a warm start)."""
        step = self.latest_step() if step is None else step
        if step is None:
            raise ValidationError(f"no checkpoint in {self.directory}")
        try:
            return self.manager.restore(step, args=ocp.args.StandardRestore())
        except Exception as err:  # noqa: BLE001 - truncated/missing files surface in many types
            first = str(err).splitlines()[0] if str(err) else ""
            raise Damaged(f"checkpoint {self.directory}/{step} could not be read "
                          f"({type(err).__name__}: {first[:200]})") from None

    def _set_aside(self, step: int) -> None:
        """Move a damaged checkpoint out of the manager's directory (nothing is deleted)."""
        if jax.process_index() == 0:
            target = os.path.join(self.workdir, "checkpoints.damaged")
            os.makedirs(target, exist_ok=True)
            destination = os.path.join(target, str(step))
            suffix = 0
            while os.path.exists(destination):
                suffix += 1
                destination = os.path.join(target, f"{step}.{suffix}")
            shutil.move(os.path.join(self.directory, str(step)), destination)
        self.manager.close()
        self.manager = self._manager()

    def wait(self) -> None:
        self.manager.wait_until_finished()

    def close(self) -> None:
        self.manager.close()
