"""``python -m lightjax`` runs the command line."""
import sys

from lightjax.cli import main

sys.exit(main())
