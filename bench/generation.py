"""Writing a generation run: audio files, the clip-set manifest, ``generation.json`` (settings,
NFE, per-stage timings, real-time factor, weights) and the provenance record. Shared by
``t2mbench generate`` and the sweeps, so every generated set looks the same to the scorer."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from t2mbench.core import provenance
from t2mbench.core.audio import save_audio
from t2mbench.core.files import atomic_path, sha256_file, write_json
from t2mbench.core.manifest import ClipRecord, ClipSet, write_manifest
from t2mbench.reference_models.generate import GenerationResult
from t2mbench.reference_models.model import LatentDiffusionModel

RUN_FILE = "generation.json"
LATENTS_FILE = "latents.npy"  # the DiT's output latents [N, C, L] float32, clip i <-> manifest row i


@dataclass(frozen=True)
class PromptRow:
    """One prompt to generate: the clip id (file stem), the text and an optional negative prompt."""

    id: str
    prompt: str
    negative_prompt: str | None = None


def write_generation(
    out: str | Path,
    rows: Sequence[PromptRow],
    result: GenerationResult,
    model: LatentDiffusionModel,
    *,
    seconds: float,
    seed: int,
    prompts_source: str | Path,
    device: str = "cpu",
    attributes: Mapping[str, Any] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> ClipSet | None:
    """Write ``result`` (clip i ↔ ``rows[i]``) into ``out`` as 32-bit float wavs (no
    normalisation, no clipping) with a manifest whose attributes hold each clip's seed,
    negative prompt and ``attributes`` (e.g. sampler, steps, cfg for the scorer's run columns);
    ``extra`` goes into ``generation.json``. When ``result`` holds the sampler's latents they are
    written as ``latents.npy`` (``LATENTS_FILE``), for scores in the DiT's own latent space.
    A latents-only result (``result.audio`` None) writes no audio and no manifest, and returns None."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if result.latents is not None:
        with atomic_path(out / LATENTS_FILE) as tmp, open(tmp, "wb") as f:
            np.save(f, result.latents.numpy().astype(np.float32))
    clips = []
    for i, (row, audio) in enumerate(zip(rows, () if result.audio is None else result.audio)):
        path = save_audio(out / f"{row.id}.wav", audio.numpy(), result.sample_rate, subtype="FLOAT")
        attrs = {"seed": seed + i, "negative_prompt": row.negative_prompt, **dict(attributes or {})}
        clips.append(
            ClipRecord(
                id=row.id, path=Path(path), caption=row.prompt, seconds=seconds, sample_rate=result.sample_rate,
                channels=audio.shape[0], sha256=sha256_file(path), attributes=attrs,
            )
        )  # fmt: skip
    weights = model.checkpoint or {}
    write_json(
        out / RUN_FILE,
        {
            "model": model.info.name,
            **dict(extra or {}),
            "weights": weights,
            "prompts": {"path": str(prompts_source), "clips": len(rows)},
            "settings": result.settings,
            "nfe": result.nfe,
            "timings_seconds": result.timings,
            "real_time_factor": result.timings["total"] / (seconds * len(rows)),
        },
    )
    source = Path(prompts_source)
    inputs = {"prompts": source if source.is_file() else source / "manifest.jsonl"}
    record = provenance.collect(
        seeds={"generation": seed}, inputs=inputs, weights={model.info.name: weights.get("sha256", "")}, device=device,
        extra={"command": "generate", "settings": result.settings},
    )
    provenance.write(out, record)
    if result.audio is None:
        return None
    write_manifest(out, clips)
    return ClipSet(clips, out / "manifest.jsonl")
