"""Does the closed loop measure something? The Stable Audio table layout on the corpus test split.

Rows (each scored against the test split's clips, as the paper scores against MusicCaps):

- ``training data (upper bound)``: the train split's clips as the "generated" set (other pieces
  of the same corpus); ``clap_evaluator`` pairs them with their own captions. No KL: the train
  clips have no test-clip partners.
- ``autoencoded test data``: the test clips at the tiny model's rate (16 kHz mono) through the
  trained tiny VAE (posterior mean, decoded), with the signal metrics against that VAE input.
- ``tiny DiT, trained``: one clip per test caption (the caption and ``seconds_total`` of the
  test clip), ``sampler`` at ``steps`` steps with CFG ``cfg_scale``, seeds ``seed + i``.
- ``tiny DiT, untrained``: the same, with the DiT and number conditioners at their seeded
  initialisation (the training init) and the trained VAE: what the metrics give before training.

Then the trained DiT's audio is scored again with its captions shuffled (a seeded derangement),
and the paired bootstrap CI of ``clap_evaluator(true) − clap_evaluator(shuffled)`` over the
same clips is reported (:func:`t2mbench.metrics.compare.compare_runs`).

The two DiT rows are cells of the cell runner (:mod:`t2mbench.bench.cells`, folders
``DIR/cells/<key>``); the untrained model is a weight file (``DIR/sets/untrained.safetensors``)
that its cell names, so nothing but plain data crosses the seam.

Command: ``t2mbench evidence closed-loop --corpus CORPUS --out DIR`` writes
``closed_loop.json`` / ``.csv`` / ``.md`` and ``closed_loop.png``. Every generated and scored
set stays in ``DIR`` and is reused when the command is run again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from safetensors.torch import save_file

from t2mbench.bench.cells import Cell, Scoring, cell_dir, run_cell
from t2mbench.bench.corpus.splits import split_clips
from t2mbench.bench.evidence.autoencoder import roundtrip_split, write_clips
from t2mbench.bench.plots import pyplot, save_figure
from t2mbench.bench.tables import markdown
from t2mbench.core.errors import ConfigError
from t2mbench.core.files import atomic_path, read_json, write_json
from t2mbench.core.manifest import ClipRecord, load_clipset, write_manifest
from t2mbench.metrics.compare import compare_runs
from t2mbench.metrics.scoring import score
from t2mbench.reference_models import build, load_model
from t2mbench.reference_models.generate import default_cfg_scale
from t2mbench.reference_models.model import LatentDiffusionModel

EVALUATOR_METRICS = ("fd_evaluator", "kl_evaluator", "clap_evaluator")
SIGNAL_METRICS = ("stft", "mel", "sisdr")
INIT_SEED = 0  # bench/train/configs/tiny-dit.json "init_seed": the untrained DiT is the training init


@dataclass(frozen=True)
class LoopSettings:
    """How the DiT rows are generated."""

    sampler: str = "ddim"
    steps: int = 50
    # the tiny config's generation default: the scale t2mbench.bench.evidence.guidance_sweep picks on train clips
    cfg_scale: float = default_cfg_scale("tiny")
    seed: int = 0
    batch_size: int = 16
    shuffle_seed: int = 0


def clip_set(out: Path, clips: Sequence[ClipRecord]) -> Path:
    """A manifest of corpus ``clips`` (files stay where they are) in folder ``out``."""
    if not (out / "manifest.jsonl").is_file():
        write_manifest(out, clips)
    return out


def derangement(n: int, seed: int) -> np.ndarray:
    """A seeded permutation of ``range(n)`` with no fixed point (n ≥ 2)."""
    if n < 2:
        raise ConfigError(f"shuffling captions needs at least 2 clips, got {n}")
    rng = np.random.default_rng(seed)
    while True:
        perm = rng.permutation(n)
        if not np.any(perm == np.arange(n)):
            return perm


def shuffled_captions(generated: Path, out: Path, seed: int) -> Path:
    """``generated``'s manifest with each clip given another clip's caption (same audio files)."""
    if not (out / "manifest.jsonl").is_file():
        clips = list(load_clipset(generated))
        perm = derangement(len(clips), seed)
        write_manifest(out, [replace(c, caption=clips[j].caption) for c, j in zip(clips, perm)])
    return out


def untrained_like(model: LatentDiffusionModel) -> LatentDiffusionModel:
    """``model``'s config with the DiT and conditioners at their seeded initialisation and
    ``model``'s (trained) VAE."""
    torch.manual_seed(INIT_SEED)
    fresh = build(model.info.name)
    fresh.pretransform.load_state_dict(model.pretransform.state_dict())
    fresh.checkpoint = {"untrained": True, "init_seed": INIT_SEED, "vae_from": model.checkpoint}
    return fresh.eval()


