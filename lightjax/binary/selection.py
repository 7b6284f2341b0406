"""Which output channels get binary weights and which input positions get binary activations.

Partial binarization keeps, per layer, a ``(Cout,)`` 0/1 *weight selection* and an ``(H, W)``
0/1 *input selection* (:mod:`lightjax.binary.hooks`). They are computed here, on the host, from a
ratio:

- weights, ``'first'``: the first ``round(ratio * Cout)`` output channels (deterministic);
- weights, ``'error'``: the channels with the lowest quantization error (deterministic);
- weights, ``'stochastic'``: roulette-wheel sampling without replacement with probability
  proportional to ``1 / error`` (stochastic quantization, Dong et al. 2017: channels that
  binarize well are binarized first), re-drawn at every stage;
- inputs: a window that starts at the top-left corner and grows rightward, then downward (the
  first ``round(ratio * H * W)`` positions in raster order).

The quantization error of output channel ``o`` is ``||W_o - alpha_o sign(W_o)||_1 / ||W_o||_1``
with the XNOR scale ``alpha_o = mean |W_o|`` included.
"""
from __future__ import annotations

import math

import numpy as np

from lightjax.errors import ValidationError

#: Weight-channel selection modes.
MODES = ("first", "error", "stochastic")


def check_ratio(value: object, what: str) -> float:
    """``value`` as a float in [0, 1], else a one-line ``ValidationError``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or \
            not math.isfinite(value) or not 0.0 <= value <= 1.0:
        raise ValidationError(f"{what} must be a number in [0, 1] (the fraction binarized), got "
                              f"{value!r}")
    return float(value)


def check_mode(mode: object) -> str:
    if mode not in MODES:
        raise ValidationError(f"unknown binary.selection {mode!r}; allowed: {', '.join(MODES)}")
    return str(mode)


def count(ratio: float, n: int) -> int:
    """How many of ``n`` items a ``ratio`` selects (rounded half up; ratio 1 selects all)."""
    return min(n, int(math.floor(ratio * n + 0.5)))


def quantization_error(kernel: np.ndarray) -> np.ndarray:
    """``(Cout,)`` relative L1 error of binarizing each output channel with its XNOR scale."""
    w = np.asarray(kernel, np.float64).reshape(-1, kernel.shape[-1])
    alpha = np.abs(w).mean(axis=0)
    binary = alpha * np.where(w >= 0, 1.0, -1.0)
    norm = np.abs(w).sum(axis=0)
    return np.abs(w - binary).sum(axis=0) / np.maximum(norm, 1e-12)


def weights(kernel: np.ndarray, ratio: float, mode: str, rng: np.random.Generator | None = None
            ) -> np.ndarray:
    """``(Cout,)`` float32 0/1: the output channels of ``kernel`` (HWIO or (Cin, Cout)) with
    binary weights at ``ratio``."""
    n = kernel.shape[-1]
    k = count(ratio, n)
    out = np.zeros(n, np.float32)
    if k == 0:
        return out
    if k == n or mode == "first":
        out[:k] = 1.0
        return out
    error = quantization_error(kernel)
    if mode == "error":
        out[np.argsort(error, kind="stable")[:k]] = 1.0
        return out
    if rng is None:
        raise ValidationError("stochastic selection needs a random generator")
    weight = 1.0 / np.maximum(error, 1e-12)
    chosen = rng.choice(n, size=k, replace=False, p=weight / weight.sum())
    out[chosen] = 1.0
    return out


def inputs(shape: tuple[int, ...], ratio: float) -> np.ndarray:
    """0/1 float32 of ``shape`` (``(H, W)``, or ``(1,)`` for dense layers): the first
    ``round(ratio * H * W)`` positions in raster order (top-left, rightward, then downward)."""
    size = math.prod(shape)
    out = np.zeros(size, np.float32)
    out[:count(ratio, size)] = 1.0
    return out.reshape(shape)
