"""Sweeps: grids of runs, vmapped members per compiled group, one results table, resume.

- :mod:`spec`: ``Sweep``, ``product``, ``zip_axes``, loading ``sweeps/*.py``.
- :mod:`plan`: static vs traced axes, groups and chunks.
- :mod:`group`: one group's vmapped training.
- :mod:`runner`: the workdir, results table and resume.
"""
from lightjax.sweep.spec import Sweep, load, product, zip_axes

__all__ = ["Sweep", "load", "product", "zip_axes"]
