"""Sharded scoring (the Ray executor's scoring actors, here in one process): shards' metric states merged
in clip order give the single-process results; FD from merged count, mean and scatter to 1e-9 relative."""

import numpy as np
import pandas as pd
import pytest
from support.scoring_sets import write_pair
from support.stand_in_embedder import StandInEmbedder

from t2mbench.metrics.base import MetricError
from t2mbench.metrics.cache import EmbeddingCache
from t2mbench.metrics.frechet import StatsAccumulator, embedding_stats, frechet_distance, frechet_distance_from_stats
from t2mbench.metrics.registry import get_metric
from t2mbench.metrics.scoring import score, score_shard


def test_fd_from_merged_accumulators_equals_the_single_process_fd():
    rng = np.random.default_rng(3)
    gen = rng.normal(2.0, 1.5, size=(301, 24)) @ rng.normal(size=(24, 24))
    ref = rng.normal(0.5, 1.0, size=(257, 24))
    single = frechet_distance(gen, ref)
    merged = StatsAccumulator()
    for rows in np.array_split(np.arange(len(gen)), [40, 41, 200]):  # uneven shards, one of a single row
        shard = StatsAccumulator()
        shard.update(gen[rows])
        merged.merge(shard)
    refs = StatsAccumulator()
    for part in (ref[:100], ref[100:]):
        shard = StatsAccumulator()
        shard.update(part)
        refs.merge(shard)
    assert merged.n == 301 and single > 1
    assert frechet_distance_from_stats(merged.stats(), refs.stats()) == pytest.approx(single, rel=1e-9, abs=0)
    whole = embedding_stats(gen)
    np.testing.assert_allclose(merged.stats().mu, whole.mu, rtol=1e-12)
    np.testing.assert_allclose(merged.stats().sigma, whole.sigma, rtol=1e-10, atol=1e-10)
    # averaging per-shard FDs (what merging avoids) is far off
    per_shard = np.mean([frechet_distance(gen[r], ref) for r in np.array_split(np.arange(301), 3)])
    assert abs(per_shard - single) / single > 1e-3
    with pytest.raises(ValueError, match="dimension 3, earlier ones 24"):
        other = StatsAccumulator()
        other.update(gen[:4, :3])
        merged.merge(other)


def _metrics():
    emb = {kind: StandInEmbedder(kind) for kind in ("frames", "logits", "vector")}
    return [get_metric("fd_openl3", embedder=emb["frames"], ci_resamples=20),
            get_metric("kl_passt", embedder=emb["logits"]), get_metric("clap", embedder=emb["vector"]), "stft", "sisdr"]


class InProcessShards:
    """What the Ray executor's actors do, in this process: each shard scored by its own metric objects."""

    def __init__(self, sizes, cache):
        self.sizes, self.cache, self.calls = sizes, cache, []

    def feed(self, items, needs_reference, merge, done):
        from t2mbench.metrics.scoring import build_metrics

        bounds = np.cumsum([0, *self.sizes])
        assert bounds[-1] == len(items)
        for a, b in zip(bounds[:-1], bounds[1:]):
            built = build_metrics(_metrics(), {})
            for m in built:
                m.prepare(self.cache)
            self.calls.append([cid for cid, _, _ in items[a:b]])
            merge(score_shard(built, items[a:b], needs_reference, self.cache))
            done(b - a)


def test_sharded_scoring_equals_one_process(tmp_path):
    gen, ref = write_pair(tmp_path, n=7)
    single = score(gen, ref, _metrics(), tmp_path / "one", cache=EmbeddingCache(tmp_path / "c1"), progress=False)
    shards = InProcessShards([3, 1, 3], EmbeddingCache(tmp_path / "c2"))
    sharded = score(gen, ref, _metrics(), tmp_path / "sharded", cache=EmbeddingCache(tmp_path / "c2"),
                    progress=False, shards=shards)
    assert [len(c) for c in shards.calls] == [3, 1, 3]
    a, b = single.table, sharded.table
    fd = (a.metric == "fd_openl3") & (a.kind == "aggregate")
    assert a[fd].value.iloc[0] > 0
    np.testing.assert_allclose(b[fd].value, a[fd].value, rtol=1e-9, atol=0)  # merged scatter, not shard FDs
    rest = ~a.metric.str.startswith("fd_openl3")
    pd.testing.assert_frame_equal(b[rest].reset_index(drop=True), a[rest].reset_index(drop=True))  # exact
    for column in ("value", "ci_low", "ci_high"):  # FD's extras (bias-corrected value, FAD-∞ off) too
        np.testing.assert_allclose(b[~rest][column].astype(float), a[~rest][column].astype(float), rtol=1e-9)
    assert sharded.summary["metrics"]["kl_passt"]["weights"] == single.summary["metrics"]["kl_passt"]["weights"]
    assert sharded.summary["timing"]["decodes"] == single.summary["timing"]["decodes"]
    assert sharded.summary["shards"]["count"] == 3 and single.summary["shards"] is None


def test_a_metric_without_mergeable_state_is_refused_by_name():
    from t2mbench.metrics.base import Metric

    class NoState(Metric):
        name = "no_state"

        def feed(self, item): ...

        def compute(self): ...

        def reset(self): ...

    with pytest.raises(MetricError, match="^no_state keeps no mergeable state; it cannot be scored in shards$"):
        NoState().state()
    fd = get_metric("fd_openl3", embedder=StandInEmbedder("frames"))
    fd.merge_state({"generated": StatsAccumulator(), "reference": StatsAccumulator(), "clip_ids": ["a"],
                    "clip_frames": {}})
    with pytest.raises(MetricError, match="clip ids in two shards: a"):
        fd.merge_state({"generated": StatsAccumulator(), "reference": StatsAccumulator(), "clip_ids": ["a"],
                        "clip_frames": {}})
