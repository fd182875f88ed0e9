"""``t2mbench leaderboard``: boards from result tables, and board folders with pinned protocols.

Actions: ``render`` (a board from result tables), ``validate`` (a submission against the schema
and, with ``--board``, the board's protocol), ``from-sweep`` (submissions from a sweep or demo
folder), ``init`` (a board folder pinning a submission's protocol), ``add`` (submissions into a
board; idempotent, never rewrites another, changes nothing when refused) and ``build`` (the
board's Markdown, LaTeX, ranking JSON and static site; idempotent)."""

from __future__ import annotations

import argparse
from pathlib import Path

from t2mbench.core.cli_format import HelpFormatter, output_file

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
    r.add_argument("--out", type=output_file, help="write the board here instead of printing it")
    r.set_defaults(func=render)

    v = actions.add_parser("validate", help="check a submission, naming every problem by JSON path",
                           description="Check a submission manifest (file or folder) against the submission "
                           "schema and its scores file; with --board, against the board's pinned protocol too.",
                           formatter_class=HelpFormatter,
                           epilog="example:\n  t2mbench leaderboard validate sub/submission.json "
                           "--board leaderboards/boards/tiny")
    v.add_argument("file", metavar="FILE", help="submission.json, or a folder holding it")
    v.add_argument("--board", help="a board folder whose protocol the submission must match")
    v.set_defaults(func=validate)

    f = actions.add_parser("from-sweep", help="submissions from a sweep or demo folder",
                           description="Write one submission folder per scored cell of a sweep/demo folder.",
                           formatter_class=HelpFormatter,
                           epilog="example:\n  t2mbench leaderboard from-sweep runs/demo --out runs/submissions "
                           "--eval-set 't2mbench corpus test split, 16 clips'")
    f.add_argument("sweep", metavar="SWEEP", help="a folder with cells/<key>/ (t2mbench demo or sweep output)")
    f.add_argument("--out", required=True, help="one folder per cell is written here")
    f.add_argument("--eval-set", required=True, help="the evaluation set's name, recorded in the protocol")
    f.add_argument("--loudness", default=None, help="the loudness handling, recorded in the protocol")
    f.add_argument("--overwrite", action="store_true", help="take over a folder another command or other settings own")
    f.set_defaults(func=from_sweep)

    i = actions.add_parser("init", help="a board folder pinning one submission's protocol",
                           description="Create BOARD/board.json with the protocol of a valid submission.",
                           formatter_class=HelpFormatter,
                           epilog="example:\n  t2mbench leaderboard init boards/tiny --from runs/submissions/ddim-10 "
                           "--title 'tiny model: sampler x steps'")
    i.add_argument("board", metavar="BOARD")
    i.add_argument("--from", dest="source", required=True, help="a submission whose protocol the board pins")
    i.add_argument("--title", required=True)
    i.add_argument("--quality-metric", help="the Pareto plot's quality axis (default: the first metric)")
    i.set_defaults(func=init)

    a = actions.add_parser("add", help="add submissions to a board (idempotent)",
                           description="Add submissions to a board. Each is checked first; a malformed one or "
                           "one with another protocol is refused and nothing is written.",
                           formatter_class=HelpFormatter,
                           epilog="example:\n  t2mbench leaderboard add boards/tiny runs/submissions/*")
    a.add_argument("board", metavar="BOARD")
    a.add_argument("submissions", nargs="+", metavar="SUBMISSION")
    a.set_defaults(func=add)

    b = actions.add_parser("build", help="build a board's tables and static site (idempotent)",
                           description="Rank the board's submissions and write board.md, board.tex, ranking.json "
                           "and site/ (open site/index.html, no server needed).",
                           formatter_class=HelpFormatter,
                           epilog="example:\n  t2mbench leaderboard build leaderboards/boards/tiny-sampler-steps")
    b.add_argument("board", metavar="BOARD")
    b.add_argument("--out", help="output folder (default BOARD/rendered)")
    b.add_argument("--overwrite", action="store_true", help="take over a folder another command owns")
    b.set_defaults(func=build)


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


def validate(args: argparse.Namespace) -> int:
    from t2mbench.leaderboards import store, submission

    path = submission.manifest_path(args.file)
    if not path.is_file():
        raise submission.ConfigError(f"{path}: no such submission file")
    found = submission.check(path)
    if not found and args.board:
        doc = submission.load(path)
        found = submission.protocol_differences(store.read_board(args.board)["protocol"], doc["protocol"])
    if found:
        raise submission.SubmissionError(str(path), found)
    print(f"{path}: valid" + (f", protocol matches {args.board}" if args.board else ""))
    return 0


def from_sweep(args: argparse.Namespace) -> int:
    from t2mbench.core.errors import ConfigError
    from t2mbench.leaderboards import submission

    cells = sorted(p for p in (Path(args.sweep) / "cells").glob("*") if (p / "results.csv").is_file())
    if not cells:
        raise ConfigError(f"{args.sweep}: no scored cells (cells/<key>/results.csv)")
    from t2mbench.core.ownership import owning

    kw = {} if args.loudness is None else {"loudness": args.loudness}
    defining = {"sweep": args.sweep, "eval_set": args.eval_set, "loudness": args.loudness}
    with owning(args.out, "leaderboard from-sweep", defining, overwrite=args.overwrite):
        for cell in cells:
            path = submission.from_cell(cell, Path(args.out) / cell.name, eval_set=args.eval_set, **kw)
            print(f"wrote {path}")
    return 0


def init(args: argparse.Namespace) -> int:
    from t2mbench.leaderboards import store

    print(f"wrote {store.init(args.board, args.source, title=args.title, quality_metric=args.quality_metric)}")
    return 0


def add(args: argparse.Namespace) -> int:
    from t2mbench.leaderboards import store, submission

    pinned = store.read_board(args.board)["protocol"]
    for path in args.submissions:  # check all before writing any: one bad submission adds none
        diffs = submission.protocol_differences(pinned, submission.load(path)["protocol"])
        if diffs:
            raise submission.SubmissionError(f"{submission.manifest_path(path)}: refused, its protocol differs "
                                             "from the board's", diffs)  # fmt: skip
    for path in args.submissions:
        sid, status = store.add(args.board, path)
        print(f"{status}: {sid}")
    return 0


def build(args: argparse.Namespace) -> int:
    from t2mbench.core.ownership import owning
    from t2mbench.leaderboards import store

    store.read_board(args.board)  # a missing or malformed board is found before its folder is claimed
    out = args.out if args.out is not None else Path(args.board) / "rendered"
    with owning(out, "leaderboard build", {}, overwrite=args.overwrite):  # the same board always gives the same bytes
        written = store.build(args.board, out)
    print(f"built {len(written)} files in {Path(written[0]).parent}")
    return 0
