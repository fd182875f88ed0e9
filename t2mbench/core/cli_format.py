"""What every ``t2mbench`` subcommand shares without importing the CLI: the help format and
the exit code of a user mistake."""

from __future__ import annotations

import argparse

EXIT_USER_ERROR = 2


class HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """Keeps the examples in epilogs as written and shows defaults."""
