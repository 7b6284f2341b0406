"""One module per ``lightjax`` sub-command: ``add_parser(subparsers)`` and a ``run(args)``.

Help texts shared by the commands (the parsers keep line breaks in descriptions and epilogs):

- :func:`config_help`: the ``--config NAME|FILE.py[:ARG]`` forms, the bundled configs by name and
  the ``--config.SECTION.FIELD=VALUE`` override syntax (commands that take a config);
- :func:`sweep_help`: the ``NAME|FILE.py[:ARG]`` forms and the bundled sweeps by name.

Both list what :func:`lightjax.train.config.bundled_names` and
:func:`lightjax.sweep.spec.bundled_names` find, so an installed lightjax shows its own files.
"""
from __future__ import annotations

#: An override example used in help texts and error messages.
OVERRIDE_EXAMPLE = "--config.train.epochs=10 --config.model.alpha=0.5"


def _names(names: tuple[str, ...]) -> str:
    return ", ".join(names) if names else "(none found: is lightjax installed?)"


def config_names() -> str:
    """The bundled configs, comma-separated (for ``--config`` help strings)."""
    from lightjax.train import config as config_lib

    return _names(config_lib.bundled_names())


def sweep_names() -> str:
    """The bundled sweeps, comma-separated (for the ``sweep`` argument's help string)."""
    from lightjax.sweep import spec

    return _names(spec.bundled_names())


def config_help() -> str:
    """Epilog for commands that take ``--config`` and overrides."""
    return (
        "configs:\n"
        "  --config NAME[:ARG]       a bundled config, or ./configs/NAME.py if it exists\n"
        "  --config FILE.py[:ARG]    any file defining get_config(arg)\n"
        f"  bundled: {config_names()}\n"
        "overrides (any config field, values as Python literals):\n"
        "  --config.SECTION.FIELD=VALUE, e.g. --config.train.epochs=10 "
        "--config.model.alpha=0.5\n"
        "  --config.train.decay_epochs='(30,60)' --config.model.activation=relu_hswish")


def sweep_help() -> str:
    """Epilog for the ``sweep`` command."""
    return (
        "sweeps:\n"
        "  NAME[:ARG]                a bundled sweep, or ./sweeps/NAME.py if it exists\n"
        "  FILE.py[:ARG]             any file defining get_sweep(arg)\n"
        f"  bundled: {sweep_names()}\n"
        "  a sweep's base is a config (a bundled NAME[:ARG] or FILE.py[:ARG]) or a trained run\n"
        "  directory; its members override config fields. Each file's docstring lists its ARGs.")
