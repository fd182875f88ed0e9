"""``t2mbench demo``: the main job — the DDIM paper's Table 1 (rows η ∈ {0, 0.2, 0.5, 1} and σ̂,
DDPM's larger variance; S ∈ {10, 20, 50}) on the bundled tiny model and the benchmark corpus,
offline, scored with the audio FD (fd_evaluator) and the FD in the DiT's latent space (fd_latent),
printed next to the published table with the paper's three findings checked. S = 100:
``--steps 10,20,50,100`` or ``t2mbench reproduce ddim``; S = 1000: ``t2mbench reproduce ddim --full``."""

from __future__ import annotations

import argparse

from t2mbench.core.cli_format import HelpFormatter

EXAMPLE = """example:
  t2mbench demo --out runs/demo
  t2mbench demo --out runs/demo-big --clips 64 --seconds 5 --rows eta0,eta1,sigma_hat,dpmpp_2m
  t2mbench demo --extra-sampler ddpm --sampler-option variance=fixed_small

Writes results.parquet/.csv (every cell's rows in the result schema, CIs and sampler options included),
table.md, sweep.png and provenance.json into --out; a killed run resumes there.
S = 1000: t2mbench reproduce ddim --full."""


def register(sub: argparse._SubParsersAction) -> None:
    from t2mbench.bench.demo import DemoSettings

    d = DemoSettings()
    p = sub.add_parser(
        "demo", help="the main job: the DDIM table (eta rows, sigma-hat) on the tiny model", description=__doc__,
        formatter_class=HelpFormatter, epilog=EXAMPLE,
    )
    p.add_argument("--out", default="runs/demo", help="output folder (resumable)")
    p.add_argument("--clips", type=int, default=d.clips, help="test-split clips (prompts and reference)")
    p.add_argument("--seconds", type=float, default=d.seconds, help="clip length")
    p.add_argument("--seed", type=int, default=d.seed, help="corpus and generation seed")
    p.add_argument("--rows", default=",".join(r.key for r in d.rows),
                   help="comma-separated rows: eta0, eta0.2, eta0.5, eta1, sigma_hat, ddpm_small, dpmpp_2m, euler")
    p.add_argument("--extra-sampler", metavar="NAME", help="one more row with this sampler and --sampler-option")
    p.add_argument("--sampler-option", action="append", default=[], metavar="KEY=VALUE",
                   help="option of --extra-sampler, repeatable (checked against the sampler's options)")
    p.add_argument("--steps", default=",".join(map(str, d.steps)), help="comma-separated step counts")
    p.add_argument("--cfg", type=float, default=d.cfg_scale, help="classifier-free guidance scale")
    p.add_argument("--batch", type=int, default=d.batch_size, help="clips per DiT batch")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from t2mbench.bench.demo import DemoSettings, run_demo
    from t2mbench.bench.reproduce import ddim
    from t2mbench.bench.sampler_options import parse_pairs
    from t2mbench.core.errors import ConfigError

    try:
        steps = tuple(int(s) for s in args.steps.split(","))
    except ValueError:
        raise ConfigError(f"--steps must be comma-separated integers, got {args.steps!r}") from None
    rows = ddim.parse_rows(args.rows)
    if args.sampler_option and not args.extra_sampler:
        raise ConfigError("--sampler-option needs --extra-sampler (the row it configures)")
    if args.extra_sampler:
        rows = (*rows, ddim.custom_row(args.extra_sampler, parse_pairs(args.sampler_option)))
    settings = DemoSettings(
        clips=args.clips, seconds=args.seconds, seed=args.seed, rows=rows, steps=steps, cfg_scale=args.cfg,
        batch_size=args.batch,
    )
    print(run_demo(args.out, settings, progress=not args.no_progress))
    return 0
