"""``t2mbench gate``: fail a change that makes quality worse, with a controlled false-alarm rate.

Compares the current run with the baseline per metric (paired by prompt; FD by paired
half-sampling of prompts), adjusts the p-values for all metrics together (Holm) and exits 0 (no
regression), 1 (a regression) or 2 (a usage error). ``t2mbench gate calibrate`` measures the
false-alarm rate and power of these tests (docs/gate_calibration.md).
"""

from __future__ import annotations

import argparse
import sys

from t2mbench.core.cli_format import COUNT, POSITIVE, SEED, output_file
from t2mbench.core.errors import ConfigError

EPILOG = """\
A and B are result tables (.parquet/.csv in the result schema) or folders holding one: a sweep
folder, a cell folder (cells/<key>), a scoring folder. RULES is a .json or .toml file (see
t2mbench.bench.gates.rules); without it each metric's registry direction, margin 0 and
alpha 0.05 apply, family-wise over all metrics (Holm). The Markdown report goes to stdout (and
--markdown), the JSON report to --json.

examples:
  t2mbench gate --baseline runs/main/cells/ddim-50-9c1e0a7d2b11 --current runs/pr/cells/ddim-50-9c1e0a7d2b11
  t2mbench gate --baseline runs/main --current runs/pr --rules gate.toml --markdown gate.md --json gate.json
  t2mbench gate calibrate --pool runs/gate-pool --build --latency --out calibration.json
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    from t2mbench.core.cli_format import HelpFormatter

    parser = subparsers.add_parser(
        "gate",
        help="regression gate: exit 1 when the current run is worse than the baseline (family-wise)",
        description=__doc__,
        formatter_class=HelpFormatter,
        epilog=EPILOG,
    )
    parser.add_argument("action", nargs="?", choices=["calibrate"], help="calibrate: measure false alarms and power")
    parser.add_argument("--baseline", metavar="A", help="baseline result folder or table")
    parser.add_argument("--current", metavar="B", help="current result folder or table")
    parser.add_argument("--rules", metavar="RULES", help="rules file (.json or .toml)")
    parser.add_argument("--markdown", metavar="PATH", type=output_file, help="also write the Markdown report here")
    parser.add_argument("--json", metavar="PATH", type=output_file, help="write the JSON report here")
    parser.add_argument("--seed", type=SEED, default=0, help="seed of the bootstrap and permutation draws")
    parser.add_argument("--pool", metavar="DIR", help="calibrate: the pool folder (seed<s>/ sweeps of the tiny model)")
    parser.add_argument("--build", action="store_true", help="calibrate: generate and score the pool first (resumable)")
    parser.add_argument("--seeds", default="1,1001,2001,3001", help="calibrate --build: generation seeds")
    parser.add_argument("--clips", type=COUNT, default=16, help="calibrate --build: prompts (the demo's default)")
    parser.add_argument("--seconds", type=POSITIVE, default=10.0, help="calibrate --build: seconds per clip")
    parser.add_argument("--trials", type=COUNT, default=200, help="calibrate: self-comparisons (false alarms)")
    parser.add_argument("--power-trials", type=COUNT, default=100, help="calibrate: trials per known regression")
    parser.add_argument("--clip-counts", default="", help="calibrate: also measure at these prompt counts (e.g. 16,32)")
    parser.add_argument("--grid", default="0.5,1,1.5,2,3", help="calibrate: shifts k (in sd) for the 80%% search")
    parser.add_argument("--grid-trials", type=COUNT, default=20, help="calibrate: trials per shift")
    parser.add_argument("--latency", action="store_true", help="calibrate: also run the latency trials")
    parser.add_argument("--latency-trials", type=COUNT, default=20, help="calibrate: latency trials of each kind")
    parser.add_argument("--latency-clock", default="cpu", choices=("cpu", "wall"),
                        help="calibrate: time with process CPU time (steady on a shared machine) or wall time")
    parser.add_argument("--overwrite", action="store_true",
                        help="calibrate --build: take over a --pool folder another command or other settings own")
    parser.add_argument("--out", metavar="PATH", type=output_file, help="calibrate: write the figures (JSON) here")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.action == "calibrate":
        from t2mbench.bench.gates.calibrate import run_calibration

        if not (args.build and args.pool):
            return run_calibration(args)
        from t2mbench.core.ownership import owning

        with owning(args.pool, "gate calibrate", {"clips": args.clips}, overwrite=args.overwrite,
                    option="--pool"):  # seeds add to it
            return run_calibration(args)
    from t2mbench.bench.gates import gate, load_rules
    from t2mbench.core.files import write_bytes_atomic, write_json

    missing = [flag for flag, v in (("--baseline", args.baseline), ("--current", args.current)) if not v]
    if missing:
        raise ConfigError(f"gate needs {' and '.join(missing)}")
    result = gate(args.baseline, args.current, load_rules(args.rules), seed=args.seed)
    text = result.markdown()
    sys.stdout.write(text)
    if args.markdown:
        write_bytes_atomic(args.markdown, text.encode())
    if args.json:
        write_json(args.json, result.to_json())
    return result.exit_code
