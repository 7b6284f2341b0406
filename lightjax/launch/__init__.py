"""Launching lightjax commands on many hosts (Cloud TPU VM slices)."""
