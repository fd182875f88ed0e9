"""``t2mbench train vae|dit|evaluator|control|ap-adapter``: train a tiny model, or a control adapter or an
AP-Adapter on the shipped tiny model, on a corpus (resumable)."""

from __future__ import annotations

import argparse
from pathlib import Path

from t2mbench.bench.train.data import read_train_config
from t2mbench.bench.train.loop import train
from t2mbench.core.cli_format import COUNT, HelpFormatter

CONFIGS = Path(__file__).resolve().parents[1] / "train" / "configs"
DEFAULTS = {"vae": CONFIGS / "tiny-vae.json", "dit": CONFIGS / "tiny-dit.json", "evaluator": CONFIGS / "evaluator.json",
            "control": CONFIGS / "tiny-control.json", "ap-adapter": CONFIGS / "tiny-ap-adapter.json"}

EXAMPLE = """examples:
  t2mbench corpus build --out runs/corpus --clips 512 --seconds 10 --seed 0
  t2mbench train vae --corpus runs/corpus --out runs/tiny-vae
  t2mbench train dit --corpus runs/corpus --out runs/tiny-dit --vae runs/tiny-vae/ema.safetensors \
      --ship reference_models/weights/tiny
  t2mbench train evaluator --corpus runs/corpus --out runs/evaluator --ship metrics/embedders/checkpoints
  t2mbench corpus build --out runs/corpus-control --clips 320 --seconds 5 --seed 0
  t2mbench train control --corpus runs/corpus-control --out runs/control-melody \
      --ship reference_models/weights/tiny-control-melody
  t2mbench train control --corpus runs/corpus-control --out runs/control-controlnet \
      --config bench/train/configs/tiny-controlnet.json --ship reference_models/weights/tiny-controlnet-melody
  t2mbench corpus build --out runs/corpus64 --clips 64 --seconds 10 --seed 0
  t2mbench train ap-adapter --corpus runs/corpus64 --out runs/ap
  t2mbench evidence ap-adapter --corpus runs/corpus64 --weights runs/ap/ema.safetensors --scale 1 \
      --out runs/evidence/ap_adapter.json

A killed run (even kill -9) continues from its last checkpoint when the same command is run
again, with the same result as an uninterrupted run. Each run folder gets ema.safetensors,
checkpoints/, log.csv, loss.png and provenance.json."""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train", help="train the tiny VAE, DiT, evaluator, a control adapter or an AP-Adapter on a corpus",
        formatter_class=HelpFormatter,
        description=__doc__, epilog=EXAMPLE,
    )
    p.add_argument("task", choices=sorted(DEFAULTS), help="what to train")
    p.add_argument("--corpus", required=True, help="corpus folder (t2mbench corpus build) with a train split")
    p.add_argument("--out", required=True, help="run folder; an existing one is resumed")
    p.add_argument("--config", default=None, help="training config JSON (default: bench/train/configs/<task>); "
                   "for control its task block picks the adapter (tiny-controlnet.json: the ControlNet, "
                   "tiny-control-audio.json: the in/outpainting adapter)")
    p.add_argument("--steps", type=COUNT, default=None, help="override the config's step count")
    p.add_argument("--vae", default=None, help="dit only: the trained VAE (a vae run's ema.safetensors)")
    p.add_argument("--ship", default=None, metavar="DIR",
                   help="dit, evaluator, control: write the EMA weights and a manifest with their sha256 into DIR "
                        "when done")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--overwrite", action="store_true", help="take over a folder another command or other settings own")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import sys
    from dataclasses import asdict

    from t2mbench.bench.train.ship import run_info, upstream_run
    from t2mbench.core.errors import ConfigError
    from t2mbench.core.ownership import owning

    if args.ship and args.task == "vae":
        raise ConfigError("the VAE ships inside the tiny model's checkpoint: pass --ship to `t2mbench train dit`")
    if args.ship and args.task == "ap-adapter":
        raise ConfigError("no AP-Adapter ships (the checkpoint budget is spent): pass the run's ema.safetensors "
                          "to `t2mbench generate --audio-prompt-weights`")
    config_path = args.config or DEFAULTS[args.task]
    task_block, model_block, config = read_train_config(config_path, args.steps)
    progress = not args.no_progress
    if args.task == "dit" and args.vae is None:
        raise ConfigError("train dit needs --vae (the ema.safetensors of a trained `t2mbench train vae` run)")
    defining = {"task": args.task, "corpus": args.corpus, "vae": args.vae, "task_block": task_block,
                "model_block": model_block, "config": asdict(config)}  # fmt: skip
    with owning(args.out, f"train {args.task}", defining, overwrite=args.overwrite):
        try:
            task = _build_task(args, task_block, model_block, progress)
        except ConfigError as e:  # a bad task or model block: name the file to fix
            raise ConfigError(f"{config_path}: {e}") from None
        ema = train(task, config, args.out, progress=progress)
    print(f"trained {args.task}: {Path(args.out) / 'ema.safetensors'}")
    if args.task == "ap-adapter":
        print(f"does it follow its audio prompt? t2mbench evidence ap-adapter --corpus {args.corpus} "
              f"--weights {Path(args.out) / 'ema.safetensors'} --out AP_ADAPTER.json")
    if args.task == "vae":
        print(f"latent std of the train split's posterior means: {task.latent_std(ema):.4f} "
              "(the model config's pretransform scale)")
    if args.ship:
        info = run_info("t2mbench " + " ".join(sys.argv[1:]), config_path, args.corpus, len(task.clips), args.out)
        if args.task == "dit":
            info["vae_run"] = upstream_run(args.vae)
        print(f"shipped: {task.ship(ema, args.ship, info)}")
    return 0


def _build_task(args: argparse.Namespace, task_block: dict, model_block: dict, progress: bool):
    """The training task of ``args.task`` from its config's ``task`` and ``model`` blocks."""
    if args.task == "vae":
        from t2mbench.bench.train.vae import VaeTask

        return VaeTask(args.corpus, task_block, model_block, progress=progress)
    if args.task == "dit":
        from t2mbench.bench.train.dit import DitTask

        return DitTask(args.corpus, task_block, model_block, vae=args.vae, progress=progress)
    if args.task == "control":
        from t2mbench.bench.train.control import ControlTask

        return ControlTask.from_block(args.corpus, task_block, model_block, Path(args.out) / "precomputed.pt",
                                      progress=progress)
    if args.task == "ap-adapter":
        from t2mbench.bench.train.ap_adapter import APAdapterTask

        return APAdapterTask.from_block(args.corpus, task_block, model_block, progress=progress)
    from t2mbench.bench.train.evaluator import EvaluatorTask, TaskSettings

    return EvaluatorTask(args.corpus, TaskSettings.from_block(task_block), model_block, progress=progress)
