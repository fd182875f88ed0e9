"""The tiny Oobleck VAE's reconstruction table on the corpus's test split, in the layout of the
Stable Audio Open autoencoder table (STFT distance, mel distance, SI-SDR, latent rate, latent
channels), next to a trivial baseline.

Rows:

- ``tiny VAE (ours)``: each test clip, decoded at the model's rate and channel count (16 kHz
  mono for ``tiny``: channel mean, then soxr HQ) and zero-padded to a multiple of the
  downsampling ratio (512), is encoded deterministically (the posterior mean, no sampling) and
  decoded; the output is cropped back to the clip's length. Latents: 16000 / 512 = 31.25 Hz ×
  32 channels = 1000 values per second.
- ``resample to 1 kHz and back``: the same 16 kHz input resampled to 1000 Hz and back to
  16 kHz. Why this baseline: it keeps exactly as many values per second as the VAE's latent
  (1000 Hz × 1 channel = 31.25 Hz × 32 channels), so the table shows what the learned code buys
  over the plainest code of equal size (a 500 Hz band limit). The resampler is torchaudio's
  default Hann-windowed sinc (:func:`t2mbench.core.dsp.resample_hann.resample_hann`), because
  :func:`t2mbench.core.audio.resample` (soxr) refuses rates below 4 kHz.

Both are scored against the 16 kHz input (not the corpus files at their native rate) with the
registered ``stft``, ``mel`` and ``sisdr`` metrics at 16 kHz through :func:`t2mbench.metrics.scoring.score`
(mean over clips, seeded bootstrap 95% CIs). The input and both reconstructions are written as
32-bit float wavs with manifests under ``DIR/audio/{reference,vae,baseline}`` and the scores
under ``DIR/scores/{vae,baseline}``.

Command: ``t2mbench evidence autoencoder --corpus CORPUS --vae VAE.safetensors --out DIR [--clips N]``
writes ``autoencoder.json``, ``autoencoder.csv``, ``autoencoder.md`` and
``autoencoder.png`` (log-magnitude spectrograms of one test clip: input, VAE, baseline) and
prints the Markdown table.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from t2mbench.bench.corpus.splits import load_split_audio, split_clips
from t2mbench.bench.plots import pyplot, save_figure
from t2mbench.bench.tables import markdown
from t2mbench.core.audio import fit_length, save_audio
from t2mbench.core.dsp.resample_hann import resample_hann
from t2mbench.core.dsp.stft import stft_magnitude
from t2mbench.core.errors import ConfigError, ManifestError
from t2mbench.core.files import atomic_path, sha256_file, write_json
from t2mbench.core.manifest import ClipRecord, write_manifest
from t2mbench.core.progress import progress_bar
from t2mbench.metrics.scoring import score
from t2mbench.reference_models import LatentDiffusionModel, build
from t2mbench.reference_models.autoencoder import OobleckAutoencoder
from t2mbench.reference_models.checkpoints import load_vae_state, read_state_dict

CONFIG = "tiny"
SPLIT = "test"
METRICS = ("stft", "mel", "sisdr")
VAE_LABEL = "tiny VAE (ours)"
BATCH = 4
COLUMNS = ["system", *(f"{m}{s}" for m in METRICS for s in ("", "_ci_low", "_ci_high")),
           "latent_rate_hz", "latent_channels", "values_per_second"]  # fmt: skip
HEADERS = {"stft": "STFT distance ↓", "mel": "mel distance ↓", "sisdr": "SI-SDR ↑"}


def load_vae(vae_file: str | Path) -> LatentDiffusionModel:
    """``build("tiny")`` with the VAE state of ``vae_file`` (safetensors) in ``.pretransform.model``."""
    model = build(CONFIG)
    load_vae_state(model, read_state_dict(vae_file), vae_file, CONFIG)
    return model.eval()


@torch.inference_mode()
def vae_roundtrip(vae: OobleckAutoencoder, audio: torch.Tensor, *, progress: bool = True) -> torch.Tensor:
    """``decode(posterior mean)`` of float32 ``[N, C, T]`` (T a multiple of the ratio), in
    batches of ``BATCH`` clips → ``[N, C, T]``."""
    batches = progress_bar(audio.split(BATCH), desc="vae", unit="batch", disable=not progress)
    return torch.cat([vae.decode(vae.encode(a, sample=False)[0]) for a in batches])


def resample_roundtrip(audio: np.ndarray, sample_rate: int, rate: int) -> np.ndarray:
    """``[C, T]`` at ``sample_rate`` Hz, resampled to ``rate`` Hz and back (Hann-windowed sinc),
    cropped or padded to ``T`` samples → float32 ``[C, T]``."""
    low = resample_hann(audio, sample_rate, rate)
    return fit_length(resample_hann(low, rate, sample_rate), audio.shape[-1])


def write_clips(folder: Path, clips: Sequence[ClipRecord], audio: Sequence[np.ndarray], sample_rate: int) -> Path:
    """``audio[i]`` (``[C, T]`` at ``sample_rate`` Hz) as ``folder/<clips[i].id>.wav`` (32-bit
    float, unclipped) with a manifest keeping each clip's id and caption; returns ``folder``."""
    records = []
    for clip, x in zip(clips, audio):
        path = save_audio(folder / f"{clip.id}.wav", x, sample_rate, subtype="FLOAT")
        records.append(ClipRecord(
            id=clip.id, path=path, caption=clip.caption, seconds=x.shape[-1] / sample_rate, sample_rate=sample_rate,
            channels=x.shape[0], sha256=sha256_file(path), split=clip.split,
        ))  # fmt: skip
    write_manifest(folder, records)
    return folder


