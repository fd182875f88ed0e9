"""``t2mbench listen``: blinded listening tests (A/B and MOS) as a static page, and their analysis."""

from __future__ import annotations

import argparse
from pathlib import Path

from t2mbench.core.cli_format import COUNT, NONNEGATIVE, SEED, HelpFormatter, output_file

MAKE_EXAMPLE = """example:
  t2mbench listen make runs/demo/cells/ddim-10-* runs/demo/cells/ddpm-10-* --out listening --clips 4

RUN: a folder of generated clips with a manifest (a sweep cell, a generate run). Writes
OUT/page/ (open OUT/page/index.html from disk; send the folder to listeners) and OUT/key.json
(which system is behind each blinded item: keep it to yourself)."""
ANALYZE_EXAMPLE = """example:
  t2mbench listen analyze answers/*.json --key listening/key.json --out listening/results.json \\
      --board leaderboards/boards/tiny-sampler-steps

Listeners who fail an attention check are excluded and listed. With --board the results are
copied to BOARD/listening/ and appear as their own columns at the next build."""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("listen", help="listening tests: make a page, analyze answers", description=__doc__,
                       formatter_class=HelpFormatter, epilog=MAKE_EXAMPLE)  # fmt: skip
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    m = actions.add_parser("make", help="write a blinded A/B + MOS page over two or more runs",
                           description="Write a self-contained listening-test page.", formatter_class=HelpFormatter,
                           epilog=MAKE_EXAMPLE)  # fmt: skip
    m.add_argument("runs", nargs="+", metavar="RUN")
    m.add_argument("--out", required=True)
    m.add_argument("--names", help="comma-separated system names, one per run (default: from cell.json or folder)")
    m.add_argument("--clips", type=COUNT, default=4, help="prompts in the test")
    m.add_argument("--seconds", type=NONNEGATIVE, default=10.0, help="clip length played (0: whole clip)")
    m.add_argument("--seed", type=SEED, default=0, help="the order, sides and audio names")
    m.add_argument("--title", default="Listening test")
    m.add_argument("--overwrite", action="store_true", help="take over a folder another command or other settings own")
    m.set_defaults(func=make)
    a = actions.add_parser("analyze", help="MOS and Bradley-Terry scores from answer files",
                           description="Analyze listening-test answers.", formatter_class=HelpFormatter,
                           epilog=ANALYZE_EXAMPLE)  # fmt: skip
    a.add_argument("answers", nargs="+", metavar="ANSWERS")
    a.add_argument("--key", required=True, help="the key.json written by listen make")
    a.add_argument("--min-votes", type=COUNT, default=30, help="votes a system needs for a Bradley-Terry score")
    a.add_argument("--resamples", type=COUNT, default=1000)
    a.add_argument("--out", type=output_file, help="write the results JSON here")
    a.add_argument("--board", help="also store the results in this board folder's listening/")
    a.set_defaults(func=analyze)


def make(args: argparse.Namespace) -> int:
    from t2mbench.core.ownership import owning
    from t2mbench.leaderboards.listening import make as make_page

    names = args.names.split(",") if args.names else None
    defining = {k: getattr(args, k) for k in ("runs", "names", "clips", "seconds", "seed", "title")}
    with owning(args.out, "listen make", defining, overwrite=args.overwrite):
        index = make_page(args.runs, args.out, names=names, clips=args.clips, seconds=args.seconds or None,
                          seed=args.seed, title=args.title)  # fmt: skip
    print(f"wrote {index} and {Path(args.out) / 'key.json'}")
    return 0


def analyze(args: argparse.Namespace) -> int:
    from t2mbench.core.files import write_json
    from t2mbench.leaderboards.listening import analyze as run

    result = run(args.answers, args.key, min_votes=args.min_votes, resamples=args.resamples)
    print(f"{len(result['listeners'])} listeners kept, {len(result['excluded'])} excluded, {result['votes']} votes")
    for e in result["excluded"]:
        print(f"  excluded {e['listener']} ({e['file']}): {'; '.join(e['reasons'])}")
    for col in result["columns"]:
        for name, c in col["systems"].items():
            print(f"  {col['label']}: {name}: {c['value']:.3g} [{c['ci_low']:.3g}, {c['ci_high']:.3g}]")
    for name, n in result["below_min_votes"].items():
        print(f"  {name}: {n} votes, below --min-votes {args.min_votes}: no Bradley-Terry score")
    if args.out:
        write_json(args.out, result)
    if args.board:
        write_json(Path(args.board) / "listening" / f"{result['page_id']}.json", result)
    return 0
