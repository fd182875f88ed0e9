"""``t2mbench sweep SPEC``: run a grid of cells from a TOML spec into one result table.

Every cell (models x samplers with options x steps x CFG x seeds x clip counts) goes through
the cell runner on the chosen executor; each finished cell's rows are appended once to the
run folder's store, and the table is exported to results.parquet and results.csv. A killed
sweep resumes by default: finished cells are kept, an unfinished one continues from its folder.
"""

from __future__ import annotations

import argparse

from t2mbench.core.cli_format import HelpFormatter
from t2mbench.core.threads import add_threads_option

EXAMPLE = """example:
  t2mbench sweep examples/demo_grid.toml
  t2mbench sweep examples/demo_grid.toml --out runs/grid2 --fresh
  t2mbench sweep grid.toml --executor ray --address auto

Writes <out>/store/parts/<cell>.parquet (one per finished cell, append-only), the export
<out>/results.parquet and results.csv (the result schema), and <out>/cells/<cell>/ (audio,
generation.json with per-stage seconds, scores). The spec's keys: see docs in
t2mbench.bench.sweep_spec or examples/demo_grid.toml."""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "sweep", help="run a grid of cells from a TOML spec", description=__doc__,
        formatter_class=HelpFormatter, epilog=EXAMPLE,
    )  # fmt: skip
    p.add_argument("spec", help="the sweep spec (TOML)")
    p.add_argument("--out", default=None, help="run folder (default: the spec's out)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--resume", dest="fresh", action="store_false", default=False,
                      help="keep finished cells and continue unfinished ones (the default)")  # fmt: skip
    mode.add_argument("--fresh", dest="fresh", action="store_true",
                      help="forget this spec's cells in --out (store parts and cell folders) and run them all")
    p.add_argument("--executor", default=None, help="where cells run (default: the spec's, else local)")
    p.add_argument("--address", default=None, help="the executor's cluster address (ray: auto or ray://HOST:PORT)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--overwrite", action="store_true",
                   help="take over a folder another command or another spec's grid owns (finished cells are kept)")
    add_threads_option(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from t2mbench.bench.sweep_spec import load_spec, run_spec
    from t2mbench.core.errors import ConfigError
    from t2mbench.core.ownership import owning

    spec = load_spec(args.spec, out=args.out)
    options = dict(spec.executor_options)
    if args.address is not None:
        if (args.executor or spec.executor) == "local":
            raise ConfigError("--address needs a cluster executor (--executor ray); local runs here")
        options["address"] = args.address
    # the grid's cells (their keys hash every setting) and scoring define the export; where they run does not
    defining = {"cells": [c.key for c in spec.cells], "scoring": spec.scoring.to_dict(), "device": spec.device}
    with owning(spec.out, "sweep", defining, overwrite=args.overwrite):
        table = run_spec(spec, fresh=args.fresh, progress=not args.no_progress, executor=args.executor,
                         executor_options=options, overwrite=args.overwrite)  # fmt: skip
    cells = table["cell"].nunique()
    print(f"{cells} cells, {len(table)} rows: {spec.out}/results.parquet and {spec.out}/results.csv")
    return 0
