"""One module per ``t2mbench`` subcommand; each defines ``register(subparsers)``."""
