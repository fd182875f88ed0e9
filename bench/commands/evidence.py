"""``t2mbench evidence STUDY``: the studies behind ``docs/evidence/``. Does the offline closed
loop measure something? Each study writes its tables and plots into a folder; ``report``
collects them into ``docs/evidence/results.md``.

Studies (each module of :mod:`t2mbench.bench.evidence` says what it measures and how):

- ``retrieval``: the evaluator's caption→audio retrieval and attribute accuracy against chance;
- ``degradation``: ``fd_evaluator`` under added noise and low-pass filtering;
- ``autoencoder``: the tiny VAE's reconstruction table against an equal-rate baseline;
- ``guidance-sweep``: the CFG scale, chosen on train clips;
- ``closed-loop``: the Stable Audio table layout on the corpus's test split;
- ``ap-adapter``: does a generation follow its audio prompt (a ``t2mbench train ap-adapter`` run)?
- ``report``: the five outputs above as one markdown report with plots.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

from t2mbench.bench.evidence import ap_adapter, autoencoder, closed_loop, degradation, guidance_sweep, report, retrieval
from t2mbench.core.cli_format import COUNT, NONNEGATIVE, SEED, HelpFormatter, output_file
from t2mbench.core.files import write_json
from t2mbench.core.ownership import owning

EXAMPLE = """examples (the commands behind docs/evidence/results.md):
  t2mbench evidence retrieval --corpus runs/corpus1024 --split test --out runs/evidence/retrieval.json
  t2mbench evidence degradation --corpus runs/corpus --out runs/evidence/degradation
  t2mbench evidence autoencoder --corpus runs/corpus --vae runs/tiny-vae/ema.safetensors \\
      --out runs/evidence/autoencoder
  t2mbench evidence guidance-sweep --corpus runs/corpus --out runs/evidence/guidance_sweep --cfg 2 3 5
  t2mbench evidence closed-loop --corpus runs/corpus --out runs/evidence/closed_loop
  t2mbench evidence ap-adapter --corpus runs/corpus64 --weights runs/ap/ema.safetensors --scale 1 \\
      --out runs/evidence/ap_adapter.json
  t2mbench evidence report --runs runs/evidence --out docs/evidence"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "evidence", help="the studies behind docs/evidence: does the closed loop measure something?",
        description=__doc__, formatter_class=HelpFormatter, epilog=EXAMPLE,
    )  # fmt: skip
    studies = p.add_subparsers(dest="study", metavar="STUDY", required=True)

    s = _study(studies, "retrieval", retrieval, run_retrieval,
               "caption→audio retrieval and attribute accuracy against chance",
               "t2mbench evidence retrieval --corpus runs/corpus1024 --split test --out runs/evidence/retrieval.json")
    s.add_argument("--corpus", required=True, help="corpus folder (manifest.jsonl with splits)")
    s.add_argument("--split", default="test", help="split to evaluate")
    s.add_argument("--checkpoint", default=None, help="evaluator checkpoint (default: the shipped one)")
    s.add_argument("--no-verify", action="store_true", help="load a --checkpoint that is not the shipped evaluator")
    s.add_argument("--out", required=True, type=output_file, help="JSON file to write")

    s = _study(studies, "degradation", degradation, run_degradation, "fd_evaluator under noise and low-pass",
               "t2mbench evidence degradation --corpus runs/corpus --out runs/evidence/degradation")
    s.add_argument("--corpus", required=True, help="corpus folder (manifest.jsonl with splits)")
    s.add_argument("--out", required=True, help="folder for degradation.{json,csv,png}")
    s.add_argument("--max-reference", type=COUNT, default=256, help="reference (train) clips used")
    s.add_argument("--max-eval", type=COUNT, default=None, help="evaluated (test) clips used (default: all)")
    s.add_argument("--seed", type=SEED, default=0, help="noise seed")
    s.add_argument("--checkpoint", default=None, help="evaluator checkpoint (default: the shipped one)")
    s.add_argument("--no-verify", action="store_true", help="load a --checkpoint that is not the shipped evaluator")

    s = _study(studies, "autoencoder", autoencoder, run_autoencoder,
               "the tiny VAE's reconstruction table next to an equal-rate baseline",
               "t2mbench evidence autoencoder --corpus runs/corpus --vae runs/tiny-vae/ema.safetensors "
               "--out runs/evidence/autoencoder")  # fmt: skip
    s.add_argument("--corpus", required=True, help="corpus folder (manifest.jsonl with a test split)")
    s.add_argument("--vae", required=True, help="VAE state (safetensors), e.g. runs/tiny-vae/ema.safetensors")
    s.add_argument("--out", required=True, help="folder for autoencoder.{json,csv,md,png}, audio and scores")
    s.add_argument("--clips", type=COUNT, default=None, help="first N test clips (default: all)")

    s = _study(studies, "guidance-sweep", guidance_sweep, run_guidance_sweep, "choose the CFG scale on train clips",
               "t2mbench evidence guidance-sweep --corpus runs/corpus --out runs/evidence/guidance_sweep --cfg 2 3 5")
    s.add_argument("--corpus", required=True, help="corpus folder with a train split")
    s.add_argument("--out", required=True, help="output folder (reused when run again)")
    s.add_argument("--cfg", type=NONNEGATIVE, nargs="+", required=True, help="CFG scales to try")
    s.add_argument("--clips", type=COUNT, default=108, help="train clips to generate per scale")
    s.add_argument("--model", default="tiny", help="model name or path with trained weights")

    s = _study(studies, "closed-loop", closed_loop, run_closed_loop,
               "the Stable Audio table layout on the corpus's test split",
               "t2mbench evidence closed-loop --corpus runs/corpus --out runs/evidence/closed_loop")
    d = closed_loop.LoopSettings()
    s.add_argument("--corpus", required=True, help="corpus folder with train and test splits")
    s.add_argument("--out", required=True, help="output folder (reused when run again)")
    s.add_argument("--model", default="tiny", help="model name or path with trained weights")
    s.add_argument("--sampler", default=d.sampler, help="sampler of the DiT rows")
    s.add_argument("--steps", type=COUNT, default=d.steps, help="sampler steps")
    s.add_argument("--cfg", type=NONNEGATIVE, default=d.cfg_scale, help="CFG scale (default: the tiny config's)")
    s.add_argument("--seed", type=SEED, default=d.seed, help="generation seed of the first clip (seed + i)")

    s = _study(studies, "ap-adapter", ap_adapter, run_ap_adapter,
               "does a generation follow its audio prompt? (AP-Adapter, test split)",
               "t2mbench evidence ap-adapter --corpus runs/corpus64 --weights runs/ap/ema.safetensors --scale 1 "
               "--out runs/evidence/ap_adapter.json")  # fmt: skip
    s.add_argument("--corpus", required=True, help="corpus folder with a test split")
    s.add_argument("--weights", default=None, metavar="FILE",
                   help="trained AP-Adapter (t2mbench train ap-adapter: RUN/ema.safetensors); "
                        "unset: the copy-initialised adapter")
    s.add_argument("--scale", type=NONNEGATIVE, default=1.0, metavar="LAMBDA",
                   help="AP-Adapter's lambda: weight of the audio-prompt attention")
    s.add_argument("--pool", type=COUNT, default=2, metavar="N",
                   help="pooling rate N x N of the audio features (1, 2, 4 or 8)")
    s.add_argument("--out", required=True, type=output_file, help="JSON file to write")

    s = _study(studies, "report", report, run_report, "collect the studies' outputs into results.md",
               "t2mbench evidence report --runs runs/evidence --out docs/evidence")
    s.add_argument("--runs", required=True, help="folder with the studies' outputs")
    s.add_argument("--out", default="docs/evidence", help="report folder")


