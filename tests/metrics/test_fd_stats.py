"""Sharded FD: workers' count, sum and sum of outer products merge into the single-process FD."""

import numpy as np
import pytest

from t2mbench.metrics.fd_stats import SufficientStats
from t2mbench.metrics.frechet import embedding_stats, frechet_distance, frechet_distance_from_stats


def test_fd_from_merged_shards_equals_the_single_process_fd():
    rng = np.random.default_rng(3)
    gen = rng.normal(2.0, 1.5, size=(301, 24)) @ rng.normal(size=(24, 24))
    ref = rng.normal(0.5, 1.0, size=(257, 24))
    single = frechet_distance(gen, ref)
    shift = ref.mean(axis=0)  # any vector the workers share
    shards = np.array_split(np.arange(len(gen)), [40, 41, 200])  # uneven shards, one of a single row
    merged = SufficientStats.merge_all([SufficientStats.of(gen[i], shift) for i in shards[::-1]])  # any order
    ref_stats = SufficientStats.merge_all([SufficientStats.of(ref[:100], shift), SufficientStats.of(ref[100:], shift)])
    sharded = frechet_distance_from_stats(merged.gaussian(), ref_stats.gaussian())
    assert merged.n == 301 and single > 1
    assert sharded == pytest.approx(single, rel=1e-9, abs=0)
    whole = embedding_stats(gen)
    np.testing.assert_allclose(merged.gaussian().mu, whole.mu, rtol=1e-12)
    np.testing.assert_allclose(merged.gaussian().sigma, whole.sigma, rtol=1e-10, atol=1e-10)
    # averaging per-shard FDs (what merging avoids) is far off
    per_shard = np.mean([frechet_distance(gen[i], ref) for i in shards if len(i) > 24])
    assert abs(per_shard - single) / single > 1e-3
    with pytest.raises(ValueError, match="same dimension and shift"):
        merged.merge(SufficientStats.of(gen[:3]))
