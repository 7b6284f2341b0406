"""Training: ``optimizer`` (optax + schedules), ``step`` (jitted steps), ``checkpoint`` (orbax),
``config`` (configs/*.py + overrides), ``run`` (train/resume/evaluate a workdir)."""
