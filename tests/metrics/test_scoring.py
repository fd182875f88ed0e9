"""The scoring engine: one long results table, shared decoding, cache reuse and resume, and the
documented policy for every kind of bad input."""

import json

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from support.scoring_sets import write_pair, write_set
from support.stand_in_embedder import StandInEmbedder

import t2mbench.metrics.clip_audio as clip_audio
from t2mbench.core import results
from t2mbench.core.audio import load_audio, save_audio
from t2mbench.core.errors import AudioError, ConfigError, ManifestError, MissingWeightsError
from t2mbench.metrics.base import MetricError
from t2mbench.metrics.cache import EmbeddingCache
from t2mbench.metrics.registry import get_metric
from t2mbench.metrics.scoring import score
from t2mbench.metrics.sisdr import si_sdr
from t2mbench.metrics.spectral import stft_distance

SIGNAL = ["stft", "mel", "sisdr", "melody_acc", "pitch_acc"]


def stand_ins():
    return {kind: StandInEmbedder(kind) for kind in ("frames", "logits", "vector")}


def embedding_metrics(emb, **fd):
    return [get_metric("fd_openl3", embedder=emb["frames"], ci_resamples=20, **fd),
            get_metric("kl_passt", embedder=emb["logits"]), get_metric("clap", embedder=emb["vector"])]


@pytest.fixture(scope="module")
def full_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("full")
    gen, ref = write_pair(root, n=4)
    emb = stand_ins()
    run = score(gen, ref, [*embedding_metrics(emb), *SIGNAL], root / "out", cache=EmbeddingCache(root / "cache"),
                progress=False)
    return root, gen, ref, run, emb


def test_long_table_with_per_clip_and_aggregate_rows(full_run):
    root, _, _, run, _ = full_run
    table = run.table
    assert list(table.columns) == list(results.COLUMNS)
    assert set(table.schema_version) == {results.SCHEMA_VERSION}
    agg = table[table.kind == "aggregate"].set_index("metric")
    for name in ["fd_openl3", "kl_passt", "clap", *SIGNAL]:
        assert np.isfinite(agg.loc[name, "value"])
        assert agg.loc[name, "ci_low"] <= agg.loc[name, "value"] <= agg.loc[name, "ci_high"]
    clips = table[table.kind == "clip"]
    assert clips.groupby("metric").size().to_dict() == {
        m: 4 for m in ["kl_passt", "clap", "stft", "stft.sc", "stft.log_mag", "mel", "mel.sc", "mel.log_mag", "sisdr",
                       "melody_acc", "pitch_acc", "pitch_acc.raw_chroma", "pitch_acc.overall"]
    }
    assert set(clips.sampler) == {"euler"} and set(clips.steps) == {8}
    assert sorted(clips[clips.metric == "sisdr"].seed) == [200, 201, 202, 203]
    # the files hold the same table, through the schema's reader
    pd.testing.assert_frame_equal(results.read(root / "out" / "scores.parquet"), table)
    pd.testing.assert_frame_equal(results.read(root / "out" / "scores.csv"), table)


def test_values_equal_the_functional_twins_on_the_shared_audio(full_run):
    _, gen, ref, run, _ = full_run
    per_clip = run.results["sisdr"].per_clip
    stft = run.results["stft"].per_clip
    for cid in per_clip:
        g = load_audio(gen / f"{cid}.wav", sample_rate=44_100)[0]
        r = load_audio(ref / f"{cid}.wav", sample_rate=44_100)[0]
        assert per_clip[cid] == pytest.approx(float(si_sdr(g, r)[0]), abs=1e-9)
        assert stft[cid] == pytest.approx(float(stft_distance(g, r)[0]), rel=1e-9)
    assert run.results["sisdr"].value == pytest.approx(np.mean(list(per_clip.values())))


def test_summary_and_provenance_record_versions_settings_and_weights(full_run):
    root, _, _, run, emb = full_run
    summary = json.loads((root / "out" / "summary.json").read_text())
    fd = summary["metrics"]["fd_openl3"]
    assert fd["protocol_version"] == "sam-fd-1"
    assert fd["settings"]["sample_rate"] == 44_100 and fd["settings"]["channels"] == 2
    assert fd["settings"]["embedder_settings"]["protocol_version"] == "stand-in-1"
    assert fd["weights"] == {"stand_in": emb["frames"].weights_sha256}
    assert summary["metrics"]["stft"]["settings"]["sc_scope"] == "signal"
    assert summary["metrics"]["sisdr"]["higher_is_better"] is True
    prov = json.loads((root / "out" / "provenance.json").read_text())
    assert prov["inputs"]["generated_manifest"]["path"].endswith("generated/manifest.jsonl")
    assert prov["weights"]["stand_in"] in {e.weights_sha256 for e in emb.values()}
    assert prov["seeds"] == {"bootstrap": 0}
    timing = summary["timing"]
    assert timing["decodes"] == 8  # 4 generated + 4 reference clips, each decoded once


