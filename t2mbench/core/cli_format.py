"""What every ``t2mbench`` subcommand shares without importing the CLI: the help format and
the exit code of a user mistake."""

from __future__ import annotations

import argparse
import typing

EXIT_USER_ERROR = 2


class HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """Keeps the examples in epilogs as written and shows defaults."""


class Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line on stderr and exit code 2, like every
    other user mistake (argparse prints the whole usage block first); ``--help`` shows the usage."""

    def error(self, message: str) -> typing.NoReturn:
        self.exit(EXIT_USER_ERROR, f"{self.prog}: error: {message}; see --help\n")
