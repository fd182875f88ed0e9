"""The cell runner: the one seam every generate-and-score run goes through.

A :class:`Cell` is plain data: which model (a shipped config name, a config file or folder, an
optional checkpoint path), which sampler with its options, steps, CFG scale, seed, clip count,
clip length and batch size. Its content key (:attr:`Cell.key`) names its folder, so the same
cell lands in the same folder wherever and whenever it runs. A :class:`Scoring` says what every
cell of a run is scored against: the prompts' clip set, the reference set and the metrics.

:func:`run_cell` generates the cell's clips (one per prompt: the first ``clips`` clips of the
prompt set, clip i seeded ``seed + i``), times each stage, scores them, and writes the folder:

    <out>/cells/<key>/cell.json            the cell and its scoring, as plain JSON
    <out>/cells/<key>/*.wav, manifest.*    the generated clips (t2mbench.bench.generation)
    <out>/cells/<key>/generation.json      settings, NFE, per-stage seconds, "timing": the timing
                                           harness's stages and per-step seconds (t2mbench.bench.timing)
    <out>/cells/<key>/scores/              the scoring engine's folder
    <out>/cells/<key>/results.parquet|csv  the cell's rows in the result schema (written last)

A latents-only cell (``audio=False``) writes ``latents.npy`` and ``generation.json`` and no audio, and is
not scored (its scores are in latent space: ``t2mbench.bench.reproduce.latent_fd``).

A cell whose ``results.parquet`` exists is read back, one whose audio exists is only scored,
so a killed run resumes where it stopped. Only plain data crosses the seam (no model object),
so an executor can run a cell in another process or on another machine.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, fields
from functools import lru_cache
from pathlib import Path
from typing import Any

import pandas as pd

from t2mbench.bench.generation import RUN_FILE, PromptRow, write_generation
from t2mbench.bench.timing import Clock, split_marks
from t2mbench.core import results
from t2mbench.core.errors import ConfigError
from t2mbench.core.faults import pause_point
from t2mbench.core.files import read_json, write_json
from t2mbench.core.manifest import load_clipset
from t2mbench.metrics.scoring import Shards, build_metrics, score
from t2mbench.reference_models import generate, load_model
from t2mbench.reference_models.model import LatentDiffusionModel

CELL_FILE = "cell.json"
RESULTS = "results"  # results.parquet / results.csv
StageCallback = Callable[[str, Mapping[str, Any]], None]


@dataclass(frozen=True)
class Cell:
    """One generation setting, as plain data (JSON round trip: :meth:`to_dict` / :meth:`from_dict`).

    ``model``: a shipped config name (``tiny``), a config file or a folder; ``checkpoint``: a
    weight file instead of the model's own. ``cfg``: the classifier-free guidance scale;
    ``seconds``: clip length in seconds; ``clips``: how many prompts (the first of the set);
    ``sampler_options``: the sampler's keyword options (e.g. ``{"eta": 0.5}``).
    ``batch_size`` is part of the key because DDPM/DDIM with η > 0 draw step noise per batch.
    ``verify=False`` loads a ``checkpoint`` that is not the model's published or shipped file
    (a fine-tune, a conversion) on purpose. ``audio=False``: the cell generates and times the
    sampler's latents only (no VAE decoding, no audio, no scores), for scores in the DiT's latent
    space (``fd_latent``); it runs under a scoring with no metrics.
    """

    model: str
    sampler: str
    steps: int
    cfg: float
    seed: int
    clips: int
    seconds: float
    sampler_options: Mapping[str, Any] = field(default_factory=dict)
    checkpoint: str | None = None
    batch_size: int = 16
    verify: bool = True
    audio: bool = True

    def __post_init__(self) -> None:
        checks = [
            (isinstance(self.steps, int) and self.steps >= 1, "steps", "an integer >= 1"),
            (isinstance(self.clips, int) and self.clips >= 1, "clips", "an integer >= 1"),
            (isinstance(self.batch_size, int) and self.batch_size >= 1, "batch_size", "an integer >= 1"),
            (isinstance(self.seed, int) and self.seed >= 0, "seed", "an integer >= 0"),
            (_finite(self.cfg) and self.cfg >= 0, "cfg", "a finite number >= 0"),
            (_finite(self.seconds) and self.seconds > 0, "seconds", "a finite number > 0"),
            (isinstance(self.model, str) and bool(self.model), "model", "a config name or path"),
            (isinstance(self.sampler, str) and bool(self.sampler), "sampler", "a sampler name"),
            (isinstance(self.verify, bool), "verify", "true or false"),
            (isinstance(self.audio, bool), "audio", "true or false"),
        ]
        for ok, name, want in checks:
            if not ok:
                raise ConfigError(f"cell {name} must be {want}, got {getattr(self, name)!r}")
        object.__setattr__(self, "sampler_options", dict(sorted(dict(self.sampler_options).items())))

    def to_dict(self) -> dict[str, Any]:
        """The cell as JSON-ready data (numbers as numbers, options sorted). ``audio`` appears only when False,
        so the keys of audio cells are what they were before latents-only cells existed."""
        data = asdict(self) | {"cfg": float(self.cfg), "seconds": float(self.seconds)}
        if self.audio:
            del data["audio"]
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Cell:
        """A cell from :meth:`to_dict` data; unknown keys are a ConfigError naming them."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown cell keys {', '.join(unknown)}; a cell has {', '.join(sorted(known))}")
        return cls(**data)

    @property
    def key(self) -> str:
        """``<sampler>-<steps>-<12 hex of the sha256 of the canonical JSON>``: stable across runs and machines."""
        digest = hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()[:12]
        return f"{self.sampler}-{self.steps}-{digest}"