def test_one_decode_per_clip_and_one_resample_per_rate(tmp_path, monkeypatch):
    gen, ref = write_pair(tmp_path, n=2)
    decoded = []
    real = clip_audio.load_audio
    monkeypatch.setattr(clip_audio, "load_audio", lambda p, **k: decoded.append(p.name) or real(p, **k))
    emb = stand_ins()
    run = score(gen, ref, [*embedding_metrics(emb), "stft", "sisdr", "melody_acc"], tmp_path / "out", use_cache=False,
                progress=False)
    assert sorted(decoded) == ["clip0.wav", "clip0.wav", "clip1.wav", "clip1.wav"]
    # per clip at 22.05 kHz: soxr to 44.1 (fd, stft, sisdr) and 32 kHz (kl), Hann-sinc to 44.1 (melody),
    # and soxr to 48 kHz for clap, which reads the generated clips only
    assert run.summary["timing"]["resamples"] == 2 * 2 * 3 + 2


def test_rescoring_does_no_embedding_and_no_decoding(tmp_path, monkeypatch):
    gen, ref = write_pair(tmp_path, n=3)
    cache = EmbeddingCache(tmp_path / "cache")
    emb = stand_ins()
    first = score(gen, ref, embedding_metrics(emb), tmp_path / "a", cache=cache, progress=False)
    calls = {k: e.calls for k, e in emb.items()}
    assert calls == {"frames": 6, "logits": 6, "vector": 3} and emb["vector"].text_calls == 3
    second = score(gen, ref, embedding_metrics(emb), tmp_path / "b", cache=cache, progress=False)
    assert {k: e.calls for k, e in emb.items()} == calls and emb["vector"].text_calls == 3
    assert second.summary["timing"]["decodes"] == 0
    pd.testing.assert_frame_equal(first.table.drop(columns="run_id"), second.table.drop(columns="run_id"))


class _Killed(Exception):
    pass


def test_a_killed_run_resumes_where_it_stopped(tmp_path):
    gen, ref = write_pair(tmp_path, n=4)
    cache = EmbeddingCache(tmp_path / "cache")
    emb = StandInEmbedder("logits")
    real = emb.embed

    def dies_on_the_fifth(audio, sr):
        if emb.calls == 4:
            raise _Killed
        return real(audio, sr)

    emb.embed = dies_on_the_fifth
    with pytest.raises(_Killed):
        score(gen, ref, [get_metric("kl_passt", embedder=emb)], tmp_path / "a", cache=cache, progress=False)
    assert emb.calls == 4 and not (tmp_path / "a").exists()
    emb.embed = real
    run = score(gen, ref, [get_metric("kl_passt", embedder=emb)], tmp_path / "b", cache=cache, progress=False)
    assert emb.calls == 8  # 4 before the kill + the 4 not yet cached (8 embeddings in all)
    assert run.results["kl_passt"].n_clips == 4


def test_a_corrupt_cache_entry_is_recomputed(tmp_path):
    gen, ref = write_pair(tmp_path, n=3)
    cache = EmbeddingCache(tmp_path / "cache")
    emb = StandInEmbedder("logits")
    first = score(gen, ref, [get_metric("kl_passt", embedder=emb)], tmp_path / "a", cache=cache, progress=False)
    entry = sorted((tmp_path / "cache" / "stand_in").rglob("*.emb"))[0]
    data = bytearray(entry.read_bytes())
    data[-3] ^= 0xFF
    entry.write_bytes(bytes(data))
    second = score(gen, ref, [get_metric("kl_passt", embedder=emb)], tmp_path / "b", cache=cache, progress=False)
    assert emb.calls == 6 + 1 and cache.corrupt == 1
    assert second.results["kl_passt"].value == first.results["kl_passt"].value


# ---- bad input: one documented policy each -------------------------------------------------


def test_empty_set(tmp_path):
    (tmp_path / "gen").mkdir()
    (tmp_path / "gen" / "manifest.jsonl").write_text("")
    with pytest.raises(ManifestError, match="the set is empty"):
        score(tmp_path / "gen", None, ["pitch_acc"], tmp_path / "out", progress=False)


def test_corrupt_file(tmp_path):
    gen, ref = write_pair(tmp_path, n=2)
    (gen / "clip1.wav").write_bytes(b"RIFF....WAVEfmt garbage")
    with pytest.raises(AudioError, match=r"clip1\.wav: unreadable or corrupt audio file"):
        score(gen, ref, ["sisdr"], tmp_path / "out", progress=False)


