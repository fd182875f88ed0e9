"""Scoring on local worker processes (``t2mbench score --workers N``): two spawned workers give the
one-process results (FD from the merged count, mean and scatter to 1e-9 relative; per-clip scores
to float rounding), and a worker's error reaches the caller as itself."""

import numpy as np
import pytest
from support.scoring_sets import write_pair
from support.stand_in_embedder import StandInEmbedder

from t2mbench.core.errors import AudioError
from t2mbench.metrics.cache import EmbeddingCache
from t2mbench.metrics.process_shards import ProcessShards
from t2mbench.metrics.registry import get_metric
from t2mbench.metrics.scoring import build_metrics, score


def _metrics():
    emb = {kind: StandInEmbedder(kind) for kind in ("frames", "logits", "vector")}
    return build_metrics([get_metric("fd_openl3", embedder=emb["frames"], ci_resamples=20),
                          get_metric("kl_passt", embedder=emb["logits"]), get_metric("clap", embedder=emb["vector"]),
                          "stft", "sisdr"], {})  # fmt: skip


def test_two_worker_processes_give_the_one_process_scores(tmp_path):
    gen, ref = write_pair(tmp_path, n=9)
    single = score(gen, ref, _metrics(), tmp_path / "one", cache=EmbeddingCache(tmp_path / "c1"), progress=False)
    store = EmbeddingCache(tmp_path / "c2")
    built = _metrics()
    pool = ProcessShards(2, built, store, threads=1)
    assert [len(c) for c in pool.chunks(list(range(9)))] == [2, 2, 2, 2, 1]  # ⌈9 / (4·2)⌉ per chunk
    sharded = score(gen, ref, built, tmp_path / "two", cache=store, progress=False, shards=pool)
    a, b = single.table, sharded.table
    assert list(b.clip_id) == list(a.clip_id) and list(b.metric) == list(a.metric)  # clip order kept
    fd = (a.metric == "fd_openl3") & (a.kind == "aggregate")
    assert a[fd].value.iloc[0] > 0
    np.testing.assert_allclose(b[fd].value, a[fd].value, rtol=1e-9, atol=0)
    np.testing.assert_allclose(b.value.astype(float), a.value.astype(float), rtol=1e-6, atol=1e-9)
    shards = sharded.summary["shards"]
    assert shards["count"] == 5
    workers = {w.split(":")[1] for w in shards["workers"]}
    assert len(workers) == 2 and str(__import__("os").getpid()) not in workers  # two other processes
    assert sharded.summary["timing"]["decodes"] == single.summary["timing"]["decodes"] == 18
    assert store.counts()["writes"] == single.summary["cache"]["writes"] > 0  # the workers wrote the same cache


def test_a_worker_error_is_raised_as_itself(tmp_path):
    gen, ref = write_pair(tmp_path, n=3)
    (gen / "clip1.wav").write_bytes(b"not a wav file")
    built = _metrics()
    with pytest.raises(AudioError, match="clip1.wav"):
        score(gen, ref, built, tmp_path / "s", use_cache=False, progress=False,
              shards=ProcessShards(2, built, None, threads=1))
    assert not (tmp_path / "s" / "summary.json").exists()
