"""The scoring engine: clip sets in, one long results table out.

:func:`score` loads the generated and reference clip sets (:func:`t2mbench.core.manifest.load_clipset`),
builds the metrics, loads every embedder before reading any clip (a missing weight file fails
first, with its error), then walks the clip ids once: each clip is decoded once and resampled
once per rate and resampler (:class:`~t2mbench.metrics.clip_audio.ClipAudio`), every metric is fed from
the same audio, and embeddings go through the on-disk cache (:mod:`t2mbench.metrics.cache`), so a
re-run does no embedding work and a killed run resumes where it stopped.

Results (``out_dir``):

- ``scores.parquet`` and ``scores.csv``: the run's rows in the result schema
  (:mod:`t2mbench.core.results`): one per (clip, metric) and one aggregate per metric with its
  bootstrap CI, the run attributes (model, sampler and options, steps, cfg, seed) from the
  generated manifest's clip ``attributes`` when present. Components (``pitch_acc.raw_chroma``,
  ``stft.sc``, …) and scalar extras (``fd_openl3.fad_inf``) are rows of their own.
- ``summary.json``: per metric its value, CI, protocol version, settings, weights sha256 (and
  ``weights_status``: whether each is a published hash, :func:`~t2mbench.metrics.embedders.weights_status`)
  and warnings; cache counts; timings (decode and resample shares).
- ``arrays/<metric>.npz``: what a metric hands over in :meth:`~t2mbench.metrics.base.Metric.arrays`
  (FD: every generated clip's embedding frames and the reference statistics, for a paired
  comparison of two runs).
- ``provenance.json``: :func:`t2mbench.core.provenance.collect` with the input manifests' hashes,
  the embedders' weights and the bootstrap seed.

Sharded scoring: with ``shards`` (a :class:`Shards`, e.g. the Ray executor's scoring actors, which
keep their embedders loaded), contiguous runs of the clip items are fed to workers, each with
metrics of the same settings (:func:`score_shard`), and their states are merged back here in clip
order (:meth:`~t2mbench.metrics.base.Metric.merge_state`): per-clip scores exactly as one process
adds them, set-level statistics (FD's count, mean and scatter) merged exactly, not averaged.

Id policy: paired metrics (KL, STFT, mel, SI-SDR, melody) need identical id sets and raise
:class:`~t2mbench.core.errors.ManifestError` listing the differences; FD alone accepts different sets.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import socket
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd

from t2mbench.core import provenance
from t2mbench.core import results as results_schema
from t2mbench.core.errors import ConfigError, T2MBenchError
from t2mbench.core.files import atomic_path, staged_outputs, write_json
from t2mbench.core.manifest import ClipRecord, ClipSet, load_clipset, match_ids
from t2mbench.core.progress import progress_bar
from t2mbench.metrics.base import Metric, MetricError, MetricResult, ScoringItem
from t2mbench.metrics.cache import EmbeddingCache
from t2mbench.metrics.clip_audio import AudioTimer, ClipAudio
from t2mbench.metrics.embedders import weights_status
from t2mbench.metrics.embedding_metric import share_embedders
from t2mbench.metrics.registry import get_metric

SCORES = "scores"  # scores.parquet / scores.csv
ARRAYS = "arrays"  # arrays/<metric>.npz
# what a generated manifest's clip attributes say about the run (t2mbench.bench.generation writes them)
TEXT_ATTRIBUTES = ("model", "sampler", "sampler_options")
NUMBER_ATTRIBUTES = ("steps", "cfg", "seed")


Item = tuple[str, ClipRecord | None, ClipRecord | None]  # (clip id, generated record, reference record)


@dataclass
class ShardResult:
    """What a worker hands back for a shard of items: each metric's state (in the run's metric order),
    its decode/resample timer and its embedding cache's counts."""

    states: list[dict[str, Any]]
    timer: AudioTimer
    cache_counts: dict[str, int] | None
    weights: list[dict[str, str]]  # each metric's weights (name → sha256), as the worker loaded them
    worker: str = ""  # host:pid of the worker that scored it


class Shards(Protocol):
    """Scores a run's items on workers: calls ``merge(result)`` with each shard's :class:`ShardResult` in
    clip order (contiguous shards), and ``done(k)`` as k more items are finished."""

    def feed(self, items: Sequence[Item], needs_reference: bool, merge: Callable[[ShardResult], None],
             done: Callable[[int], None]) -> None: ...  # fmt: skip


@dataclass
class ScoreRun:
    """What :func:`score` wrote: the long table, the summary and the output folder."""

    out_dir: Path
    table: pd.DataFrame
    summary: dict[str, Any]
    results: dict[str, MetricResult] = field(default_factory=dict)


