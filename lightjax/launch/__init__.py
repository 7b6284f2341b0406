"""Launching lightjax commands on many hosts (Cloud TPU VM slices).

- :mod:`tpu`: the gcloud commands (copy a wheel, install, run with ``--distributed``, stop) as
  argv lists, one per worker; ``lightjax launch-tpu --dry-run`` prints them;
- :mod:`parallel`: runs commands together, each one's output streamed into its own log file.
"""
