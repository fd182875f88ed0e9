"""Embedding cache: content keys, integrity checks, atomic and concurrent writes."""

import multiprocessing as mp

import numpy as np
import pytest

from t2mbench.metrics.cache import EmbeddingCache, default_root, entry_key

FIELDS = {"audio_sha256": "ab" * 32, "embedder": "openl3", "weights_sha256": "cd" * 32, "protocol": "sam-1"}


def test_root_is_under_t2mbench_home(tmp_path, monkeypatch):
    monkeypatch.setenv("T2MBENCH_HOME", str(tmp_path))
    assert default_root() == tmp_path / "cache" / "embeddings"
    assert EmbeddingCache().root == tmp_path / "cache" / "embeddings"


@pytest.mark.parametrize("field", list(FIELDS))
def test_every_key_field_changes_the_key(field):
    assert entry_key(**FIELDS) != entry_key(**{**FIELDS, field: FIELDS[field] + "x"})
    assert entry_key(**FIELDS) == entry_key(**dict(reversed(list(FIELDS.items()))))


def test_round_trip_is_exact(tmp_path):
    cache = EmbeddingCache(tmp_path)
    x = np.random.default_rng(0).normal(size=(20, 1024)).astype(np.float32)
    key = entry_key(**FIELDS)
    assert cache.get("openl3", key) is None
    cache.put("openl3", key, x)
    got = cache.get("openl3", key)
    assert got.dtype == np.float32 and np.array_equal(got, x)
    assert cache.path("openl3", key) == tmp_path / "openl3" / key[:2] / f"{key}.emb"
    assert cache.counts() == {"hits": 1, "misses": 1, "writes": 1, "corrupt": 0}


@pytest.mark.parametrize("damage", ["flip", "truncate", "garbage", "empty"])
def test_a_damaged_entry_is_detected_deleted_and_counted(tmp_path, damage):
    cache = EmbeddingCache(tmp_path)
    key = entry_key(**FIELDS)
    cache.put("openl3", key, np.arange(100, dtype=np.float32))
    p = cache.path("openl3", key)
    data = bytearray(p.read_bytes())
    if damage == "flip":
        data[-7] ^= 0x01
    elif damage == "truncate":
        data = data[: len(data) // 2]
    elif damage == "garbage":
        data = bytearray(b"not an entry at all" * 10)
    else:
        data = bytearray()
    p.write_bytes(bytes(data))
    assert cache.get("openl3", key) is None
    assert not p.exists() and cache.corrupt == 1


def test_a_stray_temporary_file_from_a_killed_writer_is_ignored(tmp_path):
    cache = EmbeddingCache(tmp_path)
    key = entry_key(**FIELDS)
    p = cache.path("openl3", key)
    p.parent.mkdir(parents=True)
    (p.parent / f".{p.name}.tmpkilled.emb").write_bytes(b"T2MEMB1\nhalf-written")
    assert cache.get("openl3", key) is None and cache.corrupt == 0
    cache.put("openl3", key, np.ones(3, np.float32))
    assert np.array_equal(cache.get("openl3", key), np.ones(3, np.float32))


def _writer(root: str, key: str, n: int) -> None:
    cache = EmbeddingCache(root)
    x = np.arange(50_000, dtype=np.float32)
    for _ in range(n):
        cache.put("openl3", key, x)


def test_concurrent_writers_never_expose_a_corrupt_entry(tmp_path):
    key = entry_key(**FIELDS)
    ctx = mp.get_context("fork")
    procs = [ctx.Process(target=_writer, args=(str(tmp_path), key, 40)) for _ in range(2)]
    for p in procs:
        p.start()
    reader = EmbeddingCache(tmp_path)
    expected = np.arange(50_000, dtype=np.float32)
    seen = 0
    while any(p.is_alive() for p in procs):
        got = reader.get("openl3", key)
        if got is not None:
            assert np.array_equal(got, expected)
            seen += 1
    for p in procs:
        p.join()
        assert p.exitcode == 0
    assert reader.corrupt == 0
    assert np.array_equal(reader.get("openl3", key), expected)
    assert [q.name for q in reader.path("openl3", key).parent.iterdir()] == [f"{key}.emb"]