def score(
    generated: str | os.PathLike,
    reference: str | os.PathLike | None,
    metrics: Sequence[str | Metric],
    out_dir: str | os.PathLike,
    *,
    settings: Mapping[str, Mapping[str, Any]] | None = None,
    system: str | None = None,
    run_id: str | None = None,
    cell: str | None = None,
    cache: EmbeddingCache | None = None,
    use_cache: bool = True,
    seed: int = 0,
    progress: bool = True,
    shards: Shards | None = None,
) -> ScoreRun:
    """Score ``generated`` against ``reference`` with ``metrics`` and write the results to ``out_dir``.

    Args:
        generated, reference: clip sets (folders or manifests; see :mod:`t2mbench.core.manifest`);
            ``reference`` may be ``None`` when no metric reads it (``clap``, ``pitch_acc``).
        metrics: registry names or metric objects.
        settings: per-name settings for :func:`t2mbench.metrics.registry.get_metric`.
        system: label of the generated system (default: the generated folder's name).
        run_id: label of the run (default: a hash of the inputs, metrics and settings).
        cell: the cell runner's content key of the generated set, for the rows' ``cell`` column.
        cache: embedding cache (default: ``$T2MBENCH_HOME/cache/embeddings``); ``use_cache=False`` disables it.
        seed: bootstrap seed for every metric that has no ``seed`` setting of its own.
        progress: show a progress bar (clips done, ETA).
        shards: score the clips on workers (see the module doc); ``None``: in this process.

    Raises:
        ConfigError, ManifestError, AudioError, MissingWeightsError, MetricError: bad
            metrics or settings, mismatched ids, bad clips, missing weights, unscorable input.
    """
    t_start = time.perf_counter()
    built = build_metrics(metrics, settings or {}, seed)
    gen_set = load_clipset(generated)
    needs_ref = [m.name for m in built if m.needs_reference]
    if needs_ref and reference is None:
        raise ConfigError(f"metrics needing a reference set: {', '.join(needs_ref)}; pass --reference")
    ref_set = load_clipset(reference) if needs_ref else None
    paired = [m for m in built if m.paired]
    if paired:
        match_ids(gen_set, ref_set)
    store = None if not use_cache else (cache if cache is not None else EmbeddingCache())
    if store is not None:
        store.check_writable()
    if shards is None:  # sharded: the workers load the embedders (and fail first on a missing weight file)
        prepare_metrics(built, store)
    weights: dict[str, dict[str, str]] = {}
    workers: list[str] = []  # one entry per shard merged

    timer = AudioTimer()
    items = list(_items(gen_set, ref_set))
    with progress_bar(total=len(items), desc="scoring", unit="clip", disable=not progress) as bar:
        if shards is None:
            feed_items(built, items, bool(needs_ref), timer, bar.update)
            weights.update({m.name: m.weights() for m in built})
        else:
            shards.feed(items, bool(needs_ref), lambda shard: _merge(built, shard, timer, store, weights, workers),
                        bar.update)  # fmt: skip
    results = {m.name: m.compute() for m in built}
    seconds = time.perf_counter() - t_start

    run_id = run_id or _run_id(gen_set, ref_set, built)
    system = system or _system_name(gen_set)
    table = _table(results, gen_set, run_id, system, cell)
    summary = _summary(results, built, weights, gen_set, ref_set, run_id, system, store, timer, seconds,
                       len(items), workers)
    out = Path(out_dir)
    _write(out, table, summary, gen_set, ref_set, built, weights, seed)
    return ScoreRun(out, table, summary, results)


def build_metrics(
    metrics: Sequence[str | Metric], settings: Mapping[str, Mapping[str, Any]], seed: int = 0
) -> list[Metric]:
    """The metrics of a run, every name and setting checked (no weights loaded, no audio read).

    Raises:
        ConfigError: no metric, an unknown name or setting, a bad value, settings for a metric
            not run, a metric listed twice.
    """
    if not metrics:
        raise ConfigError("no metrics given; see `t2mbench score --list`")
    unknown = sorted(set(settings) - {m if isinstance(m, str) else m.name for m in metrics})
    if unknown:
        raise ConfigError(f"settings given for metrics that are not run: {', '.join(unknown)}")
    built = []
    for m in metrics:
        if isinstance(m, Metric):
            built.append(m)
            continue
        s = dict(settings.get(m, {}))
        s.setdefault("seed", seed)
        built.append(get_metric(m, **s))
    names = [m.name for m in built]
    if len(set(names)) != len(names):
        raise ConfigError(f"metrics listed twice: {', '.join(sorted({n for n in names if names.count(n) > 1}))}")
    return built


def prepare_metrics(built: Sequence[Metric], store: EmbeddingCache | None) -> None:
    """Load the embedders of ``built`` (once per embedder, however many metrics use it) and attach the
    embedding cache ``store``: what a process does before it feeds clips."""
    share_embedders(built)
    for m in built:
        m.prepare(store)


