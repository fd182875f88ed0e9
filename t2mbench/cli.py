"""The ``t2mbench`` command line: the top of the stack.

Subcommands come from three places, each a module that defines ``register(subparsers)`` (adds
one subcommand whose parser sets ``func`` to a callable taking the parsed arguments):

- every module of :mod:`t2mbench.bench.commands` (corpus, generate, score, train, ...);
- every module of :mod:`t2mbench.leaderboards.commands` (boards, listening tests);
- the entry points of group ``t2mbench.commands`` (third-party plugins).

This module sits above both packages, so neither imports the CLI and the arrows keep pointing
down. User mistakes (:class:`t2mbench.core.errors.T2MBenchError`) and file-system errors become
one line on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from collections.abc import Iterator, Sequence
from types import ModuleType

from t2mbench import __version__
from t2mbench.core.allocator import tune_allocator
from t2mbench.core.cli_format import EXIT_USER_ERROR, HelpFormatter, Parser
from t2mbench.core.errors import T2MBenchError
from t2mbench.core.plugins import entry_points
from t2mbench.core.threads import configure as configure_threads
from t2mbench.core.threads import prepare_environment

COMMAND_PACKAGES = ("t2mbench.bench.commands", "t2mbench.leaderboards.commands")
COMMAND_GROUP = "t2mbench.commands"


def command_modules() -> Iterator[ModuleType]:
    """The modules that register subcommands: the built-in packages', then the plugins'."""
    for package_name in COMMAND_PACKAGES:
        package = importlib.import_module(package_name)
        for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
            yield importlib.import_module(f"{package_name}.{info.name}")
    for ep in entry_points(COMMAND_GROUP):
        yield ep.load()


def build_parser() -> argparse.ArgumentParser:
    """The full parser, with one subcommand per command module."""
    parser = Parser(
        prog="t2mbench",
        description="Evaluation and benchmarking for diffusion text-to-music generation.",
        formatter_class=HelpFormatter,
        epilog="example:\n  t2mbench corpus build --out corpus --clips 64 --seconds 10 --seed 0",
    )
    parser.add_argument("--version", action="version", version=f"t2mbench {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in command_modules():
        module.register(sub)
    return parser


def one_line(message: str) -> str:
    """A message on one line: the CLI's promise is one stderr line per error."""
    return " ".join(part.strip() for part in message.splitlines() if part.strip())


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the process exit code."""
    prepare_environment()  # before the command modules import torch and numpy
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as e:  # a usage error (one line already printed) is returned; --help still exits
        if e.code in (0, None):
            raise
        return e.code if isinstance(e.code, int) else EXIT_USER_ERROR
    tune_allocator()
    configure_threads(getattr(args, "threads", None))
    try:
        result = args.func(args)
    except T2MBenchError as e:
        print(f"t2mbench {args.command}: error: {one_line(str(e))}", file=sys.stderr)
        return EXIT_USER_ERROR
    except OSError as e:
        where = f": {e.filename}" if e.filename else ""
        print(f"t2mbench {args.command}: error: {one_line(str(e.strerror or e))}{where}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print(f"t2mbench {args.command}: interrupted", file=sys.stderr)
        return 130
    return int(result or 0)
