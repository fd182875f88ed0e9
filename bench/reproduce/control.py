"""The control table (MuseControlLite, Tsai et al. 2025, main table) on the tiny model: rows base / ControlNet /
MuseControlLite adapter with the shipped trained adapters, on test-split clips of the benchmark corpus.

Per clip the melody condition is extracted from the clip's own audio (:mod:`t2mbench.reference_models.adapters.
conditions`, the model's latent grid) and the clip's caption is the prompt; every row uses the same seeds. Columns:
the evaluator metrics (``fd_evaluator``, ``kl_evaluator``, ``clap_evaluator``; t2mbench's own small models, not
openl3/passt/CLAP) against the test clips, melody accuracy (:mod:`t2mbench.metrics.melody`, MuseControlLite's
chroma measure at 44.1 kHz) against each clip's reference, trainable parameters, seconds per generated clip.

Control check: each adapter also generates with a **shuffled** melody (clip i takes clip i+1's); the melody
accuracy against clip i's own reference with the true melody minus with the shuffled one, per clip, gets a paired
bootstrap CI (:func:`t2mbench.metrics.bootstrap.paired_difference_ci`). The adapter controls measurably when the
interval excludes zero.

Inpainting check (when the audio adapter is shipped): the middle quarter of each clip is regenerated with the
rest of the clip's clean latents as the audio condition (:func:`context_errors`); the latent distance to the
reference outside that region, text only minus with the audio, gets the same paired CI.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from t2mbench.bench.cells import cached_model
from t2mbench.bench.corpus import build_corpus
from t2mbench.bench.corpus.splits import load_split_audio, split_clips
from t2mbench.bench.evidence.autoencoder import write_clips
from t2mbench.bench.reproduce.spec import Reproduced
from t2mbench.core.dsp.resample_hann import resample_hann
from t2mbench.metrics.bootstrap import mean_ci, paired_difference_ci
from t2mbench.metrics.melody import SAMPLE_RATE as MELODY_SR
from t2mbench.metrics.melody import melody_accuracy, melody_classes
from t2mbench.metrics.scoring import score
from t2mbench.reference_models.adapters.conditions import melody_condition
from t2mbench.reference_models.adapters.guidance import ControlInputs
from t2mbench.reference_models.adapters.model import (
    ADAPTER_WEIGHTS,
    AUDIO_ADAPTER,
    load_adapter,
    load_shipped_adapter,
    span_frames,
)
from t2mbench.reference_models.generate import generate, latent_length

METRICS = {"fd_evaluator": "fd_evaluator (not FD_openl3)", "kl_evaluator": "kl_evaluator (not KL_passt)",
           "clap_evaluator": "clap_evaluator (not CLAP)"}
CONTROL_SCALE = 2.0  # MuseControlLite's evaluation runs (w_c = 2.0)
STEPS = 25
LABELS = {"musecontrollite": "MuseControlLite adapter (tiny)", "controlnet": "ControlNet (tiny)"}


def _melody_acc(generated: np.ndarray, references: list[np.ndarray], sample_rate: int) -> list[float]:
    def classes(x: np.ndarray) -> np.ndarray:
        return melody_classes(resample_hann(x.mean(axis=0, keepdims=True), sample_rate, MELODY_SR)[0])

    return [melody_accuracy(classes(g), classes(r)) for g, r in zip(generated, references)]


def context_errors(base, model, prompts: list[str], reference: torch.Tensor, region: tuple[int, int], seed: int,
                   steps: int = STEPS, audio_scale: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """The inpainting check: per clip, the mean squared error between the generated latents and the
    reference's clean latents ``reference`` ``[N, C, L]`` on the frames outside ``region`` = ``[a, b)`` (the
    given context), ``(text only, with the audio condition)``: the shipped ``tiny`` ``base`` alone, and the
    audio adapter ``model`` with the reference masked to zero on the region (w_a = ``audio_scale``); same
    prompts, seed and steps, one batch. Lower with the audio condition means the context is kept."""
    from t2mbench.reference_models.adapters.model import inpainting_masks

    n, _, frames = reference.shape
    mask = inpainting_masks(n, frames, region)["audio_mask"]
    seconds = frames * base.downsampling_ratio / base.sample_rate

    def error(control: ControlInputs | None) -> np.ndarray:
        out = generate(base, prompts, steps=steps, seconds=seconds, seed=seed, batch_size=n, control=control,
                       decode=False).latents
        return (((out - reference) ** 2).mean(dim=1) * mask).sum(dim=1).numpy() / float(mask[0].sum())

    return error(None), error(ControlInputs(model, {"audio": reference}, {"audio": audio_scale}, {"audio": mask}))


def _ci(values: list[float]) -> str:
    lo, hi = mean_ci(values)
    return f"{np.mean(values):.3f} [{lo:.3f}, {hi:.3f}]"


def control_tables(out: str | Path, clips: int = 16, seconds: float = 2.0, seed: int = 1, *,
                   progress: bool = True) -> tuple[list[Reproduced], list[str]]:
    """Run the control table into ``out``; returns the tables and the rows that ran."""
    out = Path(out)
    t0 = time.perf_counter()
    build_corpus(out / "corpus", clips, seconds, seed, split="test", progress=progress)
    records = split_clips(out / "corpus", "test")[:clips]
    base = cached_model("tiny", None, True, "cpu")
    frames = latent_length(base, seconds)
    hop, sr = base.downsampling_ratio, base.sample_rate
    audio = load_split_audio(records, sr, 1, frames * hop, progress=progress).numpy()
    references = [a[:, : round(seconds * sr)] for a in audio]
    reference_dir = write_clips(out / "reference", records, references, sr)
    melody = torch.from_numpy(np.stack([melody_condition(a, sr, hop, frames) for a in audio]))
    prompts = [r.caption or "" for r in records]
    cfg = float(base.info.generation["cfg_scale"])

    def run(label: str, control: ControlInputs | None) -> dict:
        result = generate(base, prompts, steps=STEPS, seconds=seconds, seed=seed, batch_size=clips, control=control)
        gen = result.audio.numpy()
        folder = write_clips(out / "generated" / label.split()[0].lower(), records, list(gen), sr)
        return {"audio": gen, "folder": folder, "seconds": result.timings["total"] / len(prompts),
                "melody": _melody_acc(gen, references, sr)}

    generate(base, prompts[:1], steps=2, seconds=seconds, seed=seed)  # warm-up: the timed rows start even
    runs = {"base": run("base", None)}
    controlled = {}
    for kind in ADAPTER_WEIGHTS:
        model = load_adapter(base, kind)
        if model is None:
            continue
        controlled[kind] = model.trainable_parameters()
        runs[kind] = run(kind, ControlInputs(model, {"melody": melody}, {"melody": CONTROL_SCALE}))
        runs[f"{kind} shuffled"] = run(f"{kind}-shuffled", ControlInputs(model, {"melody": melody.roll(1, 0)},
                                                                         {"melody": CONTROL_SCALE}))
    rows, checks = {}, []
    for key in ("base", *controlled):
        r = runs[key]
        s = score(r["folder"], reference_dir, list(METRICS), out / "scores" / key, system=key, use_cache=False,
                  progress=progress).summary["metrics"]
        rows[LABELS.get(key, "base (tiny, text only)")] = {
            **{name: f"{s[m]['value']:.3g} [{s[m]['ci_low']:.3g}, {s[m]['ci_high']:.3g}]"
               for m, name in METRICS.items()},
            "melody acc": _ci(r["melody"]),
            "trainable params": f"{controlled.get(key, 0):,}",
            "seconds per clip": f"{r['seconds']:.2f}",
        }
        if key in controlled:
            d, lo, hi = paired_difference_ci(r["melody"], runs[f"{key} shuffled"]["melody"])
            verdict = "excludes zero: the melody controls" if lo > 0 or hi < 0 else "includes zero: not shown"
            checks.append(f"{LABELS[key]}: melody acc with the true melody {np.mean(r['melody']):.3f}, shuffled "
                          f"{np.mean(runs[f'{key} shuffled']['melody']):.3f}; paired difference {d:+.3f} "
                          f"[{lo:+.3f}, {hi:+.3f}] (95% bootstrap over clips) {verdict}.")
    audio_model = load_shipped_adapter(base, AUDIO_ADAPTER)
    if audio_model is not None:
        span = (0.375 * seconds, 0.625 * seconds)
        with torch.inference_mode():
            reference = base.pretransform.encode(torch.from_numpy(audio).float(), sample=False)
        without, with_audio = context_errors(base, audio_model, prompts, reference,
                                             span_frames(*span, sr, hop, frames), seed)
        d, lo, hi = paired_difference_ci(without, with_audio)
        verdict = "excludes zero: the context is kept" if lo > 0 or hi < 0 else "includes zero: not shown"
        checks.append(f"In/outpainting (audio adapter, {audio_model.trainable_parameters():,} parameters): "
                      f"regenerating [{span[0]:g}, {span[1]:g}) s, the latent MSE to the reference outside it is "
                      f"{np.mean(without):.3f} text only and {np.mean(with_audio):.3f} with the audio (w_a 1); "
                      f"paired difference {d:+.3f} [{lo:+.3f}, {hi:+.3f}] {verdict}.")
    frame = pd.DataFrame.from_dict(rows, orient="index")
    frame.index.name = "model (ours)"
    missing = [LABELS[k] for k in ADAPTER_WEIGHTS if k not in controlled]
    missing += [] if audio_model is not None else ["the audio (in/outpainting) adapter"]
    notes = [f"{len(records)} test-split clips of {seconds:g} s (benchmark corpus, seed {seed}); tiny model, "
             f"dpmpp_2m {STEPS} steps, text CFG {cfg:g}, control scale {CONTROL_SCALE:g} (multi-condition CFG); "
             "95% bootstrap CIs over clips. Melody condition from each clip's own audio (top-4 constant-Q bins).",
             *checks,
             *([f"Not shipped in this checkout (no row): {', '.join(missing)}."] if missing else []),
             f"Ran in {time.perf_counter() - t0:.0f} s."]
    ran = ["base", *(LABELS[k] for k in controlled)]
    return [Reproduced("control table on the tiny model (ours; evaluator metrics)", frame, notes)], ran
