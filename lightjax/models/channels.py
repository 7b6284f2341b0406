"""Channel-count arithmetic shared by the width-multiplied models."""
from __future__ import annotations

import math
from lightjax.errors import ValidationError


def make_divisible(value: float, divisor: int = 8, min_value: int | None = None) -> int:
    """Round ``value`` channels to a multiple of ``divisor`` (the MobileNet / TF-slim rule).

    Rounds to the nearest multiple of ``divisor`` (halves round up), clamps to at least
    ``min_value`` (default: ``divisor``), and never rounds down by more than 10%: if the result
    is below ``0.9 * value`` one more ``divisor`` is added. This is torchvision's and TF's
    ``_make_divisible``; MobileNetV2 applies it with ``divisor=8`` to every ``c * alpha``.

    Examples:
      >>> make_divisible(32 * 1.0)    # exact multiples are unchanged
      32
      >>> make_divisible(16 * 1.4)    # 22.4 -> nearest multiple of 8
      24
      >>> make_divisible(32 * 1.4)    # 44.8 -> 48 (nearest rounding, not truncation to 40)
      48
      >>> make_divisible(32 * 0.35)   # 11.2 -> 8 would lose 29% -> 16
      16
      >>> make_divisible(3)           # clamped to min_value (= divisor)
      8
      >>> make_divisible(10, 4, min_value=2)
      12

    Raises:
      ValueError: ``value`` is not a finite number > 0, ``divisor`` is not an integer >= 1, or
        ``min_value`` is given and is not an integer >= 1.
    """
    if (isinstance(value, bool) or not isinstance(value, (int, float))
            or not math.isfinite(value) or value <= 0):
        raise ValidationError(f"make_divisible: value must be a finite number > 0, got {value!r}")
    if isinstance(divisor, bool) or not isinstance(divisor, int) or divisor < 1:
        raise ValidationError(f"make_divisible: divisor must be an integer >= 1, got {divisor!r}")
    if min_value is None:
        min_value = divisor
    elif isinstance(min_value, bool) or not isinstance(min_value, int) or min_value < 1:
        raise ValidationError(f"make_divisible: min_value must be an integer >= 1, got {min_value!r}")
    new_value = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if new_value < 0.9 * value:  # never lose more than 10% of the channels
        new_value += divisor
    return int(new_value)