@dataclass(frozen=True)
class Scoring:
    """What every cell of a run is scored against.

    ``prompts``: the clip set whose captions (in order) are the prompts and whose ids name the
    generated clips; ``reference``: the set scored against (default: ``prompts``); ``metrics``:
    registry names (none: the cells are generated and timed only); ``settings``: per-metric settings.
    """

    prompts: str
    metrics: tuple[str, ...]
    reference: str | None = None
    settings: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # a bad metric name, setting or value fails here, when the run is prepared, not after
        # the first cell has generated its audio
        if self.metrics or self.settings:
            build_metrics(self.metrics, self.settings)

    def to_dict(self) -> dict[str, Any]:
        """The scoring as JSON-ready data (the reference resolved)."""
        return {"prompts": str(self.prompts), "reference": str(self.reference or self.prompts),
                "metrics": list(self.metrics), "settings": {k: dict(v) for k, v in self.settings.items()}}  # fmt: skip

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Scoring:
        """A scoring from :meth:`to_dict` data."""
        return cls(data["prompts"], tuple(data["metrics"]), data.get("reference"), data.get("settings", {}))


def cell_dir(out: str | os.PathLike, cell: Cell) -> Path:
    """The folder of ``cell`` in run folder ``out``."""
    return Path(out) / "cells" / cell.key


