"""Embedding protocols (FD, KL, CLAP) with a deterministic stand-in embedder: SAM's input
pipelines (golden fixture from librosa 0.10.1 + pyloudnorm + soxr), aggregation, caching."""

from pathlib import Path

import numpy as np
import pytest
import torch
from support.scoring_sets import write_pair, write_set
from support.stand_in_embedder import StandInEmbedder

from t2mbench.core.audio import int16_roundtrip
from t2mbench.core.errors import AudioError, ConfigError
from t2mbench.core.manifest import ClipRecord, load_clipset
from t2mbench.metrics.base import MetricError, ScoringItem
from t2mbench.metrics.cache import EmbeddingCache
from t2mbench.metrics.clip_audio import ClipAudio
from t2mbench.metrics.embedding_metric import EmbeddingProtocol
from t2mbench.metrics.frechet import (
    GaussianStats,
    embedding_stats,
    fad_inf,
    frechet_distance,
    frechet_distance_from_stats,
    per_song_fd,
    read_frames,
)
from t2mbench.metrics.kl import kl_divergence
from t2mbench.metrics.registry import CLAP, FD_OPENL3, KL_PASST, get_metric

FIX = Path(__file__).parents[1] / "fixtures" / "metrics"
SAM = np.load(FIX / "sam_load.npz")


def _clip(path: Path) -> ClipAudio:
    return ClipAudio(ClipRecord(id=path.stem, path=path))


def _items(gen_dir: Path, ref_dir: Path | None = None):
    gen = load_clipset(gen_dir)
    ref = load_clipset(ref_dir).by_id() if ref_dir else {}
    for rec in gen:
        r = ref.get(rec.id)
        yield ScoringItem(rec.id, ClipAudio(rec), ClipAudio(r) if r else None, caption=rec.caption)


@pytest.mark.parametrize("name", ["s48", "m22", "t32"])
@pytest.mark.parametrize(("tag", "settings"), [("fd", FD_OPENL3), ("kl", KL_PASST), ("clap", CLAP)])
def test_inputs_equal_stable_audio_metrics_pipelines(name, tag, settings):
    protocol = EmbeddingProtocol(**{**settings, "embedder": StandInEmbedder()})
    protocol.prepare(None)
    got = protocol.audio(_clip(FIX / "sam_load" / f"{name}.wav"))
    expected = SAM[f"{name}_{tag}"]
    got = got if tag == "fd" else got[0]
    assert got.shape == expected.shape
    if tag == "clap":  # the CLAP embedder's int16 round trip; the channel mean after (not before) the
        # resample may move a sample by one int16 step
        got = int16_roundtrip(got)
        diff = np.abs(got - expected)
        assert diff.max() <= 1.01 / 32767 and np.mean(diff > 0) < 0.005
    else:
        np.testing.assert_allclose(got, expected, atol=5e-7)


def test_silent_clip_cannot_be_peak_normalised(tmp_path):
    write_set(tmp_path, ["quiet"], noise=0.0, gain=0.0)
    protocol = EmbeddingProtocol(**{**KL_PASST, "embedder": StandInEmbedder()})
    protocol.prepare(None)
    with pytest.raises(AudioError, match=r"quiet\.wav: is digital silence; it cannot be peak-normalised"):
        protocol.audio(_clip(tmp_path / "quiet.wav"))


