"""Running the rows of a spec that can run here, as :class:`~t2mbench.bench.reproduce.spec.Reproduced` tables.

- ``ddim``: the DDIM table on the tiny model (:mod:`.ddim`): ``fd_latent`` and ``fd_evaluator`` grids, the
  time grid and the three verdicts.
- system tables (``stable-audio``, ``stable-audio-2``, ``stable-audio-open``): the tiny model's row at its own
  settings (``dpmpp_2m``, 25 steps, CFG 3), scored with the *evaluator* metrics (``fd_evaluator``,
  ``kl_evaluator``, ``clap_evaluator``) and labelled so, never as openl3/passt/CLAP; inference time per clip on
  this machine's CPU, named.
- autoencoder tables (``stable-audio-2``, ``stable-audio-open``): the tiny VAE's reconstruction of the test clips
  (STFT distance, mel distance, SI-SDR, latent rate, latent channels), and the SAO VAE's when its weights are on
  disk.
- ``musecontrollite``: the control table on the tiny model with the shipped adapters (:mod:`.control`).
"""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path
from typing import Any

import pandas as pd

from t2mbench.bench.cells import Cell, Scoring, cached_model, run_cell
from t2mbench.bench.corpus import build_corpus
from t2mbench.bench.corpus.splits import split_clips
from t2mbench.bench.reproduce import ddim
from t2mbench.bench.reproduce.spec import Reproduced
from t2mbench.core.errors import T2MBenchError
from t2mbench.reference_models.generate import default_cfg_scale

SYSTEM_METRICS = ("fd_evaluator", "kl_evaluator", "clap_evaluator")
TINY_SYSTEM_LABEL = "tiny (evaluator metrics: fd_evaluator, kl_evaluator, clap_evaluator; not openl3/passt/clap)"
AE_METRICS = ("stft", "mel", "sisdr")


def hardware() -> str:
    """This machine's CPU in words (the inference-time column names it)."""
    name = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{name}, {os.cpu_count()} CPU threads, torch CPU"


def ddim_tables(run: ddim.DdimRun, rows: tuple[ddim.Row, ...]) -> list[Reproduced]:
    """The latent and audio FD grids with their notes (verdicts on the first, timing on the second)."""
    s = run.settings
    where = f"tiny model, {s.clips} test clips of {s.seconds:g} s, CFG {s.cfg_scale:g}, seed {s.seed}"
    notes = [v.text() for v in ddim.verdicts(run.table, run.resolution)]
    latent = Reproduced(
        f"fd_latent, FD in the DiT's latent space ({where}; 95% interval of the population FD by bias-corrected "
        "half-sampling of clips)",
        ddim.grid(run.table, ddim.LATENT_METRIC, rows),
        [f"fd_latent floor (a second posterior draw of the reference clips): {run.latent_floor:.3g}.", "",
         "Verdicts (the paper's findings, checked here):", "", *(f"- {n}" for n in notes)],
    )  # fmt: skip
    audio = Reproduced(f"fd_evaluator, audio FD with the shipped evaluator ({where}; 95% bias-corrected "
                       "half-sampling interval)",
                       ddim.grid(run.table, ddim.AUDIO_METRIC, rows))  # fmt: skip
    times = time_grid(run.table, rows)
    timing = Reproduced(f"generation seconds per clip and NFE ({hardware()})", times,
                        [f"Stages: corpus {run.seconds['corpus']:.0f} s, cells {run.seconds['cells']:.0f} s, "
                         f"fd_latent {run.seconds['fd_latent']:.0f} s, finding-1 resolution "
                         f"{run.seconds['resolution']:.0f} s; total {run.seconds['total']:.0f} s."],
                        )  # fmt: skip
    return [latent, audio, timing]


