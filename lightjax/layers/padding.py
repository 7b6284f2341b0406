"""Spatial padding conventions shared by every convolution and pooling layer.

``'symmetric'`` pads ``k // 2`` on both sides (PyTorch, the default: the reference parameter and
MAC counts use it); ``'same'`` is TensorFlow's SAME (asymmetric at stride 2: the extra row/column
goes to the bottom/right). Both give an output size of ``ceil(size / stride)`` for odd kernels.
"""
from __future__ import annotations
from lightjax.errors import ValidationError

PADDINGS = ("symmetric", "same")


def check_padding(padding: str) -> str:
    if padding not in PADDINGS:
        raise ValidationError(f"unknown padding {padding!r}; allowed: {', '.join(PADDINGS)}")
    return padding


def pad_amounts(size: int, kernel: int, stride: int, padding: str) -> tuple[int, int]:
    """(before, after) padding of one spatial axis of length ``size``."""
    check_padding(padding)
    if padding == "symmetric":
        return kernel // 2, kernel // 2
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def output_size(size: int, kernel: int, stride: int, padding: str) -> int:
    """Output length of one spatial axis (0 when the input collapses)."""
    lo, hi = pad_amounts(size, kernel, stride, padding)
    return max((size + lo + hi - kernel) // stride + 1, 0)