def test_nan_samples(tmp_path):
    gen, ref = write_pair(tmp_path, n=2)
    x = np.zeros((100, 2), np.float32)
    x[10, 1] = np.nan
    sf.write(gen / "clip0.wav", x, 22_050, subtype="FLOAT")
    with pytest.raises(AudioError, match=r"clip0\.wav: contains NaN or Inf samples"):
        score(gen, ref, ["stft"], tmp_path / "out", progress=False)


def test_silence_scores_for_signal_metrics_and_is_refused_by_embedding_protocols(tmp_path):
    gen, ref = write_pair(tmp_path, n=2)
    save_audio(gen / "clip0.wav", np.zeros((2, 11_025), np.float32), 22_050)  # one generated clip is digital silence
    run = score(gen, ref, ["stft", "sisdr"], tmp_path / "out", progress=False)
    assert run.results["sisdr"].per_clip["clip0"] == pytest.approx(-80.0)
    assert np.isfinite(run.results["stft"].per_clip["clip0"])
    with pytest.raises(AudioError, match=r"clip0\.wav: is digital silence; it cannot be peak-normalised"):
        score(gen, ref, [get_metric("kl_passt", embedder=StandInEmbedder("logits"))], tmp_path / "o2",
              use_cache=False, progress=False)


def test_too_short(tmp_path):
    gen, ref = write_pair(tmp_path, n=2, seconds=0.005)
    with pytest.raises(AudioError, match=r"clip0\.wav: is 220 samples at 44100 Hz \(0\.0050 s\); this metric needs at "
                                         r"least 513"):
        score(gen, ref, ["stft"], tmp_path / "out", progress=False)


