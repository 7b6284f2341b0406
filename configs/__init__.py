"""Run configs bundled with lightjax (installed as ``lightjax.configs``).

Each ``NAME.py`` defines ``get_config(arg=None)`` and runs as ``lightjax train --config NAME[:ARG]``
from any directory; copy one into ``./configs/`` (which wins over the bundled one) or anywhere
(``--config path/to/FILE.py[:ARG]``) to change it.
"""
