"""Pruning as traced sweep axes: the ``prune`` section of a member's config.

The plug-in lives in :mod:`lightjax.prune.plugin`; this module names what sweeps need from it.
"""
from lightjax.prune.plugin import TRACED, check, section

__all__ = ["TRACED", "check", "section"]
