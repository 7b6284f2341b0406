"""Sweeps: grids of runs, vmapped members per compiled group, device meshes, one results table.

- :mod:`spec`: ``Sweep``, ``product``, ``zip_axes``, loading ``sweeps/*.py``.
- :mod:`plan`: static vs traced axes, groups and chunks, up-front checks.
- :mod:`group`: one group: the training loop with a vmapped step on a ``('sweep', 'data')`` mesh;
  compression plug-ins (e.g. pruning ratios, criteria, schedules) keep per-member state.
- :mod:`mesh`: the mesh and each process's share of members and batch rows.
- :mod:`runner`: the workdir, results table and resume.
- :mod:`table`, :mod:`plots`: reading results and drawing the trade-off figures.
"""
from lightjax.sweep.spec import Sweep, load, product, zip_axes

__all__ = ["Sweep", "load", "product", "zip_axes"]
