"""``t2mbench demo``: the main job — the sampler × steps table on the bundled tiny model and
the benchmark corpus, offline, printed next to the published DDIM-paper table."""

from __future__ import annotations

import argparse

from t2mbench.core.cli_format import COUNT, NONNEGATIVE, POSITIVE, SEED, HelpFormatter
from t2mbench.core.threads import add_threads_option

EXAMPLE = """example:
  t2mbench demo --out runs/demo
  t2mbench demo --out runs/demo-big --clips 64 --samplers ddpm,ddim,euler,dpmpp_2m --steps 10,20,50,100

Writes results.parquet/.csv (every cell's rows in the result schema, CIs included), table.md,
sweep.png and provenance.json into --out; a killed run resumes there."""


def register(sub: argparse._SubParsersAction) -> None:
    from t2mbench.bench.demo import DemoSettings

    d = DemoSettings()
    p = sub.add_parser(
        "demo", help="the main job: sampler x steps table on the tiny model", description=__doc__,
        formatter_class=HelpFormatter, epilog=EXAMPLE,
    )
    p.add_argument("--out", default="runs/demo", help="output folder (resumable)")
    p.add_argument("--clips", type=COUNT, default=d.clips, help="test-split clips (prompts and reference)")
    p.add_argument("--seconds", type=POSITIVE, default=d.seconds, help="clip length")
    p.add_argument("--seed", type=SEED, default=d.seed, help="corpus and generation seed")
    p.add_argument("--samplers", default=",".join(d.samplers), help="comma-separated sampler names")
    p.add_argument("--steps", default=",".join(map(str, d.steps)), help="comma-separated step counts")
    p.add_argument("--cfg", type=NONNEGATIVE, default=d.cfg_scale, help="classifier-free guidance scale")
    p.add_argument("--batch", type=COUNT, default=d.batch_size, help="clips per DiT batch")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--overwrite", action="store_true", help="take over a folder another command or other settings own")
    add_threads_option(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from t2mbench.bench.demo import DemoSettings, run_demo
    from t2mbench.core.errors import ConfigError
    from t2mbench.core.ownership import owning

    try:
        steps = tuple(int(s) for s in args.steps.split(","))
    except ValueError:
        raise ConfigError(f"--steps must be comma-separated integers, got {args.steps!r}") from None
    settings = DemoSettings(
        clips=args.clips, seconds=args.seconds, seed=args.seed, samplers=tuple(args.samplers.split(",")),
        steps=steps, cfg_scale=args.cfg, batch_size=args.batch,
    )
    with owning(args.out, "demo", settings.__dict__, overwrite=args.overwrite):
        print(run_demo(args.out, settings, progress=not args.no_progress))
    return 0
