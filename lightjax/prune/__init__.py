"""Structured (filter) pruning: importance criteria and mask-aware optimization.

Implemented so far: :mod:`criteria` (L0, L1, L2, FPGM, BN-gamma scores and mask-aware selection)
and :mod:`optim` (an optax wrapper that keeps pruned weights and their optimizer state at zero).
"""
