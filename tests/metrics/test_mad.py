"""MAD (-ln MAUVE): parity with mad-metric 0.0.6 / mauve-text 0.4 (faiss k-means) on stored embeddings."""

import json
from pathlib import Path

import numpy as np
import pytest

from t2mbench.core.errors import ConfigError
from t2mbench.metrics.base import MetricError
from t2mbench.metrics.mauve import faiss_kmeans, mauve_score, music_audio_distance, rand_perm
from t2mbench.metrics.registry import get_metric

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "mad"
CASES = ("same", "modes", "unbalanced", "duplicates")


@pytest.fixture(scope="module")
def mad():
    with np.load(FIXTURES / "mad.npz") as data:
        arrays = {k: data[k] for k in data.files}
    return arrays, json.loads((FIXTURES / "mad.json").read_text())["values"]


@pytest.mark.parametrize("case", CASES)
def test_matches_mad_metric_on_stored_embeddings(mad, case):
    """Same k-means histograms as faiss, hence the same MAD; 'unbalanced' goes through faiss's
    subsampling (640 rows > 256 x 2 buckets), 'same' and 'duplicates' through its empty-cluster split."""
    arrays, values = mad
    res = mauve_score(arrays[f"{case}_eval"], arrays[f"{case}_ref"])
    assert res.num_buckets == values[case]["num_buckets"]
    np.testing.assert_array_equal(res.p_hist, values[case]["p_hist"])
    np.testing.assert_array_equal(res.q_hist, values[case]["q_hist"])
    assert res.mad == pytest.approx(values[case]["mad"], rel=1e-12, abs=1e-15)
    assert music_audio_distance(arrays[f"{case}_eval"], arrays[f"{case}_ref"]) == res.mad


def test_the_seed_and_the_row_order_change_the_clustering(mad):
    """The parity above is not luck: another seed, or the rows in another order, give other values."""
    arrays, values = mad
    for case in ("same", "modes", "duplicates"):
        assert mauve_score(arrays[f"{case}_eval"], arrays[f"{case}_ref"], seed=26).mad != values[case]["mad"]
    e, r = arrays["modes_eval"], arrays["modes_ref"]
    assert mauve_score(e[::-1], r).mad != values["modes"]["mad"]


def test_rand_perm_is_faiss_fisher_yates_on_mt19937():
    # std::mt19937(5489) starts 3499211612, 581869302, 3890346734: swaps at 0 + 3499211612 % 4 = 0,
    # 1 + 581869302 % 3 = 1, 2 + 3890346734 % 2 = 2 -> identity
    np.testing.assert_array_equal(rand_perm(4, 5489), [0, 1, 2, 3])
    perm = rand_perm(1000, 27)
    assert sorted(perm) == list(range(1000)) and not np.array_equal(perm, np.arange(1000))


def test_kmeans_with_n_equal_k_copies_the_rows_and_needs_k_rows():
    x = np.arange(12, dtype=np.float32).reshape(4, 3)
    np.testing.assert_array_equal(faiss_kmeans(x, 4), x)
    with pytest.raises(ValueError, match="at least k=5 rows"):
        faiss_kmeans(x, 5)


def test_metric_class_max_pools_frames_and_matches_the_functional(mad):
    arrays, values = mad
    e, r = arrays["modes_eval"], arrays["modes_ref"]
    m = get_metric("mad_evaluator")
    for i, v in enumerate(e):
        # two frames per clip whose max is the stored vector
        m.update(np.stack([v, v - 1.0]), clip_id=f"{i:04d}")
    for v in r:
        m.update(v, side="reference")
    result = m.compute()
    assert result.value == pytest.approx(values["modes"]["mad"], rel=1e-12)
    assert result.extra["num_buckets"] == 20 and result.n_clips == 200
    assert m.settings()["embedder"] == "evaluator" and m.protocol_version == "mad-metric-0.0.6-mauve-0.4"
    assert result.ci_low is None  # off by default


def test_interval_when_asked_holds_the_estimate(mad):
    arrays, values = mad
    m = get_metric("mad_evaluator", ci_resamples=5)
    for i, v in enumerate(arrays["modes_eval"]):
        m.update(v, clip_id=f"{i:04d}")
    for v in arrays["modes_ref"]:
        m.update(v, side="reference")
    result = m.compute()
    assert result.value == pytest.approx(values["modes"]["mad"], rel=1e-12)
    assert result.ci_low <= result.value <= result.ci_high


def test_bad_settings_and_too_few_clips():
    with pytest.raises(ConfigError, match="aggregation"):
        get_metric("mad_evaluator", aggregation="median")
    with pytest.raises(ConfigError, match="explained_variance"):
        get_metric("mad_evaluator", explained_variance=1.5)
    m = get_metric("mad_evaluator")
    m.update(np.ones(4))
    with pytest.raises(MetricError, match="MAUVE needs clips on both sides"):
        m.compute()
