"""Binarization: quantizers with straight-through estimators, binary layers by rules,
partial-ratio selections, schedules, packed-bit inference."""