def test_manifest_rate_that_the_file_does_not_have(tmp_path):
    gen, ref = write_pair(tmp_path, n=2)
    rows = [json.loads(line) for line in (gen / "manifest.jsonl").read_text().splitlines()]
    rows[1]["sample_rate"] = 44_100
    (gen / "manifest.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    with pytest.raises(ManifestError, match=r"clip1\.wav: the manifest says 44100 Hz but the file is 22050 Hz"):
        score(gen, ref, ["sisdr"], tmp_path / "out", progress=False)


def test_other_sample_rates_are_resampled(tmp_path):
    ids = ["a", "b"]
    gen = write_set(tmp_path / "g", ids, noise=0.05, sample_rate=48_000)
    ref = write_set(tmp_path / "r", ids, noise=0.01, sample_rate=32_000, seed=5)
    run = score(gen, ref, ["sisdr"], tmp_path / "out", progress=False)
    g = load_audio(gen / "a.wav", sample_rate=44_100)[0]
    r = load_audio(ref / "a.wav", sample_rate=44_100)[0]
    n = min(g.shape[1], r.shape[1])
    assert run.results["sisdr"].per_clip["a"] == pytest.approx(float(si_sdr(g[:, :n], r[:, :n])[0]), abs=1e-9)


def test_mono_is_duplicated_where_stereo_is_expected(tmp_path):
    ids = ["a", "b"]
    gen = write_set(tmp_path / "g", ids, noise=0.05, channels=1)
    ref = write_set(tmp_path / "r", ids, noise=0.01, channels=2, seed=5)
    run = score(gen, ref, ["stft", get_metric("fd_openl3", embedder=StandInEmbedder("frames"), ci_resamples=0)],
                tmp_path / "out", use_cache=False, progress=False)
    g = np.repeat(load_audio(gen / "a.wav", sample_rate=44_100)[0], 2, axis=0)
    r = load_audio(ref / "a.wav", sample_rate=44_100)[0]
    assert run.results["stft"].per_clip["a"] == pytest.approx(float(stft_distance(g, r)[0]), rel=1e-9)
    assert np.isfinite(run.results["fd_openl3"].value)
    three = write_set(tmp_path / "three", ids, noise=0.05, channels=3)
    with pytest.raises(AudioError, match="clip 'a': generated has 3 channels, reference 2; paired metrics need equal"):
        score(three, ref, ["stft"], tmp_path / "o3", progress=False)


def test_ids_that_differ(tmp_path):
    gen = write_set(tmp_path / "g", ["a", "b", "c"], noise=0.05)
    ref = write_set(tmp_path / "r", ["a", "b", "d"], noise=0.01)
    with pytest.raises(ManifestError, match=r"generated and reference ids differ; only in generated \(.*\): c; "
                                            r"only in reference \(.*\): d"):
        score(gen, ref, ["sisdr"], tmp_path / "out", progress=False)
    # FD is a set metric: different ids are fine
    run = score(gen, ref, [get_metric("fd_openl3", embedder=StandInEmbedder("frames"), ci_resamples=0)],
                tmp_path / "out", use_cache=False, progress=False)
    assert run.results["fd_openl3"].extra == {"generated_frames": 6.0, "reference_frames": 6.0}


def test_fewer_frames_than_dimensions_is_scored_with_a_warning(tmp_path):
    gen, ref = write_pair(tmp_path, n=2)
    run = score(gen, ref, [get_metric("fd_openl3", embedder=StandInEmbedder("frames", dim=16), ci_resamples=0)],
                tmp_path / "out", use_cache=False, progress=False)
    warnings = run.summary["metrics"]["fd_openl3"]["warnings"]
    assert len(warnings) == 2 and warnings[0].startswith("generated set has 4 frames for 32 dimensions")


def test_missing_weights_fail_before_any_clip_is_read(tmp_path, monkeypatch):
    monkeypatch.setenv("T2MBENCH_HOME", str(tmp_path / "home"))
    gen, ref = write_pair(tmp_path, n=2)
    (gen / "clip0.wav").write_bytes(b"corrupt")  # would fail with AudioError if it were read
    with pytest.raises(MissingWeightsError, match="weights 'openl3-mel256-music' not found"):
        score(gen, ref, ["stft", "fd_openl3"], tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()


def test_configuration_errors(tmp_path):
    gen, ref = write_pair(tmp_path, n=1)
    with pytest.raises(ConfigError, match="unknown metric 'fad'; known: fd_openl3, kl_passt, clap, stft"):
        score(gen, ref, ["fad"], tmp_path / "out", progress=False)
    with pytest.raises(ConfigError, match="metrics needing a reference set: sisdr; pass --reference"):
        score(gen, None, ["sisdr"], tmp_path / "out", progress=False)
    with pytest.raises(ConfigError, match="settings given for metrics that are not run: mel"):
        score(gen, ref, ["stft"], tmp_path / "out", settings={"mel": {"n_mels": 64}}, progress=False)
    with pytest.raises(ConfigError, match="metric 'stft': bad settings .*unexpected keyword argument 'nfft'"):
        score(gen, ref, ["stft"], tmp_path / "out", settings={"stft": {"nfft": 512}}, progress=False)


def test_a_clip_error_names_the_clip_and_metric(tmp_path):
    gen, ref = write_pair(tmp_path, n=2)
    m = get_metric("melody_acc")
    m.feed = lambda item: (_ for _ in ()).throw(ValueError("bad frame"))
    with pytest.raises(MetricError, match="melody_acc: clip 'clip0': bad frame"):
        score(gen, ref, [m], tmp_path / "out", progress=False)


def test_a_failed_write_leaves_the_earlier_results_whole(tmp_path, monkeypatch):
    """Disk full while writing summary.json: the folder keeps the earlier run's set, every file of
    it, and no new scores.parquet beside the old summary.json."""
    import errno

    import t2mbench.metrics.scoring as scoring

    gen, ref = write_pair(tmp_path, n=2)
    out = tmp_path / "out"
    score(gen, ref, ["sisdr"], out, progress=False)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    assert sorted(before) == ["provenance.json", "scores.csv", "scores.parquet", "summary.json"]

    def full(path, obj):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(scoring, "write_json", full)
    with pytest.raises(OSError, match="No space left on device"):
        score(gen, ref, ["stft"], out, progress=False)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_a_set_killed_while_moving_in_is_finished_by_the_next_run(tmp_path):
    from t2mbench.core.files import STAGED, STAGING, finish_staged

    (tmp_path / "a.txt").write_text("old")
    (tmp_path / "b.txt").write_text("old")
    staging = tmp_path / STAGING
    staging.mkdir()
    (staging / "b.txt").write_text("new")  # a.txt already moved in when the run was killed
    (staging / STAGED).write_text("")
    finish_staged(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "b.txt"]
    assert (tmp_path / "b.txt").read_text() == "new"
    staging.mkdir()
    (staging / "a.txt").write_text("half")  # no COMPLETE marker: never moved in
    finish_staged(tmp_path)
    assert (tmp_path / "a.txt").read_text() == "old" and not staging.exists()


def test_a_generated_clip_much_shorter_than_its_reference_is_scored_with_a_warning(tmp_path):
    ids = ["clip0", "clip1"]
    ref = write_set(tmp_path / "r", ids, noise=0.01, seconds=1.0, seed=5)
    gen = write_set(tmp_path / "g", ids, noise=0.05, seconds=1.0, seed=7)
    x, sr = load_audio(gen / "clip1.wav")
    save_audio(gen / "clip1.wav", x[:, : sr // 2], sr)  # a truncated generation: 0.5 s of 1 s
    run = score(gen, ref, ["sisdr", "stft", "melody_acc"], tmp_path / "out", progress=False)
    message = "clip 'clip1': the generated clip (0.50 s) is much shorter than its reference (1.00 s)"
    for name in ("sisdr", "stft", "melody_acc"):
        warnings = run.summary["metrics"][name]["warnings"]
        assert len(warnings) == 1 and warnings[0].startswith(message), name
