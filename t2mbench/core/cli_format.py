"""What every ``t2mbench`` subcommand shares without importing the CLI: the help format and
the exit code of a user mistake."""

from __future__ import annotations

import argparse
import math
import typing

EXIT_USER_ERROR = 2


class HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """Keeps the examples in epilogs as written and shows defaults."""


class Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line on stderr and exit code 2, like every
    other user mistake (argparse prints the whole usage block first); ``--help`` shows the usage."""

    def error(self, message: str) -> typing.NoReturn:
        self.exit(EXIT_USER_ERROR, f"{self.prog}: error: {message}; see --help\n")


# Checked types for numeric options: a bad value is a usage error (one line, exit 2) while the
# arguments are parsed, before any work; ``tests/test_cli_errors.py`` checks that no option of
# any subcommand takes a bare ``int`` or ``float``.
def integer(minimum: int) -> typing.Callable[[str], int]:
    """An argparse type: an integer >= ``minimum``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < minimum:
            raise argparse.ArgumentTypeError(f"must be an integer >= {minimum}, got {text!r}")
        return value

    parse.__name__ = f"integer >= {minimum}"
    return parse


def number(*, minimum: float | None = None, above: float | None = None) -> typing.Callable[[str], float]:
    """An argparse type: a finite number >= ``minimum`` or > ``above`` (unbounded when neither)."""
    bound = f" >= {minimum:g}" if minimum is not None else f" > {above:g}" if above is not None else ""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        ok = math.isfinite(value) and (minimum is None or value >= minimum) and (above is None or value > above)
        if not ok:
            raise argparse.ArgumentTypeError(f"must be a finite number{bound}, got {text!r}")
        return value

    parse.__name__ = f"number{bound}"
    return parse


def device(text: str) -> str:
    """An argparse type: a torch device this torch can use (:func:`t2mbench.core.devices.resolve_device`)."""
    from t2mbench.core.devices import resolve_device
    from t2mbench.core.errors import ConfigError

    try:
        resolve_device(text)
    except ConfigError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return text


COUNT = integer(1)  # clips, steps, batch, workers, repeats, trials, resamples
SEED = integer(0)
POSITIVE = number(above=0.0)  # seconds, sigmas
NONNEGATIVE = number(minimum=0.0)  # CFG scales, tolerances, an offset in seconds


def output_file(text: str) -> str:
    """An argparse type: a file written at the end of the run, checked to be writable now
    (:func:`t2mbench.core.files.check_output_file`), so a bad path fails before any work."""
    from t2mbench.core.files import check_output_file

    try:
        check_output_file(text)
    except OSError as e:
        raise argparse.ArgumentTypeError(f"cannot write {text}: {e.strerror or e} ({e.filename})") from None
    return text
