"""``t2mbench reproduce TABLE``: a published paper table next to what runs here.

Each TABLE is a spec file shipped in the package (``t2mbench reproduce --list``): every published value with
its paper, table number and conditions, and the rows this machine can add. The rows that can run here are run
(resumably, into ``--out``) and printed beside the published ones as Markdown, LaTeX or CSV; rows that need
weights, a GPU or adapters are listed with the exact command that would produce them.

``ddim`` runs the DDIM paper's Table 1 on the tiny model: rows η ∈ {0, 0.2, 0.5, 1} and σ̂ (ddpm
variance=fixed_large), S ∈ {10, 20, 50, 100} (``--full`` adds 1000), scored with ``fd_evaluator`` (audio) and
``fd_latent`` (the DiT's latent space), with the paper's three findings checked.
"""

from __future__ import annotations

import argparse

from t2mbench.core.cli_format import COUNT, NONNEGATIVE, POSITIVE, SEED, HelpFormatter, integer

EXAMPLE = """examples:
  t2mbench reproduce --list
  t2mbench reproduce ddim --out runs/ddim
  t2mbench reproduce ddim --full --out runs/ddim            # adds S = 1000 (resumes the S <= 100 cells)
  t2mbench reproduce ddim --rows eta0,sigma_hat,dpmpp_2m --extra-sampler ddpm --sampler-option variance=fixed_small
  t2mbench reproduce stable-audio-open --format latex --out runs/sao-table
  t2mbench reproduce ddim --published-only --format csv"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("reproduce", help="a published paper table next to what runs here", description=__doc__,
                       formatter_class=HelpFormatter, epilog=EXAMPLE)  # fmt: skip
    p.add_argument("table", nargs="?", help="the table id (see --list)")
    p.add_argument("--list", action="store_true", help="list the tables held")
    p.add_argument("--out", help="run folder (resumable); default runs/reproduce-TABLE")
    p.add_argument("--format", default="markdown", choices=("markdown", "latex", "csv"), help="output format")
    p.add_argument("--full", action="store_true", help="ddim: add S = 1000")
    p.add_argument("--clips", type=COUNT, help="test clips (prompts and reference); default 64 for ddim, else 16")
    p.add_argument("--seconds", type=POSITIVE, help="clip length; default 5")
    p.add_argument("--seed", type=SEED, default=1, help="corpus and generation seed")
    p.add_argument("--cfg", type=NONNEGATIVE, help="ddim: guidance scale; default 1 (no guidance, as the paper)")
    p.add_argument("--rows", help="ddim: comma-separated rows (eta0, eta0.2, eta0.5, eta1, sigma_hat, ddpm_small, "
                   "dpmpp_2m, euler); default the paper's five")  # fmt: skip
    p.add_argument("--resolve-clips", type=integer(0), metavar="N",
                   help="ddim: finding 1 also on N test clips (eta0 and sigma_hat at S = 10, latents only); "
                   "default 512, 0 skips it")  # fmt: skip
    p.add_argument("--extra-sampler", metavar="NAME", help="ddim: one more row with this sampler and --sampler-option")
    p.add_argument("--sampler-option", action="append", default=[], metavar="KEY=VALUE",
                   help="option of --extra-sampler, repeatable (checked against the sampler)")  # fmt: skip
    p.add_argument("--published-only", action="store_true", help="print the published rows only; run nothing")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--overwrite", action="store_true", help="take over a folder another command or other settings own")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from t2mbench.bench.reproduce import ddim
    from t2mbench.bench.reproduce.spec import listing, load_spec, render
    from t2mbench.bench.sampler_options import parse_pairs
    from t2mbench.core.errors import ConfigError

    if args.list:
        print(listing())
        return 0
    if not args.table:
        raise ConfigError("name a TABLE (t2mbench reproduce --list shows them)")
    spec = load_spec(args.table)
    rows = ddim.parse_rows(args.rows) if args.rows else None
    if args.sampler_option and not args.extra_sampler:
        raise ConfigError("--sampler-option needs --extra-sampler (the row it configures)")
    if args.extra_sampler:
        extra = ddim.custom_row(args.extra_sampler, parse_pairs(args.sampler_option))
        rows = (*(rows or ddim.DdimSettings().rows), extra)
    if args.published_only:
        print(render(spec, [], args.format))
        return 0
    from t2mbench.bench.reproduce.run import clip_size, run_table
    from t2mbench.core.ownership import owning

    out = args.out or f"runs/reproduce-{args.table}"
    # the corpus and the cells' settings define the folder; --full, --rows and --extra-sampler add cells to it
    clips, seconds = clip_size(args.table, args.clips, args.seconds)  # an explicit default is the default
    defining = {"table": args.table, "clips": clips, "seconds": seconds, "seed": args.seed}
    with owning(out, "reproduce", defining, overwrite=args.overwrite):
        tables, ran = run_table(args.table, out, full=args.full, clips=args.clips, seconds=args.seconds,
                                seed=args.seed, rows=rows, cfg=args.cfg, resolve_clips=args.resolve_clips,
                                progress=not args.no_progress)  # fmt: skip
    print(render(spec, tables, args.format, ran))
    return 0