def test_fd_is_the_fd_of_stacked_frames(tmp_path):
    gen_dir, ref_dir = write_pair(tmp_path, n=5)
    emb = StandInEmbedder("frames")
    m = get_metric("fd_openl3", embedder=emb, ci_resamples=30, per_song=True)
    m.prepare(None)
    frames = {"generated": [], "reference": []}
    for item in _items(gen_dir, ref_dir):
        m.feed(item)
        for side, clip in (("generated", item.generated), ("reference", item.reference)):
            audio = m.protocol.audio(clip)
            frames[side].append(emb.embed(torch.from_numpy(audio[None]), 44_100).numpy()[0])
    r = m.compute()
    gen, ref = np.concatenate(frames["generated"]), np.concatenate(frames["reference"])
    assert gen.shape[1] == 16  # [L ‖ R] of the 8-d stand-in
    assert r.value == pytest.approx(frechet_distance(gen, ref), rel=1e-6)
    assert r.ci_low < r.value < r.ci_high
    ids = [f"clip{i}" for i in range(5)]
    expected_songs = per_song_fd(dict(zip(ids, frames["generated"])), embedding_stats(ref))
    assert r.per_clip == pytest.approx(expected_songs, rel=1e-6)
    assert r.extra["generated_frames"] == len(gen)
    assert len(r.warnings) == 2  # 10 frames of 16-d on each side: rank-deficient covariances


def test_fd_with_reference_statistics_file_and_fad_inf(tmp_path):
    gen_dir, _ = write_pair(tmp_path, n=3, seconds=2.0)
    rng = np.random.default_rng(0)
    mu, sigma = rng.normal(size=16), np.cov(rng.normal(size=(100, 16)), rowvar=False)
    np.savez(tmp_path / "ref_stats.npz", mu_ref=mu, sigma_ref=sigma)  # SAM's layout
    m = get_metric("fd_openl3", embedder=StandInEmbedder("frames"), reference_stats=str(tmp_path / "ref_stats.npz"),
                   ci_resamples=0, fad_inf=True, fad_inf_min_n=10, fad_inf_steps=5)
    assert not m.needs_reference
    m.prepare(None)
    for item in _items(gen_dir):
        m.feed(item)
    r = m.compute()
    frames = np.concatenate(list(m.clip_frames.values()))
    ref = GaussianStats(mu, sigma, 0)
    assert r.value == pytest.approx(frechet_distance_from_stats(embedding_stats(frames), ref), rel=1e-9)
    assert r.extra["fad_inf"] == pytest.approx(fad_inf(frames, ref, min_n=10, steps=5).score, rel=1e-9)
    assert r.warnings == []  # 24 frames for 16 dimensions; the reference is given


def test_fd_warns_on_rank_deficient_covariance_and_refuses_one_frame(tmp_path):
    m = get_metric("fd_openl3", embedder=StandInEmbedder("frames"), ci_resamples=0)
    rng = np.random.default_rng(1)
    m.update(rng.normal(size=(5, 16)), side="generated", clip_id="a")
    m.update(rng.normal(size=(40, 16)), side="reference")
    r = m.compute()
    assert r.warnings == [
        "generated set has 5 frames for 16 dimensions: its covariance is rank-deficient; FD is computed exactly "
        "for these statistics but is biased upward at this size (see fad_inf)"
    ]
    m2 = get_metric("fd_openl3", embedder=StandInEmbedder("frames"), ci_resamples=0)
    m2.update(rng.normal(size=(1, 16)), side="generated", clip_id="a")
    m2.update(rng.normal(size=(40, 16)), side="reference")
    with pytest.raises(MetricError, match="the generated set gave 1 embedding frames; a covariance needs at least 2"):
        m2.compute()


def test_kl_is_the_mean_of_per_pair_kl(tmp_path):
    gen_dir, ref_dir = write_pair(tmp_path, n=4)
    emb = StandInEmbedder("logits")
    m = get_metric("kl_passt", embedder=emb)
    m.prepare(None)
    gen, ref = [], []
    for item in _items(gen_dir, ref_dir):
        m.feed(item)
        gen.append(m.protocol.embedding(item.generated))
        ref.append(m.protocol.embedding(item.reference))
    r = m.compute()
    per_pair = kl_divergence(np.array(gen), np.array(ref))
    assert r.value == pytest.approx(per_pair.mean(), rel=1e-9)
    assert list(r.per_clip) == [f"clip{i}" for i in range(4)]
    assert r.ci_low <= r.value <= r.ci_high