def time_grid(table: pd.DataFrame, rows: tuple[ddim.Row, ...]) -> pd.DataFrame:
    """Rows × steps: ``seconds per clip (NFE)`` from the generation rows."""
    labels = {(r.sampler, r.options_json): r.label for r in rows}
    part = table[table["kind"] == "generation"]
    out: dict[str, dict[int, str]] = {}
    for (sampler, options, steps), g in part.groupby(["sampler", "sampler_options", "steps"]):
        label = labels.get((sampler, options))
        if label is None:
            continue
        v = g.set_index("metric")["value"]
        out.setdefault(label, {})[int(steps)] = f"{v['seconds_per_clip']:.2f} s ({int(v['nfe'])} NFE)"
    frame = pd.DataFrame(out).T.reindex([r.label for r in rows if r.label in out]).sort_index(axis=1)
    frame.index.name = "seconds per clip (S =)"
    return frame.fillna("-")


def system_row(out: Path, clips: int, seconds: float, seed: int, *, progress: bool = True) -> Reproduced:
    """The tiny model's row of a system table (its default sampler, steps and CFG) with the evaluator metrics."""
    build_corpus(out / "corpus", clips, seconds, seed, split="test", progress=progress)
    model = cached_model("tiny", None, True, "cpu")
    gen = model.info.generation
    cell = Cell("tiny", gen["sampler"], int(gen["steps"]), default_cfg_scale("tiny"), seed, clips, seconds,
                batch_size=16)  # fmt: skip
    table = run_cell(cell, Scoring(prompts=str(out / "corpus"), metrics=SYSTEM_METRICS), out, progress=progress)
    agg = table[table["kind"] == "aggregate"].set_index("metric")
    gen_rows = table[table["kind"] == "generation"].set_index("metric")["value"]

    def cellv(m: str) -> str:
        r = agg.loc[m]
        return f"{r['value']:.3g} [{r['ci_low']:.3g}, {r['ci_high']:.3g}]"

    frame = pd.DataFrame([{
        "channels/sr": f"{model.info.audio_channels}/{model.sample_rate / 1000:g}kHz",
        "output length": f"{seconds:g} s",
        "fd_evaluator (not FD_openl3)": cellv("fd_evaluator"), "kl_evaluator (not KL_passt)": cellv("kl_evaluator"),
        "clap_evaluator (not CLAP_score)": cellv("clap_evaluator"),
        "inference time": f"{gen_rows['seconds_per_clip']:.2f} s per clip",
    }], index=pd.Index([TINY_SYSTEM_LABEL], name="system"))  # fmt: skip
    notes = [f"{clips} test-split clips of the benchmark corpus (not MusicCaps / Song Describer); {gen['sampler']}, "
             f"{gen['steps']} steps, CFG {cell.cfg:g}, seed {seed}; 95% CIs (FD: bias-corrected half-sampling; "
             f"clip metrics: bootstrap). Inference time: "
             f"{hardware()}. The evaluator metrics are t2mbench's own small models: their values are not on the "
             f"openl3/passt/CLAP scales and compare only with each other."]  # fmt: skip
    return Reproduced("system row of the tiny model", frame, notes)


def weights_present(name: str) -> bool:
    from t2mbench.core.weights import resolve

    try:
        resolve(name, verify=False)
    except (T2MBenchError, KeyError):
        return False
    return True