def run_cell(cell: Cell, scoring: Scoring, out: str | os.PathLike, *, device: str = "cpu",
             progress: bool = True, on_stage: StageCallback | None = None,
             shards: Shards | None = None) -> pd.DataFrame:  # fmt: skip
    """Generate, time, score and write ``cell`` under ``out``; returns its rows (result schema).

    ``shards``: score the clips on workers that keep their embedders loaded (the Ray executor's
    scoring actors; :func:`t2mbench.metrics.scoring.score`); ``None``: in this process.

    ``on_stage(stage, info)`` reports where the cell is: ``("generating", {"cell", "step", "steps",
    "batch", "batches"})`` after every denoising step, ``("scoring", {"cell"})`` before scoring and
    ``("done", {"cell"})`` at the end (a progress bar's postfix; :class:`t2mbench.bench.sweep`).

    Raises:
        ConfigError: the folder holds this cell scored another way, too few prompts, bad settings.
    """
    if not cell.audio and scoring.metrics:
        raise ConfigError(f"cell {cell.key} generates latents only (audio=False): it cannot be scored on audio "
                          f"({', '.join(scoring.metrics)}); run it with no metrics")  # fmt: skip
    folder = cell_dir(out, cell)
    record = {"cell": cell.to_dict(), "scoring": scoring.to_dict()}
    if (folder / CELL_FILE).is_file():
        held = read_json(folder / CELL_FILE)
        if held != json.loads(json.dumps(record)):
            raise ConfigError(
                f"{folder} holds cell {cell.key} scored another way ({held['scoring']}); use another --out"
            )
    else:
        write_json(folder / CELL_FILE, record)
    if (folder / f"{RESULTS}.parquet").is_file():
        return results.read(folder / f"{RESULTS}.parquet")
    prompt_set = load_clipset(scoring.prompts)
    if len(prompt_set) < cell.clips:
        raise ConfigError(f"cell asks for {cell.clips} clips; {scoring.prompts} has {len(prompt_set)} prompts")
    prompts = [PromptRow(c.id, c.caption or "") for c in list(prompt_set)[: cell.clips]]
    # the file a finished generation writes last: the manifest (audio) or generation.json (latents only, which
    # writes latents.npy before it)
    if not (folder / ("manifest.jsonl" if cell.audio else RUN_FILE)).is_file():
        model = cached_model(cell.model, cell.checkpoint, cell.verify, device)
        batches = math.ceil(cell.clips / cell.batch_size)
        clock = Clock(device)  # the timing harness's marks: per-step seconds into generation.json

        def step(info: Mapping[str, Any]) -> None:
            clock.step(info)
            if on_stage is not None:
                on_stage("generating", {"cell": cell.key, "step": int(info["i"]) + 1, "steps": cell.steps,
                                        "batch": int(info["batch"]) + 1, "batches": batches})  # fmt: skip
            pause_point("generating")

        result = generate(
            model, [p.prompt for p in prompts], sampler=cell.sampler, steps=cell.steps, cfg_scale=cell.cfg,
            seconds=cell.seconds, seed=cell.seed, batch_size=cell.batch_size, device=device,
            sampler_options=cell.sampler_options, callback=step, stage_hook=clock.mark, decode=cell.audio,
        )  # fmt: skip
        attributes = {"model": cell.model, "sampler": cell.sampler, "steps": cell.steps, "cfg": cell.cfg,
                      "sampler_options": results.canonical_options(cell.sampler_options)}  # fmt: skip
        write_generation(folder, prompts, result, model, seconds=cell.seconds, seed=cell.seed,
                         prompts_source=scoring.prompts, device=device, attributes=attributes,
                         extra={"cell": cell.to_dict(), "timing": split_marks(clock.read())})  # fmt: skip
    table = generation_rows(cell, read_json(folder / RUN_FILE))
    if scoring.metrics:
        if on_stage is not None:
            on_stage("scoring", {"cell": cell.key})
        pause_point("scoring")
        scored = score(
            folder, scoring.reference or scoring.prompts, scoring.metrics, folder / "scores",
            settings=scoring.settings, system=f"{cell.model} {cell.sampler}-{cell.steps}", run_id=cell.key,
            cell=cell.key, progress=progress, shards=shards,
        )  # fmt: skip
        table = results.concat([scored.table, table])
    results.write(table, folder, RESULTS)
    if on_stage is not None:
        on_stage("done", {"cell": cell.key})
    return table


def generation_rows(cell: Cell, generation: Mapping[str, Any]) -> pd.DataFrame:
    """The ``kind == "generation"`` rows of a cell from its ``generation.json``: NFE, seconds per
    clip (total and per stage) and the real-time factor (generation seconds / audio seconds)."""
    per_clip = {k: v / cell.clips for k, v in generation["timings_seconds"].items()}
    values = dict(zip(results.GENERATION_METRICS, (
        generation["nfe"], per_clip["total"], per_clip["text_encoding"], per_clip["denoising"], per_clip["decoding"],
        generation["real_time_factor"],
    ), strict=True))  # fmt: skip
    base = {
        "run_id": cell.key, "cell": cell.key, "system": f"{cell.model} {cell.sampler}-{cell.steps}",
        "model": cell.model, "sampler": cell.sampler,
        "sampler_options": results.canonical_options(cell.sampler_options),
        "steps": cell.steps, "cfg": cell.cfg, "seed": cell.seed, "kind": "generation",
    }  # fmt: skip
    return results.frame({**base, "metric": name, "value": float(v)} for name, v in values.items())


@lru_cache(maxsize=2)
def cached_model(model: str, checkpoint: str | None, verify: bool, device: str) -> LatentDiffusionModel:
    """Each process loads a model once for all the cells it runs."""
    return load_model(model, checkpoint=checkpoint, verify=verify, device=device).eval()


def _finite(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)
