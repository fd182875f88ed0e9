"""``t2mbench generate``: audio from prompts with a reference model, plus a manifest of every
setting, the NFE and the wall time per stage.

Prompts FILE: a ``.txt`` (one prompt per line), a ``.jsonl`` / ``.csv`` with ``caption`` (or
``prompt``) and optionally ``id`` and ``negative_prompt``, or a clip-set folder holding
``manifest.jsonl`` (a corpus: its ids and captions).

Writes into ``--out``: ``<id>.wav`` (32-bit float, the model's rate and channels; no
normalisation, no clipping), ``manifest.jsonl`` / ``manifest.parquet`` (the clip set:
id, path, caption, seconds, rate, channels, sha256, attributes with the clip's seed and
negative prompt, and the model, sampler, steps, cfg and canonical sampler options that the
scorer copies into the result rows), ``generation.json`` (settings with ``sampler_options``, NFE,
timings per stage, real-time factor, weights), ``latents.npy`` (the DiT's output latents
``[N, C, L]`` before the decoder) and ``provenance.json``.

Sampler options: ``--sampler-option KEY=VALUE``, repeatable, checked against the options the
sampler declares (``ddim``/``v_ddim``: ``eta`` in [0, 1]; ``ddpm``: ``variance`` fixed_small |
fixed_large; the SDE samplers: ``eta``, ``s_noise``); a mistake is a one-line error (exit 2).
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import torch

from t2mbench.core.cli_format import COUNT, NONNEGATIVE, POSITIVE, SEED, device
from t2mbench.core.errors import ConfigError, ManifestError
from t2mbench.core.files import read_jsonl
from t2mbench.core.threads import add_threads_option

EPILOG = """\
examples:
  t2mbench generate --model tiny --checkpoint tiny.safetensors --prompts prompts.txt \\
      --sampler dpmpp_2m --steps 25 --cfg 3 --seconds 10 --seed 0 --batch 8 --out runs/tiny
  t2mbench generate --model tiny --prompts corpus/ --sampler ddpm --sampler-option variance=fixed_large \
      --steps 10 --seconds 5 --out runs/sigma-hat
  t2mbench generate --model sao-1.0 --prompts corpus/ --sampler dpmpp_3m_sde --steps 100 --cfg 7 \\
      --sigma-min 0.3 --sigma-max 500 --seconds 10 --seed 0 --batch 4 --out runs/sao --device cuda --dtype bfloat16
