"""The leaderboard and listening-test subcommands; each module defines ``register(subparsers)``."""
