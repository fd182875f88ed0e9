"""``t2mbench leaderboard``: boards from result tables."""

from __future__ import annotations

import argparse
from pathlib import Path

from t2mbench.core.cli_format import HelpFormatter

EXAMPLE = """example:
  t2mbench leaderboard render runs/demo --metrics fd_evaluator,clap_evaluator
  t2mbench leaderboard render runs/a/scores.parquet runs/b --renderer markdown --out board.md

RESULTS: result tables (.parquet or .csv) or folders holding results.parquet (a sweep or a
cell) or scores.parquet (a scoring run). Prints the board, or writes it to --out."""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("leaderboard", help="boards from result tables", description=__doc__,
                       formatter_class=HelpFormatter, epilog=EXAMPLE)  # fmt: skip
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    r = actions.add_parser("render", help="render a board", description="Render a board from result tables.",
                           formatter_class=HelpFormatter, epilog=EXAMPLE)  # fmt: skip
    r.add_argument("results", nargs="+", metavar="RESULTS", help="result tables or folders")
    r.add_argument("--metrics", help="comma-separated metrics, in board order (default: every aggregate)")
    r.add_argument("--renderer", default="markdown", help="a registered renderer")
    r.add_argument("--out", help="write the board here instead of printing it")
    r.set_defaults(func=render)


def render(args: argparse.Namespace) -> int:
    from t2mbench.core.files import atomic_path
    from t2mbench.leaderboards.board import board, read_results
    from t2mbench.leaderboards.renderers import get_renderer

    spec = get_renderer(args.renderer)
    metrics = [m for m in (args.metrics or "").split(",") if m] or None
    text = spec.load()(board([read_results(p) for p in args.results], metrics))
    if args.out is None:
        print(text, end="")
        return 0
    with atomic_path(Path(args.out)) as tmp:
        tmp.write_text(text, encoding="utf-8")
    print(f"wrote {args.out}")
    return 0