@dataclass(frozen=True)
class Roundtrip:
    """Clips at the model's rate and channels (``inputs``, each ``[C, T_i]``), their VAE
    reconstructions (``decoded``, same shapes) and the encode + decode seconds per clip."""

    inputs: list[np.ndarray]
    decoded: list[np.ndarray]
    seconds_per_clip: float


def roundtrip_split(model: LatentDiffusionModel, records: Sequence[ClipRecord], *, progress: bool = True) -> Roundtrip:
    """Decode ``records`` at ``model``'s rate and channels, zero-pad to a multiple of its
    downsampling ratio, run its VAE's :func:`vae_roundtrip` and crop back to each clip's length."""
    no_length = [c.id for c in records if not c.seconds]
    if no_length:
        raise ManifestError(f"clips without a length in seconds: {no_length[:10]}")
    sr, channels, ratio = model.sample_rate, model.info.audio_channels, model.downsampling_ratio
    lengths = [round(c.seconds * sr) for c in records]
    audio = load_split_audio(records, sr, channels, math.ceil(max(lengths) / ratio) * ratio, progress=progress)
    start = time.perf_counter()
    decoded = vae_roundtrip(model.pretransform.model, audio, progress=progress).numpy()
    seconds = (time.perf_counter() - start) / len(records)
    return Roundtrip([audio[i, :, :n].numpy() for i, n in enumerate(lengths)],
                     [decoded[i, :, :n] for i, n in enumerate(lengths)], seconds)  # fmt: skip


