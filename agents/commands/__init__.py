"""One module per ``melody-rl`` subcommand; each exposes ``add_parser(subparsers)``."""