def feed_items(built: Sequence[Metric], items: Sequence[Item], needs_reference: bool, timer: AudioTimer,
               done: Callable[[int], None] | None = None) -> None:  # fmt: skip
    """Feed every metric each item in order, each clip decoded once and shared by all metrics."""
    for clip_id, gen_rec, ref_rec in items:
        item = ScoringItem(
            clip_id=clip_id,
            generated=ClipAudio(gen_rec, timer) if gen_rec is not None else None,
            reference=ClipAudio(ref_rec, timer) if ref_rec is not None and needs_reference else None,
            caption=(gen_rec.caption if gen_rec is not None else None) or (ref_rec.caption if ref_rec else None),
            truth=(gen_rec.truth if gen_rec is not None else None) or (ref_rec.truth if ref_rec else None),
        )
        for m in built:
            if m.paired and (item.generated is None or item.reference is None):
                continue
            _feed(m, item)
        for clip in (item.generated, item.reference):
            if clip is not None:
                clip.release()
        if done is not None:
            done(1)


def score_shard(built: Sequence[Metric], items: Sequence[Item], needs_reference: bool,
                store: EmbeddingCache | None = None) -> ShardResult:  # fmt: skip
    """A worker's side of sharded scoring: ``built`` (prepared once, reused across shards) is reset, fed
    ``items`` and its states returned."""
    before = store.counts() if store is not None else None
    timer = AudioTimer()
    for m in built:
        m.reset()
    feed_items(built, items, needs_reference, timer)
    counts = None if store is None else {k: v - before[k] for k, v in store.counts().items()}
    return ShardResult([m.state() for m in built], timer, counts, [m.weights() for m in built],
                       f"{socket.gethostname()}:{os.getpid()}")


def _merge(built: Sequence[Metric], shard: ShardResult, timer: AudioTimer, store: EmbeddingCache | None,
           weights: dict[str, dict[str, str]], workers: list[str]) -> None:  # fmt: skip
    if len(shard.states) != len(built):
        raise ConfigError(f"a scoring worker returned {len(shard.states)} metric states for {len(built)} metrics")
    for m, state, w in zip(built, shard.states, shard.weights, strict=True):
        m.merge_state(state)
        weights[m.name] = w
    workers.append(shard.worker)
    for name in ("decode_s", "resample_s", "decodes", "resamples"):
        setattr(timer, name, getattr(timer, name) + getattr(shard.timer, name))
    if store is not None and shard.cache_counts:
        store.add_counts(shard.cache_counts)


def _items(gen: ClipSet, ref: ClipSet | None):
    """(id, generated record, reference record) in the generated set's order, then reference-only ids."""
    ref_by_id = ref.by_id() if ref is not None else {}
    for rec in gen:
        yield rec.id, rec, ref_by_id.get(rec.id)
    if ref is not None:
        gen_ids = set(gen.ids)
        for rec in ref:
            if rec.id not in gen_ids:
                yield rec.id, None, rec


def _feed(metric: Metric, item: ScoringItem) -> None:
    """Feed one item, naming the clip and metric in any input error."""
    try:
        metric.feed(item)
    except T2MBenchError as e:
        if item.clip_id in str(e) or (item.generated and item.generated.source in str(e)):
            raise
        raise type(e)(f"{metric.name}: clip {item.clip_id!r}: {e}") from None
    except ValueError as e:
        raise MetricError(f"{metric.name}: clip {item.clip_id!r}: {e}") from None


def _as_text(value: Any) -> str | None:
    """A text attribute: strings as is, others as canonical JSON."""
    return None if value is None else value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def _as_number(value: Any) -> float | int | None:
    """A numeric attribute, or empty when the manifest holds something else (an external set)."""
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    return value if ok else None


def _run_attributes(rec: ClipRecord) -> dict[str, Any]:
    attrs = {k: _as_text(rec.attributes.get(k)) for k in TEXT_ATTRIBUTES}
    return attrs | {k: _as_number(rec.attributes.get(k)) for k in NUMBER_ATTRIBUTES}


def _shared_attributes(per_clip: Mapping[str, dict[str, Any]]) -> dict[str, Any]:
    """The attributes every clip shares (empty where clips differ): the aggregate rows' values."""
    out = {}
    for k in TEXT_ATTRIBUTES + NUMBER_ATTRIBUTES:
        values = {json.dumps(a[k]) for a in per_clip.values()}
        out[k] = json.loads(values.pop()) if len(values) == 1 else None
    return out


