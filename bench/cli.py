"""The ``t2mbench`` command line.

Every module in :mod:`bench.commands` defines ``register(subparsers)``, which adds one
subcommand whose parser sets ``func`` to a callable taking the parsed arguments. User
mistakes (:class:`t2mbench.errors.T2MBenchError`) become one line on stderr and exit code 2,
never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from collections.abc import Sequence

import bench.commands
from t2mbench import __version__
from t2mbench.allocator import tune_allocator
from t2mbench.errors import T2MBenchError

EXIT_USER_ERROR = 2


class HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """Keeps the examples in epilogs as written and shows defaults."""


def build_parser() -> argparse.ArgumentParser:
    """The full parser, with one subcommand per module of :mod:`bench.commands`."""
    parser = argparse.ArgumentParser(
        prog="t2mbench",
        description="Evaluation and benchmarking for diffusion text-to-music generation.",
        formatter_class=HelpFormatter,
        epilog="example:\n  t2mbench corpus build --out corpus --clips 64 --seconds 10 --seed 0",
    )
    parser.add_argument("--version", action="version", version=f"t2mbench {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for info in sorted(pkgutil.iter_modules(bench.commands.__path__), key=lambda m: m.name):
        importlib.import_module(f"bench.commands.{info.name}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the process exit code."""
    args = build_parser().parse_args(argv)
    tune_allocator()
    try:
        result = args.func(args)
    except T2MBenchError as e:
        print(f"t2mbench {args.command}: error: {e}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print(f"t2mbench {args.command}: interrupted", file=sys.stderr)
        return 130
    return int(result or 0)
