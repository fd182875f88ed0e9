"""``t2mbench weights list|fetch|verify``: the checkpoint files t2mbench knows, where they go,
and whether the ones on disk are the published files.

The files are those the registries declare: every registered embedder's (built-in and plugin,
:func:`t2mbench.metrics.embedders.embedder_weights`) and the reference models'
(:func:`t2mbench.reference_models.checkpoints.weight_files`)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from t2mbench.core.cli_format import HelpFormatter

if TYPE_CHECKING:
    from t2mbench.core.weights import WeightFile

EXAMPLE = """examples:
  t2mbench weights list
  t2mbench weights fetch passt openl3-mel256-music
  t2mbench weights verify

Files live in $T2MBENCH_HOME/weights/ (default ~/.cache/t2mbench/weights/) under the names
`list` shows; offline, download them elsewhere and copy them there. `fetch` resumes a
partial download and keeps a file only when its sha256 matches the published one."""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "weights", help="list, fetch and verify checkpoint files", description=__doc__, formatter_class=HelpFormatter,
        epilog=EXAMPLE,
    )
    p.add_argument("action", choices=("list", "fetch", "verify"))
    p.add_argument("names", nargs="*", help="weight names (default for verify: every file present; fetch needs names)")
    p.set_defaults(func=run)


def weight_table() -> dict[str, WeightFile]:
    """Every weight file the registries declare, by name (sorted)."""
    from t2mbench.metrics.embedders import embedder_weights
    from t2mbench.reference_models.checkpoints import weight_files

    return {wf.name: wf for wf in sorted([*embedder_weights(), *weight_files()], key=lambda wf: wf.name)}


def run(args: argparse.Namespace) -> int:
    from t2mbench.core import weights as W
    from t2mbench.core.errors import ChecksumError, ConfigError

    table = weight_table()
    unknown = [n for n in args.names if n not in table]
    if unknown:
        raise ConfigError(f"unknown weights {', '.join(unknown)}; `t2mbench weights list` shows the known names")
    if args.action == "list":
        for wf in table.values():
            path = W.default_path(wf)
            state = "bundled" if wf.bundled is not None else ("present" if path.is_file() else "missing")
            sha = wf.sha256[:12] if wf.sha256 else "unpublished"
            print(f"{wf.name:32s} {state:8s} sha256 {sha:12s} {path}")
            print(f"{'':32s} {wf.description}" + (f" [{wf.note}]" if wf.note else ""))
            if wf.url:
                print(f"{'':32s} {wf.url}")
            if wf.licence:
                print(f"{'':32s} licence: {wf.licence}")
        return 0
    if args.action == "fetch":
        if not args.names:
            raise ConfigError("weights fetch needs at least one name (see `t2mbench weights list`)")
        for name in args.names:
            print(f"{name}: {W.fetch(name)}")
        return 0
    names = args.names or [n for n, wf in table.items() if W.default_path(wf).is_file()]
    failed = 0
    for name in names:
        wf = table[name]
        path = W.default_path(wf)
        if not path.is_file():
            print(f"{name}: MISSING {path}")
            failed += 1
            continue
        try:
            digest = W.check(wf, path)
        except ChecksumError as e:
            print(f"{name}: MISMATCH {e}")
            failed += 1
            continue
        verdict = "ok" if wf.sha256 else "present (no published sha256 to check against)"
        print(f"{name}: {verdict} sha256 {digest} {path}")
    return 1 if failed else 0
