"""Sweeps bundled with lightjax (installed as ``lightjax.sweeps``).

Each ``NAME.py`` defines ``get_sweep(arg=None)`` and runs as ``lightjax sweep NAME[:ARG]`` from any
directory; copy one into ``./sweeps/`` (which wins over the bundled one) or anywhere
(``lightjax sweep path/to/FILE.py[:ARG]``) to change it.
"""