def _rows(result: MetricResult, attrs: Mapping[str, dict[str, Any]], shared: dict[str, Any], base: dict[str, Any]):
    yield {**base, **shared, "metric": result.name, "kind": "aggregate", "value": result.value,
           "ci_low": result.ci_low, "ci_high": result.ci_high}
    for cid, v in result.per_clip.items():
        yield {**base, **attrs.get(cid, shared), "clip_id": cid, "metric": result.name, "kind": "clip", "value": v}
    for key, v in result.extra.items():
        yield {**base, **shared, "metric": f"{result.name}.{key}", "kind": "aggregate", "value": v}
    for comp in result.components:
        yield from _rows(comp, attrs, shared, base)


def _table(
    results: Mapping[str, MetricResult], gen: ClipSet, run_id: str, system: str, cell: str | None
) -> pd.DataFrame:
    """The run's rows in the result schema (:mod:`t2mbench.core.results`)."""
    attrs = {c.id: _run_attributes(c) for c in gen}
    shared = _shared_attributes(attrs)
    base = {"run_id": run_id, "system": system, "cell": cell}
    return results_schema.frame(row for r in results.values() for row in _rows(r, attrs, shared, base))


def _result_summary(r: MetricResult) -> dict[str, Any]:
    return {"value": r.value, "ci_low": r.ci_low, "ci_high": r.ci_high, "n_clips": r.n_clips, "extra": r.extra,
            "warnings": r.warnings, "components": {c.name: _result_summary(c) for c in r.components}}


def _summary(results, built, weights, gen, ref, run_id, system, store, timer: AudioTimer, seconds: float,
             n_items: int, workers: list[str]):  # fmt: skip
    metrics = {}
    for m in built:
        metrics[m.name] = {
            **_result_summary(results[m.name]),
            "higher_is_better": m.higher_is_better,
            "protocol_version": m.protocol_version,
            "settings": m.settings(),
            "weights": weights.get(m.name, {}),
            "weights_status": {k: weights_status(k, v) for k, v in weights.get(m.name, {}).items()},
        }
    return {
        "run_id": run_id,
        "system": system,
        "generated": {"source": str(gen.source), "clips": len(gen)},
        "reference": None if ref is None else {"source": str(ref.source), "clips": len(ref)},
        "metrics": metrics,
        "cache": None if store is None else {"root": str(store.root), **store.counts()},
        "timing": {
            "seconds": seconds,
            "items": n_items,
            "seconds_per_item": seconds / max(n_items, 1),
            "decode_seconds": timer.decode_s,
            "resample_seconds": timer.resample_s,
            "decode_resample_share": (timer.decode_s + timer.resample_s) / seconds if seconds > 0 else 0.0,
            "decodes": timer.decodes,
            "resamples": timer.resamples,
        },
        "shards": {"count": len(workers), "workers": sorted(set(workers))} if workers else None,
    }


def _write(out: Path, table: pd.DataFrame, summary: dict, gen: ClipSet, ref: ClipSet | None, built, weights,
           seed: int) -> None:  # fmt: skip
    """The run's files, staged and moved in as one set (an earlier run's stay whole on failure)."""
    with staged_outputs(out) as staging:
        _write_set(staging, table, summary, gen, ref, built, weights, seed)


def _write_set(out: Path, table: pd.DataFrame, summary: dict, gen: ClipSet, ref: ClipSet | None, built, weights,
               seed: int) -> None:  # fmt: skip
    results_schema.write(table, out, SCORES)
    write_json(out / "summary.json", summary)
    for m in built:
        arrays = m.arrays()
        if arrays:
            (out / ARRAYS).mkdir(exist_ok=True)
            with atomic_path(out / ARRAYS / f"{m.name}.npz") as tmp, open(tmp, "wb") as f:
                np.savez(f, **arrays)
    inputs = {name: s.source for name, s in (("generated_manifest", gen), ("reference_manifest", ref))
              if s is not None and Path(s.source).is_file()}
    weights = {k: v for w in weights.values() for k, v in w.items()}
    record = provenance.collect(
        seeds={"bootstrap": seed},
        inputs=inputs,
        weights=weights,
        extra={"command": "score", "metrics": {m.name: m.settings() for m in built},
               "generated": str(gen.source), "reference": None if ref is None else str(ref.source)},
    )
    provenance.write(out, record)


def _run_id(gen: ClipSet, ref: ClipSet | None, built: Sequence[Metric]) -> str:
    h = hashlib.sha256()
    for s in (gen, ref):
        if s is not None:
            h.update(json.dumps([[c.id, str(c.path)] for c in s]).encode())
    h.update(json.dumps({m.name: m.settings() for m in built}, sort_keys=True, default=str).encode())
    return h.hexdigest()[:12]


def _system_name(gen: ClipSet) -> str:
    source = Path(gen.source)
    return source.parent.name if source.name.endswith((".jsonl", ".csv", ".parquet")) else source.name