def dit_cell(settings: LoopSettings, prompts: Sequence[ClipRecord], model: str,
             checkpoint: Path | None = None) -> Cell:  # fmt: skip
    """The cell that generates one clip per prompt clip (its caption, the first clip's length)."""
    seconds = float(prompts[0].seconds or 10.0)
    own = checkpoint is not None  # the loop's own weight file (the untrained model), not a published one
    return Cell(model, settings.sampler, settings.steps, settings.cfg_scale, settings.seed, len(prompts), seconds,
                checkpoint=str(checkpoint) if own else None, batch_size=settings.batch_size,
                verify=not own)  # fmt: skip


def generated_and_scored(cell: Cell, reference: Path, metrics: Sequence[str], out: Path,
                         progress: bool) -> tuple[Path, dict[str, Any], float]:  # fmt: skip
    """Run ``cell`` through the cell runner with ``reference`` as prompts and reference; returns
    its folder, its scoring summary and its generation seconds per clip."""
    table = run_cell(cell, Scoring(prompts=str(reference), metrics=tuple(metrics)), out, progress=progress)
    folder = cell_dir(out, cell)
    seconds = table[(table.kind == "generation") & (table.metric == "seconds_per_clip")]["value"].iloc[0]
    return folder, read_json(folder / "scores" / "summary.json"), float(seconds)


def untrained_checkpoint(trained: LatentDiffusionModel, path: Path) -> Path:
    """The untrained model (:func:`untrained_like`) as a weight file, written once, so that a cell
    can name it."""
    if not path.is_file():
        state = {k: v.contiguous() for k, v in untrained_like(trained).state_dict().items()}
        with atomic_path(path) as tmp:
            save_file(state, str(tmp))
    return path


def autoencoded_set(model: LatentDiffusionModel, test: Sequence[ClipRecord], out: Path,
                    progress: bool) -> tuple[Path, Path, float]:  # fmt: skip
    """``out/autoencoded`` (the test clips through ``model``'s VAE) and ``out/vae-input`` (the
    same clips at the model's rate: the signal metrics' reference), written once; returns both
    folders and the encode + decode seconds per clip."""
    timing = out / "autoencoded" / "timing.json"
    if not timing.is_file():
        trip = roundtrip_split(model, test, progress=progress)
        write_clips(out / "vae-input", test, trip.inputs, model.sample_rate)
        write_clips(out / "autoencoded", test, trip.decoded, model.sample_rate)
        write_json(timing, {"seconds_per_clip": trip.seconds_per_clip})
    return out / "autoencoded", out / "vae-input", read_json(timing)["seconds_per_clip"]