def autoencoder_rows(out: Path, clips: int, seconds: float, seed: int, *,
                     progress: bool = True) -> tuple[Reproduced, list[str]]:  # fmt: skip
    """The tiny VAE's (and, with its weights, the SAO VAE's) reconstruction rows on the test clips."""
    from t2mbench.bench.evidence.autoencoder import roundtrip_split, write_clips
    from t2mbench.metrics.scoring import score

    build_corpus(out / "corpus", clips, seconds, seed, split="test", progress=progress)
    records = split_clips(out / "corpus", "test")[:clips]
    models: dict[str, Any] = {"tiny VAE (ours)": cached_model("tiny", None, True, "cpu")}
    ran = ["tiny VAE (autoencoder table)"]
    if weights_present("sao-1.0"):
        models["SAO VAE (sao-1.0)"] = cached_model("sao-1.0", None, True, "cpu")
        ran.append("SAO VAE (autoencoder table)")
    rows = {}
    for label, model in models.items():
        key = label.split()[0].lower()
        trip = roundtrip_split(model, records, progress=progress)
        sr = model.sample_rate
        reference = write_clips(out / "autoencoder" / key / "reference", records, trip.inputs, sr)
        generated = write_clips(out / "autoencoder" / key / "decoded", records, trip.decoded, sr)
        run = score(generated, reference, list(AE_METRICS), out / "autoencoder" / key / "scores",
                    settings={m: {"sample_rate": sr} for m in AE_METRICS}, system=label, use_cache=False,
                    progress=progress)  # fmt: skip
        s = run.summary["metrics"]
        rows[label] = {
            "sr": f"{sr / 1000:g}kHz",
            **{name: f"{s[m]['value']:.3g} [{s[m]['ci_low']:.3g}, {s[m]['ci_high']:.3g}]"
               for m, name in zip(AE_METRICS, ("STFT distance", "MEL distance", "SI-SDR"))},
            "latent rate": f"{sr / model.downsampling_ratio:g} Hz", "latent": f"continuous ({model.latent_channels})",
        }  # fmt: skip
    frame = pd.DataFrame.from_dict(rows, orient="index")
    frame.index.name = "model"
    notes = [f"{len(records)} test-split clips of {seconds:g} s, encoded deterministically (posterior mean) and "
             "decoded "
             "at the model's rate; registered stft, mel and sisdr metrics, 95% bootstrap CIs."]
    return Reproduced("autoencoder rows", frame, notes), ran


def clip_size(table_id: str, clips: int | None, seconds: float | None) -> tuple[int, float]:
    """``(clips, seconds)`` that ``table_id`` runs with, None taking the table's default."""
    ddim_base = ddim.DdimSettings()
    default = {"ddim": (ddim_base.clips, ddim_base.seconds), "musecontrollite": (16, 2.0)}.get(table_id, (16, 5.0))
    return clips or default[0], seconds or default[1]


def run_table(table_id: str, out: str | Path, *, full: bool = False, clips: int | None = None,
              seconds: float | None = None, seed: int = 1, rows: tuple[ddim.Row, ...] | None = None,
              cfg: float | None = None, resolve_clips: int | None = None,
              progress: bool = True) -> tuple[list[Reproduced], list[str]]:  # fmt: skip
    """Run what ``table_id`` can run here into ``out``; returns the reproduced tables and the ``here`` rows that ran.
    ``resolve_clips``: the DDIM table's finding-1 clips (None: its default; 0: not run)."""
    out = Path(out)
    t0 = time.perf_counter()
    clips, seconds = clip_size(table_id, clips, seconds)
    if table_id == "ddim":
        base = ddim.DdimSettings()
        settings = ddim.DdimSettings(
            clips=clips, seconds=seconds, seed=seed, rows=rows or base.rows,
            steps=ddim.FULL_STEPS if full else ddim.STEPS, cfg_scale=base.cfg_scale if cfg is None else cfg,
            resolve_clips=base.resolve_clips if resolve_clips is None else resolve_clips,
        )  # fmt: skip
        run = ddim.run_ddim(out, settings, progress=progress)
        ran = [e for e in (f"tiny, rows eta in {{0, 0.2, 0.5, 1}}, sigma-hat (linear betas, leading tau, CFG "
                           f"{settings.cfg_scale:g}); S in {{10, 20, 50, 100}}; fd_evaluator and fd_latent",
                           "the same with S = 1000") if full or "1000" not in e]  # fmt: skip
        return ddim_tables(run, settings.rows), ran
    if table_id == "musecontrollite":
        from t2mbench.bench.reproduce.control import control_tables

        return control_tables(out, clips, seconds, seed, progress=progress)
    tables = [system_row(out, clips, seconds, seed, progress=progress)]
    ran = [TINY_SYSTEM_LABEL]
    if table_id in ("stable-audio-2", "stable-audio-open"):
        ae, ran_ae = autoencoder_rows(out, clips, seconds, seed, progress=progress)
        tables.append(ae)
        ran += ran_ae
    tables[-1].notes.append(f"Ran in {time.perf_counter() - t0:.0f} s.")
    return tables, ran


__all__ = ["SYSTEM_METRICS", "TINY_SYSTEM_LABEL", "autoencoder_rows", "clip_size", "ddim_tables", "hardware",
           "run_table", "system_row", "time_grid", "weights_present"]
