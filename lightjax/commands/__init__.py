"""One module per ``lightjax`` sub-command: ``add_parser(subparsers)`` and a ``run(args)``."""
