"""``t2mbench score``: score a generated clip set against a reference set (see :mod:`t2mbench.metrics.scoring`)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from t2mbench.core.cli_format import SEED
from t2mbench.core.errors import ConfigError
from t2mbench.core.threads import add_threads_option

EPILOG = """\
Writes OUT/scores.parquet and OUT/scores.csv (one row per clip and metric, plus aggregate rows
with bootstrap 95% CIs), OUT/summary.json (values, protocol versions, settings, weights sha256
and whether each is published, cache counts, timings) and OUT/provenance.json. Embeddings are cached under
$T2MBENCH_HOME/cache/embeddings, so re-scoring is cheap and a killed run resumes.

examples:
  t2mbench score --generated runs/gen --reference corpus --metrics stft,mel,sisdr,melody_acc --out runs/scores
  t2mbench score --generated gen/ --reference ref/ --metrics fd_openl3 --set fd_openl3.fad_inf=true --out s/
  t2mbench score --generated gen/ --reference ref/ --preset paper-2026 --skip-missing --out s/
  t2mbench score --list
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    from t2mbench.core.cli_format import HelpFormatter

    parser = subparsers.add_parser(
        "score",
        help="score generated audio against references (FD, KL, CLAP, STFT/mel, SI-SDR, melody)",
        description=__doc__,
        formatter_class=HelpFormatter,
        epilog=EPILOG,
    )
    parser.add_argument("--generated", metavar="DIR_OR_MANIFEST", help="the generated clip set")
    parser.add_argument("--reference", metavar="DIR_OR_MANIFEST", help="the reference clip set (paired by id)")
    parser.add_argument("--metrics", metavar="NAME,...", help="comma-separated metric names (see --list)")
    parser.add_argument("--preset", metavar="NAME", help="a named metric list instead of --metrics (see --list)")
    parser.add_argument("--skip-missing", action="store_true",
                        help="skip, with a warning each, metrics that are not registered or whose weights are absent")
    parser.add_argument("--no-verify", action="store_true",
                        help="load weight files whose sha256 is not the published one (keys and shapes are still "
                             "checked); summary.json marks them unpublished")
    parser.add_argument("--out", metavar="DIR", help="output folder")
    parser.add_argument(
        "--set", action="append", default=[], metavar="METRIC.KEY=VALUE",
        help="a metric setting (VALUE read as JSON when it parses, else as text); repeatable",
    )  # fmt: skip
    parser.add_argument("--system", help="label of the generated system (default: the generated folder's name)")
    parser.add_argument("--run-id", help="label of the run (default: a hash of the inputs and settings)")
    parser.add_argument("--seed", type=SEED, default=0, help="bootstrap seed")
    parser.add_argument("--cache-dir", help="embedding cache folder (default: $T2MBENCH_HOME/cache/embeddings)")
    parser.add_argument("--no-cache", action="store_true", help="do not read or write the embedding cache")
    parser.add_argument("--list", action="store_true", help="list the metric names and exit")
    parser.add_argument("--overwrite", action="store_true", help="take over a folder another command owns")
    add_threads_option(parser)
    parser.set_defaults(func=run)


def parse_settings(items: list[str]) -> dict[str, dict[str, Any]]:
    """``["fd_openl3.ci_resamples=0", ...]`` → ``{"fd_openl3": {"ci_resamples": 0}}``."""
    out: dict[str, dict[str, Any]] = {}
    for item in items:
        name, sep, value = item.partition("=")
        metric, dot, key = name.partition(".")
        if not sep or not dot or not metric or not key:
            raise ConfigError(f"--set {item!r}: expected METRIC.KEY=VALUE, e.g. fd_openl3.ci_resamples=0")
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError:
            parsed = value
        out.setdefault(metric, {})[key] = parsed
    return out


def run(args: argparse.Namespace) -> int:
    import sys

    from t2mbench.metrics.cache import EmbeddingCache
    from t2mbench.metrics.presets import PRESETS, drop_missing_weights, resolve_preset
    from t2mbench.metrics.registry import available
    from t2mbench.metrics.scoring import score

    if args.list:
        names = available()
        width = max(len(n) for n in names)
        for name, description in names.items():
            print(f"{name:<{width}}  {description}")
        for name, members in PRESETS.items():
            print(f"preset {name}: {', '.join(members)}")
        return 0
    if args.preset and args.metrics:
        raise ConfigError("pass --metrics or --preset, not both")
    missing = [flag for flag, v in (("--generated", args.generated), ("--metrics or --preset",
                                                                      args.metrics or args.preset), ("--out", args.out))
               if not v]  # fmt: skip
    if missing:
        raise ConfigError(f"missing {', '.join(missing)} (see t2mbench score --help)")
    from t2mbench.core.ownership import owning
    from t2mbench.metrics.embedding_metric import load_unverified
    from t2mbench.metrics.scoring import build_metrics

    warnings = []
    if args.preset:
        names, unregistered = resolve_preset(args.preset)
        if unregistered and not args.skip_missing:
            raise ConfigError(f"preset {args.preset!r} names metrics this install does not register: "
                              f"{', '.join(unregistered)} (pass --skip-missing to run the others)")
        warnings += [f"skipped {n}: not registered in this install" for n in unregistered]
    else:
        names = [n.strip() for n in args.metrics.split(",") if n.strip()]
    settings = parse_settings(args.set)
    built = build_metrics(names, settings, args.seed)  # a bad name or setting fails before the folder is claimed
    if args.no_verify:
        load_unverified(built)
    built, skipped = drop_missing_weights(built, skip_missing=args.skip_missing)
    for warning in warnings + skipped:
        print(f"warning: {warning}", file=sys.stderr)
    if not built:
        raise ConfigError("no metric left to run: every one was skipped (see the warnings)")
    with owning(args.out, "score", {"generated": args.generated, "reference": args.reference},
                overwrite=args.overwrite):  # fmt: skip
        result = score(
            args.generated,
            args.reference,
            built,  # built with their settings, weights loaded
            args.out,
            system=args.system,
            run_id=args.run_id,
            cache=EmbeddingCache(args.cache_dir) if args.cache_dir else None,
            use_cache=not args.no_cache,
            seed=args.seed,
        )
    for name, m in result.summary["metrics"].items():
        ci = "" if m["ci_low"] is None else f"  95% CI [{m['ci_low']:.6g}, {m['ci_high']:.6g}]"
        print(f"{name:<12} {m['value']:.6g}{ci}  ({m['n_clips']} clips)")
        for warning in m["warnings"]:
            print(f"  warning: {warning}")
    print(f"wrote {result.out_dir}/scores.parquet, scores.csv, summary.json, provenance.json")
    return 0