def autoencoder_table(
    corpus: str | Path, vae_file: str | Path, out: str | Path, *, clips: int | None = None, progress: bool = True
) -> pd.DataFrame:
    """The VAE and baseline rows (columns ``COLUMNS``) on the first ``clips`` test clips (all
    by default); writes ``autoencoder.{json,csv,md,png}``, the audio and the scores into ``out``."""
    out = Path(out)
    model = load_vae(vae_file)
    sr, channels, ratio = model.sample_rate, model.info.audio_channels, model.downsampling_ratio
    if clips is not None and clips < 1:
        raise ConfigError(f"clips must be >= 1, got {clips}")
    records = split_clips(corpus, SPLIT)[:clips]
    trip = roundtrip_split(model, records, progress=progress)
    inputs = trip.inputs

    latent_rate, latent_channels = sr / ratio, model.latent_channels
    values_per_second = latent_rate * latent_channels
    rate = round(values_per_second / channels)  # the baseline keeps as many values per second
    systems = {
        "vae": (VAE_LABEL, trip.decoded, latent_rate, latent_channels),
        "baseline": (f"resample to {rate / 1000:g} kHz and back", [resample_roundtrip(x, sr, rate) for x in inputs],
                     float(rate), channels),
    }  # fmt: skip
    reference = write_clips(out / "audio" / "reference", records, inputs, sr)
    settings = {m: {"sample_rate": sr} for m in METRICS}
    rows = []
    for key, (label, recon, rate_hz, n_channels) in systems.items():
        generated = write_clips(out / "audio" / key, records, recon, sr)
        run = score(generated, reference, list(METRICS), out / "scores" / key, settings=settings, system=label,
                    use_cache=False, progress=progress)  # fmt: skip
        row: dict[str, object] = {"system": label}
        for m in METRICS:
            s = run.summary["metrics"][m]
            row.update({m: s["value"], f"{m}_ci_low": s["ci_low"], f"{m}_ci_high": s["ci_high"]})
        rows.append({**row, "latent_rate_hz": rate_hz, "latent_channels": n_channels,
                     "values_per_second": rate_hz * n_channels})  # fmt: skip
    table = pd.DataFrame(rows, columns=COLUMNS)

    write_json(out / "autoencoder.json", {
        "corpus": str(corpus), "split": SPLIT, "clips": len(records), "sample_rate": sr, "channels": channels,
        "vae": {"path": str(vae_file), "sha256": sha256_file(vae_file), "config": CONFIG},
        "baseline": f"resample_hann {sr} -> {rate} -> {sr} Hz (equal values per second to the latent)",
        "rows": table.to_dict("records"),
    })  # fmt: skip
    with atomic_path(out / "autoencoder.csv") as tmp:
        table.to_csv(tmp, index=False)
    with atomic_path(out / "autoencoder.md") as tmp:
        tmp.write_text(markdown_table(table) + "\n")
    plot_spectrograms(
        {f"input ({sr / 1000:g} kHz)": inputs[0], **{label: recon[0] for label, recon, _, _ in systems.values()}},
        sr, out / "autoencoder.png", title=f"{records[0].id} ({SPLIT} split)",
    )  # fmt: skip
    return table


def markdown_table(table: pd.DataFrame) -> str:
    """The rows of :func:`autoencoder_table` as the SAO autoencoder table: ``value [CI]`` cells."""
    cells = {
        HEADERS[m]: [f"{v:.3g} [{lo:.3g}, {hi:.3g}]" for v, lo, hi in
                     zip(table[m], table[f"{m}_ci_low"], table[f"{m}_ci_high"])]
        for m in METRICS
    }  # fmt: skip
    cells["latent rate"] = [f"{r:g} Hz" for r in table["latent_rate_hz"]]
    cells["latent channels"] = [str(int(c)) for c in table["latent_channels"]]
    frame = pd.DataFrame(cells, index=pd.Index(table["system"], name="system"))
    return markdown(frame)


def plot_spectrograms(signals: Mapping[str, np.ndarray], sample_rate: int, png: str | Path, *, title: str) -> Path:
    """One panel per ``[C, T]`` signal (first channel): 20·log10 |STFT| (n_fft 1024, hop 256)
    in dB, time in s against frequency in kHz, on the first signal's 80 dB colour range."""
    plt = pyplot()

    n_fft, hop = 1024, 256
    spectra = {k: 20 * np.log10(stft_magnitude(torch.from_numpy(np.ascontiguousarray(x[:1])), n_fft, hop)[0].numpy())
               for k, x in signals.items()}  # fmt: skip
    top = float(next(iter(spectra.values())).max())
    fig, axes = plt.subplots(len(spectra), 1, figsize=(8, 2.4 * len(spectra)), sharex=True, squeeze=False)
    for ax, (label, db) in zip(axes[:, 0], spectra.items()):
        extent = (0.0, db.shape[1] * hop / sample_rate, 0.0, sample_rate / 2000)
        im = ax.imshow(db, origin="lower", aspect="auto", extent=extent, vmin=top - 80, vmax=top, cmap="magma")
        ax.set_title(label)
        ax.set_ylabel("kHz")
    axes[-1, 0].set_xlabel("time (s)")
    fig.colorbar(im, ax=axes[:, 0].tolist(), label="dB")
    fig.suptitle(title)
    return save_figure(fig, png)