def test_clap_needs_captions(tmp_path):
    gen_dir, _ = write_pair(tmp_path, n=2)
    m = get_metric("clap", embedder=StandInEmbedder("vector"))
    m.prepare(None)
    item = next(_items(gen_dir))
    m.feed(item)
    a = m.protocol.embedding(item.generated)
    t = m.protocol.text_embedding(item.caption)
    assert m.compute().value == pytest.approx(float(a @ t / np.linalg.norm(a) / np.linalg.norm(t)), rel=1e-6)
    item.clip_id, item.caption = "other", None
    with pytest.raises(MetricError, match="clip 'other' has no caption"):
        m.feed(item)


def test_embeddings_and_captions_come_from_the_cache_on_a_second_pass(tmp_path):
    gen_dir, ref_dir = write_pair(tmp_path / "sets", n=3)
    cache = EmbeddingCache(tmp_path / "cache")
    emb = StandInEmbedder("vector")
    for _ in range(2):
        m = get_metric("clap", embedder=emb)
        m.prepare(cache)
        for item in _items(gen_dir):
            m.feed(item)
    assert (emb.calls, emb.text_calls) == (3, 3)
    assert cache.counts()["hits"] == 6


def test_protocol_settings_are_validated():
    with pytest.raises(ConfigError, match="channels must be 1 or 2, got 3"):
        EmbeddingProtocol(embedder="openl3", channels=3)
    with pytest.raises(ConfigError, match=r"embedder 'openl3' is not loaded: call prepare\(\) first"):
        EmbeddingProtocol(embedder="openl3").audio(None)


def test_evaluator_names_are_the_same_protocols_on_the_shipped_evaluator(tmp_path):
    gen_dir, ref_dir = write_pair(tmp_path, n=2, seconds=3.0)
    fd, kl = get_metric("fd_evaluator", ci_resamples=0), get_metric("kl_evaluator", ci_resamples=0)
    assert type(fd) is type(get_metric("fd_openl3")) and type(kl) is type(get_metric("kl_passt"))
    fd.prepare(None)
    kl.prepare(None)
    evaluator = fd.protocol.embedder
    assert evaluator.name == "evaluator" and fd.protocol.rate == 32_000
    frames, logits = {"g": [], "r": []}, {"g": [], "r": []}
    for item in _items(gen_dir, ref_dir):
        fd.feed(item)
        kl.feed(item)
        for side, clip in (("g", item.generated), ("r", item.reference)):
            x = torch.from_numpy(fd.protocol.audio(clip)[None])
            frames[side].append(evaluator.embed(x, 32_000).numpy()[0])
            logits[side].append(evaluator.attribute_logits(x, 32_000).numpy()[0])
    expected_fd = frechet_distance(np.concatenate(frames["g"]), np.concatenate(frames["r"]))
    assert fd.compute().value == pytest.approx(expected_fd, rel=1e-6)
    expected_kl = kl_divergence(np.array(logits["g"]), np.array(logits["r"])).mean()
    assert kl.compute().value == pytest.approx(expected_kl, rel=1e-6)


def test_fd_arrays_round_trip_the_clip_frames_and_reference(tmp_path):
    m = get_metric("fd_openl3", embedder=StandInEmbedder("frames"), ci_resamples=10)
    assert m.arrays() == {}  # nothing before compute
    rng = np.random.default_rng(0)
    clips = {f"c{i}": rng.normal(size=(3 + i, 4)).astype(np.float32) for i in range(6)}
    for cid, f in clips.items():
        m.update(f, clip_id=cid)
    reference = rng.normal(size=(50, 4))
    m.update(reference, side="reference")
    r = m.compute()
    np.savez(tmp_path / "fd.npz", **m.arrays())
    frames, ref = read_frames(tmp_path / "fd.npz")
    assert list(frames) == sorted(clips) and all((frames[k] == clips[k]).all() for k in clips)
    assert ref.mu == pytest.approx(reference.mean(axis=0)) and ref.sigma == pytest.approx(np.cov(reference.T))
    assert {"fd_bias_corrected", "fd_ci_se"} <= set(r.extra) and r.ci_low <= r.value <= r.ci_high
    assert m.settings()["ci_method"].startswith("half-sampling")
