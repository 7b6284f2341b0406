"""Structured (filter) pruning with masked parameters, channel groups and compaction.

- :mod:`trace` / :mod:`groups`: channel groups derived by tracing the model (residual ties,
  concat/split/shuffle, depthwise followers), with the reason for every group that cannot be
  pruned exactly.
- :mod:`criteria` / :mod:`ranking`: L0, L1, L2, FPGM, BN-gamma scores; local and global selection
  with caps and rounding.
- :mod:`masking` / :mod:`optim`: group masks -> the ``masks`` collection and parameter masks;
  an optax wrapper so pruned filters and their optimizer state stay zero.
- :mod:`compact`: the same model class with explicit ``widths`` and sliced variables.
- :mod:`session` / :mod:`schedules` / :mod:`sensitivity`: pruning a trained run (one-shot,
  iterative, gradual, the MobileNet-rhs pointwise procedure), sensitivity analysis.
"""
