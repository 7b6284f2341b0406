"""Run directories for tests without training: checkpoint 0 holds a config's initial state
(written with the functions training uses). Importable from any test module."""
from lightjax.train import checkpoint, config as config_lib
from lightjax.train import run as run_lib
from lightjax.train.experiment import Experiment


def initial_run(workdir, config, overrides=()):
    """A run directory whose checkpoint 0 is the config's initial state: ``(exp, state)``."""
    cfg = config_lib.override(config_lib.load(config), list(overrides))
    exp = Experiment(cfg)
    run_lib.claim(cfg, str(workdir))
    state = exp.init_state()
    ckpt = checkpoint.Checkpoints(str(workdir))
    try:
        ckpt.save(0, state)
        ckpt.wait()
    finally:
        ckpt.close()
    return exp, state
