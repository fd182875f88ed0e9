"""``t2mbench metrics``: metric tools; ``metrics parity`` compares an embedder with its upstream package."""

from __future__ import annotations

import argparse

from t2mbench.core.cli_format import NONNEGATIVE
from t2mbench.metrics.upstream.parity import UPSTREAMS, run_parity

PARITY_EPILOG = """\
The upstream package runs in a subprocess under --upstream-python (a python that has it) through
tools/upstream/<runner> of a source checkout (python RUNNER --weights W --in in.npz --out out.npz). Files are
peak-normalised to -1 dBFS; both sides get the same audio and the same weight file.

examples:
  t2mbench metrics parity --embedder passt --upstream-python ~/envs/passt/bin/python a.wav b.wav
  t2mbench metrics parity --embedder passt --checkpoint seeded.pt --no-verify a.wav b.wav
  t2mbench metrics parity --embedder openl3 --upstream-python ~/envs/tf213/bin/python \
      --runner-arg=--openl3-src=openl3-0.4.2 a.wav b.wav c.wav d.wav
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    from t2mbench.core.cli_format import HelpFormatter

    parser = subparsers.add_parser(
        "metrics",
        help="metric tools (parity with the upstream packages)",
        description=__doc__,
        formatter_class=HelpFormatter,
        epilog="example:\n  t2mbench metrics parity --embedder passt a.wav b.wav",
    )
    sub = parser.add_subparsers(dest="metrics_command", metavar="TOOL", required=True)
    parity = sub.add_parser(
        "parity",
        help="compare an embedder (and its metric) with the upstream package on the same audio and weights",
        description="Embed AUDIO files with t2mbench and with the upstream package; print the differences.",
        formatter_class=HelpFormatter,
        epilog=PARITY_EPILOG,
    )
    parity.add_argument("--embedder", required=True, choices=sorted(UPSTREAMS))
    parity.add_argument("--checkpoint", help="weight file in the upstream layout; unset: the registered file")
    parity.add_argument(
        "--no-verify", action="store_true", help="load a checkpoint whose sha256 is not the published one"
    )
    parity.add_argument("--upstream-python", help="python with the upstream package; unset: this python")
    parity.add_argument("--runner", help="runner script; unset: the embedder's in the checkout's tools/upstream/")
    parity.add_argument(
        "--runner-arg", action="append", default=[], metavar="FLAG",
        help="extra flag for the runner, e.g. --runner-arg=--openl3-src=DIR (repeatable)",
    )  # fmt: skip
    parity.add_argument("--text", action="append", help="caption of each file, in order (CLAP score)")
    parity.add_argument(
        "--tolerance", type=NONNEGATIVE, default=1e-4,
        help="fail (exit 1) when max abs difference / max abs upstream value exceeds this",
    )  # fmt: skip
    parity.add_argument("audio", nargs="+", metavar="AUDIO")
    parity.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    report = run_parity(
        args.embedder,
        args.audio,
        checkpoint=args.checkpoint,
        verify=not args.no_verify,
        upstream_python=args.upstream_python,
        runner=args.runner,
        runner_args=args.runner_arg,
        texts=args.text,
    )
    which = "the published file" if report.published else "not the published file"
    print(f"parity of t2mbench {report.embedder} with {report.runner} under {report.python}")
    print(f"weights: {report.weights} (sha256 {report.weights_sha256[:12]}..., {which})")
    width = max(len(f) for f in report.files)
    for name, diff in zip(report.files, report.per_file_max_abs):
        print(f"  {name:<{width}}  max abs difference {diff:.2e}")
    print(
        f"embeddings: max abs difference {report.max_abs:.2e} (max abs upstream value {report.max_abs_upstream:.4g}, "
        f"relative {report.relative:.2e})"
    )
    if report.metric_note:
        print(f"{report.metric}: not computed: {report.metric_note}")
    else:
        diff = abs(report.metric_ours - report.metric_upstream)
        print(
            f"{report.metric}: ours {report.metric_ours:.6f}, upstream {report.metric_upstream:.6f}, "
            f"abs difference {diff:.2e}"
        )
    if report.relative > args.tolerance:
        print(f"parity FAILED: relative difference {report.relative:.2e} exceeds --tolerance {args.tolerance:g}")
        return 1
    print(f"parity OK within relative {args.tolerance:g}")
    return 0