def _study(studies: argparse._SubParsersAction, name: str, module: ModuleType,
           run: Callable[[argparse.Namespace], int], help: str, example: str) -> argparse.ArgumentParser:  # fmt: skip
    """The parser of one study: its module's docstring as the description, one example."""
    p = studies.add_parser(name, help=help, description=module.__doc__, formatter_class=HelpFormatter,
                           epilog=f"example:\n  {example}")  # fmt: skip
    p.set_defaults(func=run)
    if name not in ("retrieval", "ap-adapter"):  # these two write one file; the others a folder, claimed
        p.add_argument("--overwrite", action="store_true",
                       help="take over a folder another command or other settings own")  # fmt: skip
    return p


def run_retrieval(args: argparse.Namespace) -> int:
    write_json(args.out, retrieval.evaluate(args.corpus, args.split, checkpoint=args.checkpoint,
                                            verify=not args.no_verify))
    print(args.out)
    return 0


def run_ap_adapter(args: argparse.Namespace) -> int:
    import json

    from t2mbench.bench.audio_prompt import EVALUATOR_GRID_FREQ
    from t2mbench.core.errors import WeightsError
    from t2mbench.reference_models.adapters.ap_adapter import check_knobs

    check_knobs(args.scale, args.pool, EVALUATOR_GRID_FREQ)
    if args.weights is not None and not Path(args.weights).is_file():
        raise WeightsError(f"--weights: {args.weights}: no such file (a `t2mbench train ap-adapter` run's "
                           "ema.safetensors)")
    result = {"weights": args.weights, "scale": args.scale, "pool": args.pool,
              **ap_adapter.prompt_following(args.corpus, args.weights, args.scale, args.pool)}
    write_json(args.out, result)
    print(json.dumps(result))
    return 0


def _owning(args: argparse.Namespace, *defining: str):
    """Claim the study's --out for ``evidence STUDY`` with the options that define its outputs."""
    return owning(args.out, f"evidence {args.study}", {k: getattr(args, k) for k in defining},
                  overwrite=args.overwrite)  # fmt: skip


def run_degradation(args: argparse.Namespace) -> int:
    with _owning(args, "corpus", "max_reference", "max_eval", "seed", "checkpoint", "no_verify"):
        table = degradation.degradation_table(
            args.corpus, max_reference=args.max_reference, max_eval=args.max_eval, seed=args.seed,
            checkpoint=args.checkpoint, verify=not args.no_verify,
        )  # fmt: skip
        print(degradation.write_outputs(table, args.out))
    return 0


def run_autoencoder(args: argparse.Namespace) -> int:
    with _owning(args, "corpus", "vae", "clips"):
        table = autoencoder.autoencoder_table(args.corpus, args.vae, args.out, clips=args.clips)
    print(autoencoder.markdown_table(table))
    return 0


def run_guidance_sweep(args: argparse.Namespace) -> int:
    with _owning(args, "corpus", "clips", "model"):  # more --cfg scales add to the folder
        result = guidance_sweep.guidance_sweep(args.corpus, args.out, args.cfg, clips=args.clips, model=args.model)
    print(guidance_sweep.render(result))
    return 0


def run_closed_loop(args: argparse.Namespace) -> int:
    settings = closed_loop.LoopSettings(sampler=args.sampler, steps=args.steps, cfg_scale=args.cfg, seed=args.seed)
    with _owning(args, "corpus", "model", "sampler", "steps", "cfg", "seed"):
        print(closed_loop.render(closed_loop.closed_loop(args.corpus, args.out, settings, model=args.model)))
    return 0


def run_report(args: argparse.Namespace) -> int:
    with _owning(args):  # the report is rebuilt from whatever --runs holds
        print(report.write_report(args.runs, args.out))
    return 0
