"""Tests for lightjax.models.channels.make_divisible (the MobileNet / TF channel rounding rule)."""
import math

import pytest

from lightjax.models.channels import make_divisible


@pytest.mark.parametrize("value, expected", [
    (32 * 1.4, 48),     # 44.8 -> 48 (a known implementation bug gave 44)
    (32 * 0.35, 16),    # 11.2 -> 8 loses 29% (< 0.9 * 11.2 = 10.08) -> 8 + 8
    (16 * 1.4, 24),     # 22.4 -> 24
    (16 * 0.35, 8),     # 5.6 -> clamped to min_value 8
    (64 * 1.4, 88),     # 89.6 -> 88 (loses 1.8%: allowed)
    (96 * 1.4, 136),    # 134.4 -> 136
    (1280 * 1.4, 1792),
    (12, 16),           # a tie rounds up: int(12 + 4) // 8 * 8
    (11.9, 16),         # rounds down to 8 < 0.9 * 11.9 = 10.71, so the 10% rule adds 8
    (13, 16),           # nearest multiple
    (35.5, 32),         # rounds down to 32 >= 0.9 * 35.5 = 31.95: kept
    (35.9, 40),         # rounds down to 32 < 0.9 * 35.9 = 32.31: one divisor added
])
def test_known_values(value, expected):
    assert make_divisible(value) == expected


@pytest.mark.parametrize("value", [8, 16, 24, 32, 96, 160, 320, 1280])
def test_exact_multiples_unchanged(value):
    assert make_divisible(value) == value
    assert make_divisible(float(value)) == value


@pytest.mark.parametrize("value", [0.01, 1, 3, 4.9, 7])
def test_small_values_clamp_to_min_value(value):
    assert make_divisible(value) == 8                    # min_value defaults to the divisor
    assert make_divisible(value, 8, min_value=16) == 16


def test_explicit_min_value_and_divisor():
    assert make_divisible(10, 4, min_value=2) == 12
    assert make_divisible(1, 4, min_value=2) == 2        # min_value need not be a multiple
    assert make_divisible(37.4, 1) == 37                 # divisor 1: plain rounding
    assert make_divisible(37.5, 1) == 38


def test_never_rounds_down_more_than_ten_percent():
    for d in (1, 2, 4, 8, 16, 32):
        for i in range(1, 4000):
            v = i / 7
            out = make_divisible(v, d)
            assert isinstance(out, int)
            assert out % d == 0 and out >= d
            assert out >= 0.9 * v, (v, d, out)
            assert out <= max(d, v + d), (v, d, out)    # never more than one divisor above


@pytest.mark.parametrize("value", [0, -1, -8.0, math.nan, math.inf, True, "8", None])
def test_bad_value_raises(value):
    with pytest.raises(ValueError, match="value"):
        make_divisible(value)


@pytest.mark.parametrize("divisor", [0, -8, 2.5, True, "8"])
def test_bad_divisor_raises(divisor):
    with pytest.raises(ValueError, match="divisor"):
        make_divisible(32, divisor)


@pytest.mark.parametrize("min_value", [0, -1, 1.5, False])
def test_bad_min_value_raises(min_value):
    with pytest.raises(ValueError, match="min_value"):
        make_divisible(32, 8, min_value)
