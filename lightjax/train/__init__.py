"""Training, one engine for every task.

- ``experiment``: :class:`~lightjax.train.experiment.Experiment` — dataset, task, model,
  compression plug-ins, optimizer, mesh and jitted steps from a config, checked up front;
- ``loop``: THE training loop (epochs, host actions, evaluation, checkpoints, divergence,
  metrics log, SIGINT/SIGTERM) used by runs, pruning fine-tuning and sweep groups;
- ``step``: train state and the pure train / eval steps; ``compression``: the plug-in interface;
- ``run``: train/resume/evaluate a workdir; ``checkpoint`` (orbax), ``metrics_log``,
  ``interrupts``, ``workdir`` (claim and lock), ``config`` (configs + overrides), ``validate``,
  ``optimizer`` (optax + schedules), ``defaults``.
"""