def scored(generated: Path, reference: Path | None, metrics: Sequence[str], out: Path, system: str,
           progress: bool, settings: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:  # fmt: skip
    """The scoring summary of ``generated`` (cached in ``out``)."""
    if not (out / "summary.json").is_file():
        score(generated, reference, metrics, out, settings=settings, system=system, progress=progress)
    return read_json(out / "summary.json")


def _row(system: str, summary: dict[str, Any], seconds_per_clip: float | None) -> dict[str, Any]:
    row: dict[str, Any] = {"system": system, "seconds_per_clip": seconds_per_clip}
    for name, m in summary["metrics"].items():
        row[name], row[f"{name}_ci_low"], row[f"{name}_ci_high"] = m["value"], m.get("ci_low"), m.get("ci_high")
    return row


def closed_loop(corpus: str | Path, out: str | Path, settings: LoopSettings = LoopSettings(), *,
                model: str = "tiny", progress: bool = True) -> dict[str, Any]:  # fmt: skip
    """Run every row into ``out``; returns ``{"table": rows, "clap_shuffle": comparison,
    "fd_ratio_untrained_over_trained": float, "settings": ...}`` (also written as JSON)."""
    out = Path(out)
    test, train = split_clips(corpus, "test", need_captions=True), split_clips(corpus, "train", need_captions=True)
    reference = clip_set(out / "sets" / "test", test)
    trained = load_model(model).eval()
    rows = []

    s = scored(clip_set(out / "sets" / "train", train), reference, ("fd_evaluator", "clap_evaluator"),
               out / "scores" / "train", "training data (upper bound)", progress)  # fmt: skip
    rows.append(_row("training data (upper bound)", s, None))

    ae_dir, vae_input, ae_seconds = autoencoded_set(trained, test, out / "sets", progress)
    s = scored(ae_dir, reference, EVALUATOR_METRICS, out / "scores" / "autoencoded", "autoencoded test data", progress)
    signal = scored(ae_dir, vae_input, SIGNAL_METRICS, out / "scores" / "autoencoded-signal", "autoencoded", progress,
                    {m: {"sample_rate": trained.sample_rate} for m in SIGNAL_METRICS})  # fmt: skip
    rows.append(_row("autoencoded test data", {"metrics": {**s["metrics"], **signal["metrics"]}}, ae_seconds))

    untrained = untrained_checkpoint(trained, out / "sets" / "untrained.safetensors")
    cells = {"trained": dit_cell(settings, test, model), "untrained": dit_cell(settings, test, model, untrained)}
    folders = {}
    for key, cell in cells.items():
        folders[key], s, seconds = generated_and_scored(cell, reference, EVALUATOR_METRICS, out, progress)
        system = f"tiny DiT, {key} ({settings.sampler} {settings.steps}, CFG {settings.cfg_scale:g})"
        rows.append(_row(system, s, seconds))

    shuffled = shuffled_captions(folders["trained"], out / "sets" / "trained-shuffled", settings.shuffle_seed)
    scored(shuffled, None, ("clap_evaluator",), out / "scores" / "trained-shuffled", "trained, shuffled captions",
           progress)  # fmt: skip
    comparison = compare_runs(folders["trained"] / "scores" / "scores.parquet",
                              out / "scores" / "trained-shuffled" / "scores.parquet", seed=settings.seed)  # fmt: skip
    clap = comparison[comparison.metric == "clap_evaluator"].iloc[0].to_dict()

    table = pd.DataFrame(rows)
    fd = table.set_index("system")["fd_evaluator"]
    result = {
        "table": table.replace({np.nan: None}).to_dict(orient="records"),
        "clap_shuffle": {k: (v.item() if hasattr(v, "item") else v) for k, v in clap.items()},
        "fd_ratio_untrained_over_trained": float(fd.iloc[3] / fd.iloc[2]),
        "settings": settings.__dict__,
        "test_clips": len(test),
        "train_clips": len(train),
    }
    write_json(out / "closed_loop.json", result)
    with atomic_path(out / "closed_loop.csv") as tmp:
        table.to_csv(tmp, index=False)
    with atomic_path(out / "closed_loop.md") as tmp:
        tmp.write_text(render(result) + "\n", encoding="utf-8")
    plot(table, result["clap_shuffle"], out / "closed_loop.png")
    return result


def render(result: dict[str, Any]) -> str:
    """The Stable Audio table layout as markdown, then the checks."""
    table = pd.DataFrame(result["table"])
    shown = pd.DataFrame({"system": table["system"]})
    for name in (*EVALUATOR_METRICS, *SIGNAL_METRICS):
        if name in table:
            shown[name] = [
                "-" if pd.isna(v) else f"{v:.3g} [{lo:.3g}, {hi:.3g}]" if pd.notna(lo) else f"{v:.3g}"
                for v, lo, hi in zip(table[name], table[f"{name}_ci_low"], table[f"{name}_ci_high"])
            ]  # fmt: skip
    shown["inference s/clip (CPU)"] = ["-" if pd.isna(v) else f"{v:.2f}" for v in table["seconds_per_clip"]]
    c, ratio = result["clap_shuffle"], result["fd_ratio_untrained_over_trained"]
    return "\n".join([
        f"{result['test_clips']} test clips against {result['train_clips']} train clips; 95% bootstrap CIs.",
        "",
        markdown(shown.set_index("system")),
        "",
        f"fd_evaluator untrained / trained = {ratio:.2f} (target >= 3: {'met' if ratio >= 3 else 'NOT met'})",
        f"clap_evaluator with true captions {c['mean_a']:.4f}, shuffled {c['mean_b']:.4f}: difference "
        f"{c['difference']:.4f}, 95% CI [{c['ci_low']:.4f}, {c['ci_high']:.4f}] over {c['n_clips']} clips "
        f"(CI excludes zero: {'yes' if c['ci_low'] > 0 else 'NO'})",
    ])  # fmt: skip


def plot(table: pd.DataFrame, clap: dict[str, Any], png: Path) -> Path:
    """FD per row with its CI, and the true-versus-shuffled CLAP means."""
    plt = pyplot()

    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 3.6), gridspec_kw={"width_ratios": [3, 1]})
    y = np.arange(len(table))
    a.barh(y, table["fd_evaluator"], color="tab:blue")
    # the FD bootstrap interval is drawn as is: resampled clip sets bias FD upward, so it need not contain the bar
    a.hlines(y, table["fd_evaluator_ci_low"], table["fd_evaluator_ci_high"], color="black", label="95% CI")
    a.legend(loc="lower right")
    a.set_yticks(y, table["system"])
    a.invert_yaxis()
    a.set_xlabel("fd_evaluator (lower is better)")
    a.grid(axis="x", alpha=0.3)
    b.bar(["true", "shuffled"], [clap["mean_a"], clap["mean_b"]], color=["tab:green", "tab:gray"])
    b.set_title(f"clap_evaluator, diff CI [{clap['ci_low']:.3f}, {clap['ci_high']:.3f}]", fontsize=9)
    fig.tight_layout()
    return save_figure(fig, png)