"""
DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def register(subparsers: argparse._SubParsersAction) -> None:
    from t2mbench.core.cli_format import HelpFormatter
    from t2mbench.reference_models.factory import config_names

    p = subparsers.add_parser(
        "generate",
        help="generate audio from prompts with a reference model",
        description=__doc__,
        formatter_class=HelpFormatter,
        epilog=EPILOG,
    )
    p.add_argument(
        "--model", required=True, help=f"{' | '.join(config_names())} | a config JSON | a folder with model_config.json"
    )
    p.add_argument(
        "--checkpoint", help="weight file (.safetensors/.ckpt, stable-audio-tools layout); unset: the registered file"
    )
    p.add_argument("--prompts", required=True, metavar="FILE", help="prompts: .txt, .jsonl, .csv or a clip-set folder")
    p.add_argument("--sampler", help="sampler name (README: Reference models); unset: the model's default")
    p.add_argument(
        "--sampler-option", action="append", default=[], metavar="KEY=VALUE",
        help="a sampler option, repeatable (ddim: eta=0.5; ddpm: variance=fixed_large); checked against the sampler",
    )  # fmt: skip
    p.add_argument("--steps", type=COUNT, help="sampler steps; unset: the model's default")
    p.add_argument("--cfg", type=NONNEGATIVE, help="classifier-free guidance scale; unset: the model's default")
    p.add_argument("--seconds", type=POSITIVE, required=True, help="clip length (also the seconds_total conditioning)")
    p.add_argument("--seed", type=SEED, default=0, help="clip i is seeded with SEED + i")
    p.add_argument("--batch", type=COUNT, default=1, help="clips per batch")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--negative-prompt", help="negative prompt for every clip (a file's negative_prompt column wins)")
    p.add_argument(
        "--sigma-min", type=POSITIVE, help="smallest sigma of the schedule (v models); unset: the model's default"
    )
    p.add_argument(
        "--sigma-max", type=POSITIVE, help="largest sigma (v models) / start time (RF); unset: the model's default"
    )
    p.add_argument("--seconds-start", type=NONNEGATIVE, default=0.0, help="seconds_start conditioning")
    p.add_argument(
        "--full-window", action="store_true", help="denoise the whole training window, as the reference pipelines"
    )
    p.add_argument("--text-encoder", metavar="DIR", help="folder with the prompt encoder's files (t5-base for SAO)")
    p.add_argument("--device", default="cpu", type=device, help="torch device")
    p.add_argument(
        "--overwrite", action="store_true", help="take over a folder another command or other settings own"
    )
    p.add_argument(
        "--no-verify", action="store_true",
        help="load a --checkpoint that is not the model's published or shipped file (a fine-tune, a conversion)",
    )  # fmt: skip
    p.add_argument("--dtype", default="float32", choices=sorted(DTYPES), help="model dtype")
    p.add_argument("--control", action="append", default=[], metavar="NAME=PATH",
                   help="control condition (melody | rhythm | dynamics | audio) from one audio file, or from a clip "
                        "set where each prompt takes the clip with its id (repeatable; README: Control)")
    p.add_argument("--control-scale", action="append", default=[], metavar="NAME=VALUE",
                   help="guidance scale of a control (default 2.0, audio 1.0; text keeps --cfg)")
    p.add_argument("--inpaint", default=None, metavar="START:END",
                   help="with --control audio=PATH: generate seconds [START, END) and keep the reference elsewhere "
                        "(outpainting: the span at the clip's end or start)")
    p.add_argument("--adapter", default="musecontrollite", choices=("musecontrollite", "controlnet"),
                   help="which shipped control adapter generates with --control")
    p.add_argument("--audio-prompt", metavar="PATH",
                   help="audio file whose features prompt every clip through a copy-initialised AP-Adapter "
                        "(README: Control)")
    p.add_argument("--audio-prompt-scale", type=NONNEGATIVE, default=0.5, metavar="LAMBDA",
                   help="AP-Adapter's lambda: weight of the audio-prompt attention (0: the base model)")
    p.add_argument("--audio-prompt-pool", type=COUNT, default=2, metavar="N",
                   help="AP-Adapter's pooling rate N x N of the audio features (1, 2, 4 or 8; larger: weaker)")
    p.add_argument("--audio-prompt-weights", metavar="FILE",
                   help="trained AP-Adapter weights (t2mbench train ap-adapter: RUN/ema.safetensors); "
                        "unset: the copy-initialised adapter")
    add_threads_option(p)
    p.set_defaults(func=run)


def read_prompts(path: str | Path) -> list[dict[str, str | None]]:
    """``[{"id", "prompt", "negative_prompt"}]`` from a prompts file or clip-set folder."""
    p = Path(path)
    if p.is_dir():
        p = p / "manifest.jsonl"
    if not p.is_file():
        raise ManifestError(f"{path}: no such prompts file (or folder with manifest.jsonl)")
    try:
        if p.suffix == ".txt":
            lines = [line.strip() for line in p.read_text(encoding="utf-8").splitlines()]
            rows = [{"prompt": line} for line in lines if line]
        elif p.suffix == ".jsonl":
            rows = read_jsonl(p)
        elif p.suffix == ".csv":
            with open(p, newline="", encoding="utf-8") as f:
                rows = list(csv.DictReader(f))
        else:
            raise ManifestError(f"{p}: unsupported prompts file {p.suffix!r}; use .txt, .jsonl or .csv")
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, csv.Error) as e:
        raise ManifestError(f"{p}: unreadable prompts file ({e})") from None
    out = []
    for i, row in enumerate(rows):
        text = row.get("caption", row.get("prompt"))
        if not isinstance(text, str) or not text.strip():
            raise ManifestError(f"{p}: row {i + 1} has no caption/prompt text")
        cid = str(row.get("id") or f"clip_{i:04d}")
        if "/" in cid or cid.startswith("."):
            raise ManifestError(f"{p}: row {i + 1}: id {cid!r} is not usable as a file name")
        out.append({"id": cid, "prompt": text, "negative_prompt": row.get("negative_prompt") or None})
    if not out:
        raise ManifestError(f"{p}: no prompts")
    ids = [r["id"] for r in out]
    if len(set(ids)) != len(ids):
        dups = sorted({i for i in ids if ids.count(i) > 1})
        raise ManifestError(f"{p}: duplicate ids: {', '.join(dups[:10])}")
    return out


def run(args: argparse.Namespace) -> int:
    from t2mbench.bench.generation import PromptRow, write_generation
    from t2mbench.bench.sampler_options import sampler_options
    from t2mbench.core.ownership import owning
    from t2mbench.core.results import canonical_options
    from t2mbench.reference_models.generate import generate, load_model

    options = sampler_options(args.sampler, args.sampler_option)
    rows = read_prompts(args.prompts)
    negatives = [r["negative_prompt"] or args.negative_prompt for r in rows]
    if any(n is not None for n in negatives) and not all(n is not None for n in negatives):
        raise ConfigError(
            "negative prompts are given for some prompts only; give one for every prompt or --negative-prompt"
        )
    if args.audio_prompt is not None:
        from t2mbench.bench.audio_prompt import audio_prompt_from_file, check_audio_prompt

        if args.control:
            raise ConfigError("--audio-prompt cannot be combined with --control")
        check_audio_prompt(args.audio_prompt, args.audio_prompt_scale, args.audio_prompt_pool)
    elif args.audio_prompt_weights is not None:
        raise ConfigError("--audio-prompt-weights needs --audio-prompt PATH")
    model = load_model(
        args.model,
        checkpoint=args.checkpoint,
        device=args.device,
        dtype=DTYPES[args.dtype],
        text_encoder=args.text_encoder,
        verify=not args.no_verify,
    )
    control = None
    if args.control_scale and not args.control:
        raise ConfigError("--control-scale needs --control NAME=PATH")
    if args.control or args.inpaint is not None:
        from t2mbench.reference_models.adapters.inputs import control_inputs

        control = control_inputs(model, [r["id"] for r in rows], args.seconds, args.control, args.control_scale,
                                 args.adapter, args.inpaint)
    if args.audio_prompt is not None:
        from t2mbench.core.files import sha256_file

        control = audio_prompt_from_file(model, args.audio_prompt, args.audio_prompt_scale, args.audio_prompt_pool,
                                         args.audio_prompt_weights)
    defining = {k: v for k, v in vars(args).items() if k not in ("func", "command", "out", "overwrite")}
    with owning(args.out, "generate", defining, overwrite=args.overwrite):
        result = generate(
            model,
            [r["prompt"] for r in rows],
            sampler=args.sampler,
            steps=args.steps,
            cfg_scale=args.cfg,
            seconds=args.seconds,
            seed=args.seed,
            batch_size=args.batch,
            negative_prompts=negatives if negatives[0] is not None else None,
            sigma_min=args.sigma_min,
            sigma_max=args.sigma_max,
            seconds_start=args.seconds_start,
            full_window=args.full_window,
            device=args.device,
            sampler_options=options,
            control=control,
        )
        prompts = [PromptRow(r["id"], r["prompt"], negatives[i]) for i, r in enumerate(rows)]
        write_generation(
            args.out, prompts, result, model, seconds=args.seconds, seed=args.seed, prompts_source=args.prompts,
            device=args.device, extra={"model_source": str(args.model),
                                       **({"control": args.control, "control_scale": args.control_scale,
                                           "adapter": args.adapter, "inpaint": args.inpaint} if args.control else {}),
                                       **({"audio_prompt": args.audio_prompt,
                                           "audio_prompt_sha256": sha256_file(args.audio_prompt),
                                           "audio_prompt_scale": args.audio_prompt_scale,
                                           "audio_prompt_pool": args.audio_prompt_pool,
                                           "audio_prompt_weights": args.audio_prompt_weights and {
                                               "path": args.audio_prompt_weights,
                                               "sha256": sha256_file(args.audio_prompt_weights)}}
                                          if args.audio_prompt is not None else {})},
            attributes={"model": str(args.model), "sampler": result.settings["sampler"],
                        "steps": result.settings["steps"], "cfg": result.settings["cfg_scale"],
                        "sampler_options": canonical_options(result.settings["sampler_options"])},
        )  # fmt: skip
    seconds = result.timings["total"]
    print(f"wrote {len(prompts)} clips of {args.seconds:g} s ({result.nfe} NFE each, {seconds:.1f} s) to {args.out}: "
          "*.wav, manifest.jsonl, manifest.parquet, generation.json, provenance.json")
    return 0
