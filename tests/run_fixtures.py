"""Run directories for tests without training: checkpoint 0 holds a config's initial state
(written with the functions training uses). Importable from any test module."""
from lightjax.train import checkpoint, config as config_lib
from lightjax.train import run as run_lib
from lightjax.train.experiment import Experiment


def write_run(workdir, cfg, make_state=None):
    """A run directory of ``cfg`` whose checkpoint 0 holds ``make_state(exp)`` (default: the
    config's initial state): ``(exp, state)``."""
    exp = Experiment(cfg)
    run_lib.claim(cfg, str(workdir))
    state = exp.init_state() if make_state is None else make_state(exp)
    ckpt = checkpoint.Checkpoints(str(workdir))
    try:
        ckpt.save(0, state)
        ckpt.wait()
    finally:
        ckpt.close()
    return exp, state


def initial_run(workdir, config, overrides=()):
    """A run directory whose checkpoint 0 is the config's initial state: ``(exp, state)``."""
    return write_run(workdir, config_lib.override(config_lib.load(config), list(overrides)))
