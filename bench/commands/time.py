"""``t2mbench time``: time one generation configuration stage by stage (text encoding, each
denoising step, VAE decoding, total) over warm-up and repeated runs, with the median, p90,
min and an order-statistic CI of the median, the real-time factor, NFE, peak memory and the
machine's fingerprint (:mod:`t2mbench.bench.timing`)."""

from __future__ import annotations

import argparse

from t2mbench.core.cli_format import (
    COUNT,
    NONNEGATIVE,
    POSITIVE,
    SEED,
    HelpFormatter,
    device,
    integer,
    output_file,
)
from t2mbench.core.threads import add_threads_option

EXAMPLE = """example:
  t2mbench time --model tiny --sampler ddim --steps 50
  t2mbench time --model tiny --sampler euler --steps 10 --seconds 5 --repeats 20 --json runs/time.json

On a GPU (--device cuda) the stages are CUDA events read after one synchronisation, and the
CUDA peak allocated/reserved memory is reset before every run."""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("time", help="time one generation configuration stage by stage", description=__doc__,
                       formatter_class=HelpFormatter, epilog=EXAMPLE)  # fmt: skip
    p.add_argument("--model", default="tiny", help="shipped config name or config path")
    p.add_argument("--sampler", required=True, help="sampler name")
    p.add_argument("--steps", type=COUNT, required=True, help="denoising steps")
    p.add_argument("--cfg", type=NONNEGATIVE, default=None, help="CFG scale (default: the model's)")
    p.add_argument("--seconds", type=POSITIVE, default=10.0, help="clip length")
    p.add_argument("--clips", type=COUNT, default=1, help="clips per run")
    p.add_argument("--batch", type=COUNT, default=1, help="clips per DiT batch")
    p.add_argument("--seed", type=SEED, default=0, help="seed")
    p.add_argument("--warmup", type=integer(0), default=1, help="untimed warm-up runs")
    p.add_argument("--repeats", type=COUNT, default=5, help="timed runs")
    p.add_argument("--device", default="cpu", type=device, help="cpu or cuda[:N]")
    p.add_argument("--json", default=None, type=output_file,
                   help="also write the report (raw runs included) as JSON here")
    add_threads_option(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from t2mbench.bench.timing import render, time_config
    from t2mbench.core.files import write_json

    report = time_config(args.model, sampler=args.sampler, steps=args.steps, cfg=args.cfg, seconds=args.seconds,
                         clips=args.clips, batch_size=args.batch, seed=args.seed, warmup=args.warmup,
                         repeats=args.repeats, device=args.device)  # fmt: skip
    if args.json:
        write_json(args.json, report.to_dict())
    print(render(report))
    return 0
