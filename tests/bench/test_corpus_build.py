import dataclasses
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from t2mbench.bench.corpus import arrange as arr
from t2mbench.bench.corpus import build, render, scores, truth
from t2mbench.bench.corpus.build import build_corpus, split_of
from t2mbench.bench.corpus.check import check_set
from t2mbench.core.audio import loudness
from t2mbench.core.errors import ConfigError
from t2mbench.core.files import sha256_file
from t2mbench.core.manifest import load_clipset

SEED, CLIPS, SECONDS = 33, 4, 3.0  # seed 33 draws a Bach chorale and three folk tunes: quick to parse
SR = 44_100


def _hashes(folder):
    return {str(p.relative_to(folder)): sha256_file(p) for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name != "provenance.json"}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("corpus") / "c"
    result = build_corpus(out, CLIPS, SECONDS, SEED, progress=False)
    return out, result


def test_build_writes_audio_truth_and_manifest(built):
    out, result = built
    assert result.rendered == ["clip00000", "clip00001", "clip00002", "clip00003"] and result.reused == []
    clipset = load_clipset(out)
    assert clipset.ids == result.rendered
    for clip in clipset:
        info = sf.info(str(clip.path))
        assert (info.samplerate, info.channels, info.frames, info.subtype) == (SR, 2, int(SECONDS * SR), "PCM_16")
        assert (clip.sample_rate, clip.channels, clip.seconds) == (SR, 2, SECONDS)
        assert clip.sha256 == sha256_file(clip.path) and clip.truth.is_file()
        audio, _ = sf.read(str(clip.path), dtype="float32", always_2d=True)
        # -20 LUFS unless the -1 dBFS peak ceiling bound first
        level, peak = loudness(audio.T, SR), 20 * np.log10(np.abs(audio).max())
        assert level == pytest.approx(-20.0, abs=0.05) or (peak == pytest.approx(-1.0, abs=0.01) and level < -20)
        a = clip.attributes
        assert a["piece"] in {p.key for p in scores.load_table()}
        assert len(a["programs"]) == len(a["pans"]) == len(a["instruments"])
        assert a["tempo_bucket"] in ("slow", "medium", "fast") and a["mode"] in ("major", "minor")
        assert f"{a['tempo_bpm']} bpm" in clip.caption and f"{a['key']} {a['mode']}" in clip.caption
    frame = pd.read_parquet(out / "manifest.parquet")
    assert frame["id"].tolist() == clipset.ids
    assert set(frame.columns) >= {"id", "path", "caption", "seconds", "sample_rate", "channels", "sha256", "split",
                                  "attributes", "truth"}
    assert json.loads(frame["attributes"][0]) == clipset.clips[0].attributes


def test_same_arguments_give_identical_bytes_across_processes(built, tmp_path):
    out, _ = built
    again = build_corpus(tmp_path / "c", CLIPS, SECONDS, SEED, workers=2, progress=False)  # rendered in 2 processes
    assert again.rendered == built[1].rendered
    first, second = _hashes(out), _hashes(tmp_path / "c")
    assert "manifest.jsonl" in first and "manifest.parquet" in first and "audio/clip00003.wav" in first
    assert first == second


def test_clip_i_does_not_depend_on_the_number_of_clips(built, tmp_path):
    out, _ = built
    build_corpus(tmp_path / "c", 2, SECONDS, SEED, progress=False)
    for cid in ("clip00000", "clip00001"):
        assert sha256_file(tmp_path / "c" / "audio" / f"{cid}.wav") == sha256_file(out / "audio" / f"{cid}.wav")


def test_a_different_seed_gives_different_clips(built, tmp_path):
    out, _ = built
    build_corpus(tmp_path / "c", 1, SECONDS, SEED + 1, progress=False)
    assert sha256_file(tmp_path / "c" / "audio" / "clip00000.wav") != sha256_file(out / "audio" / "clip00000.wav")


def test_a_split_build_makes_the_same_clips_a_full_build_makes(built, tmp_path):
    out, result = built
    train_ids = [c.id for c in result.clips if c.split == "train"]
    only = build_corpus(tmp_path / "c", len(train_ids), SECONDS, SEED, split="train", progress=False)
    assert [c.id for c in only.clips] == train_ids and {c.split for c in only.clips} == {"train"}
    for cid in train_ids:
        assert sha256_file(tmp_path / "c" / "audio" / f"{cid}.wav") == sha256_file(out / "audio" / f"{cid}.wav")


def test_splits_go_by_piece():
    table = scores.load_table()
    test_pieces = [p.key for p in table if split_of(p.key) == "test"]
    assert 0.1 < len(test_pieces) / len(table) < 0.3
    # a build of many short clips: pieces recur, never in both splits
    picks = [arr.choose_piece(build.clip_streams(5, i)[0], table, 2.0).key for i in range(300)]
    splits = {}
    for key in picks:
        splits.setdefault(key, set()).add(split_of(key))
    assert all(len(s) == 1 for s in splits.values())
    assert {s for v in splits.values() for s in v} == {"train", "test"}


def test_manifest_split_is_the_piece_split(built):
    out, _ = built
    for clip in load_clipset(out):
        assert clip.split == split_of(clip.attributes["piece"])


def test_truth_agrees_with_the_written_audio_and_attributes(built):
    out, _ = built
    for clip in load_clipset(out):
        t = np.load(clip.truth)
        a = clip.attributes
        assert float(t["tempo_bpm"]) == a["tempo_bpm"] and t["programs"].tolist() == a["programs"]
        assert (str(t["key"]), str(t["mode"]), float(t["note_density"])) == (a["key"], a["mode"], a["note_density"])
        assert int(t["frame_rate"]) == 100 and len(t["melody_times"]) == int(SECONDS * 100)
        period = 60.0 / a["tempo_bpm"]
        np.testing.assert_allclose(np.diff(t["beat_times"]), period, atol=1.0 / SR)
        voiced = t["melody_midi"] >= 0
        np.testing.assert_allclose(t["melody_hz"][voiced], 440 * 2 ** ((t["melody_midi"][voiced] - 69) / 12))
        assert (t["melody_hz"][~voiced] == 0).all() and voiced.mean() > 0.7
        audio, _ = sf.read(str(clip.path), dtype="float32", always_2d=True)
        times, db = truth.loudness_curve(audio.T, SR)
        np.testing.assert_allclose(t["loudness_times"], times)
        loud = db > -60  # 16-bit quantisation only moves quiet windows
        np.testing.assert_allclose(t["loudness_db"][loud], db[loud], atol=0.01)


def _render_single(key, seconds, program, transpose, seed=5):
    score = scores.parse_score({p.key: p for p in scores.load_table()}[key])
    a = arr.arrange(np.random.default_rng(seed), score, seconds)
    a = dataclasses.replace(a, programs=tuple(program for _ in a.programs), transpose=transpose)
    notes = arr.clip_notes(score, a, seconds, SR)
    audio = render.render(render.Notes(notes.part, notes.start, notes.end, notes.pitch, notes.velocity),
                          a.programs, a.pans, int(seconds * SR))
    return a, notes, audio.mean(axis=0).astype(np.float64)


def test_melody_truth_is_the_pitch_heard_in_a_solo_render():
    # a one-part tune on the flute (a strong fundamental), transposed up 3 semitones
    seconds = 4.0
    _, notes, mono = _render_single("oneills1850/0101-0200#102", seconds, program=73, transpose=3)
    times, midi, hz = truth.melody(notes, seconds, SR)
    n, window = 4096, np.hanning(4096)
    freqs = np.fft.rfftfreq(n, 1 / SR)
    band = (freqs > 80) & (freqs < 4000)
    agree = total = 0
    for k in range(6, len(midi) - 6):
        steady = midi[k] >= 0 and midi[k - 6] == midi[k] == midi[k + 6]
        centre = int(times[k] * SR)
        if not steady or centre < n // 2 or centre + n // 2 > len(mono):
            continue
        spectrum = np.abs(np.fft.rfft(mono[centre - n // 2 : centre + n // 2] * window))
        peak = freqs[band][np.argmax(spectrum[band])]
        total += 1
        agree += abs(12 * np.log2(peak / hz[k])) < 0.5
    assert total > 150 and agree / total > 0.95
    # and the truth moves with the transposition
    _, notes0, _ = _render_single("oneills1850/0101-0200#102", seconds, program=73, transpose=0)
    _, midi0, _ = truth.melody(notes0, seconds, SR)
    assert ((midi - midi0)[midi >= 0] == 3).all()


def _onset_strength(mono, hop=256, n=1024):
    frames = np.lib.stride_tricks.sliding_window_view(mono, n)[::hop] * np.hanning(n)
    mag = np.log1p(100 * np.abs(np.fft.rfft(frames, axis=1)))
    flux = np.maximum(np.diff(mag, axis=0), 0).sum(axis=1)
    return (np.arange(1, len(mag)) * hop + n / 2) / SR, flux


def test_beat_times_fall_on_note_onsets_in_the_audio():
    # a jig in 6/8 on the piano: an onset on every dotted-quarter beat, none half a beat later
    seconds = 4.0
    a, notes, mono = _render_single("ryansMammoth/KatysRamblesJig", seconds, program=0, transpose=0)
    t, flux = _onset_strength(mono)
    threshold = 3 * np.median(flux)
    period = 60.0 / a.tempo_bpm

    def hits(times):
        return np.mean([flux[(t >= x - 0.02) & (t <= x + 0.03)].max() > threshold for x in times])

    beats = notes.beats[(notes.beats > 0.05) & (notes.beats < seconds - 0.1)]
    assert len(beats) >= 4
    assert hits(beats) > 0.9
    assert hits(beats[:-1] + period / 2) < 0.2


def test_resume_renders_only_what_is_missing(built, tmp_path):
    out, _ = built
    work = tmp_path / "c"
    shutil.copytree(out, work)
    reference = _hashes(out)
    (work / "manifest.jsonl").unlink()
    (work / "manifest.parquet").unlink()
    (work / "audio" / "clip00002.wav").unlink()
    stale = work / "audio" / ".clip00003.wav.abc123.tmp.wav"
    stale.write_bytes(b"half a file")
    before = {p.name: p.stat().st_mtime_ns for p in (work / "audio").glob("clip*.wav")}
    result = build_corpus(work, CLIPS, SECONDS, SEED, progress=False)
    assert result.rendered == ["clip00002"]
    assert result.reused == ["clip00000", "clip00001", "clip00003"]
    assert {n: (work / "audio" / n).stat().st_mtime_ns for n in before} == before  # untouched
    assert not stale.exists()
    assert _hashes(work) == reference


def test_a_clip_whose_audio_was_altered_is_rendered_again(built, tmp_path):
    out, _ = built
    work = tmp_path / "c"
    shutil.copytree(out, work)
    wav = work / "audio" / "clip00001.wav"
    wav.write_bytes(wav.read_bytes()[:-100])
    result = build_corpus(work, CLIPS, SECONDS, SEED, progress=False)
    assert result.rendered == ["clip00001"]
    assert _hashes(work) == _hashes(out)


def test_a_crash_leaves_no_partial_files_and_the_rerun_finishes(built, tmp_path, monkeypatch):
    out, _ = built
    work = tmp_path / "c"
    real = truth.write_npz

    def failing(path, arrays):
        if "clip00002" in str(path):
            raise KeyboardInterrupt  # as if killed while writing clip 2's ground truth
        return real(path, arrays)

    monkeypatch.setattr(truth, "write_npz", failing)
    with pytest.raises(KeyboardInterrupt):
        build_corpus(work, CLIPS, SECONDS, SEED, progress=False)
    assert not (work / "manifest.jsonl").exists()
    assert not (work / "records" / "clip00002.json").exists()
    assert not [p for p in work.rglob("*") if ".tmp" in p.name]
    monkeypatch.setattr(truth, "write_npz", real)
    result = build_corpus(work, CLIPS, SECONDS, SEED, progress=False)
    assert "clip00002" in result.rendered and "clip00002" not in result.reused
    assert _hashes(work) == _hashes(out)


def test_a_build_killed_mid_way_leaves_only_whole_files_and_resumes(built, tmp_path):
    out, _ = built
    work, clips = tmp_path / "c", 8  # clips 4-7 of seed 33 are short pieces too
    code = f"from t2mbench.bench.corpus import build_corpus; build_corpus({str(work)!r}, {clips}, {SECONDS}, {SEED})"
    proc = subprocess.Popen([sys.executable, "-c", code], env={**os.environ, "T2MBENCH_NO_PROGRESS": "1"},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    # wait for a finished record (final name): "records/*.json" also matches a writer's temporary file
    while proc.poll() is None and time.monotonic() < deadline and not list(work.glob("records/clip*.json")):
        time.sleep(0.002)
    proc.kill()  # SIGKILL: no cleanup runs
    proc.wait()
    assert not (work / "manifest.jsonl").exists(), "the build finished before it could be killed"
    # final names only: pathlib's glob also matches the killed writer's ".<name>.<random>.tmp.<ext>"
    finished = sorted(p.stem for p in work.glob("records/clip*.json"))
    assert finished
    for wav in work.glob("audio/clip*.wav"):  # whatever carries a final name is whole
        assert sf.info(str(wav)).frames == int(SECONDS * SR)
    for npz in work.glob("truth/clip*.npz"):
        assert len(np.load(npz)["melody_midi"]) == int(SECONDS * 100)

    result = build_corpus(work, clips, SECONDS, SEED, progress=False)
    assert result.reused == finished and len(result.rendered) == clips - len(finished)
    assert not [p for p in work.rglob("*") if ".tmp" in p.name]
    assert check_set(work).hashes_verified == clips
    for cid in ("clip00000", "clip00001", "clip00002", "clip00003"):  # the fixture's first four clips
        assert sha256_file(work / "audio" / f"{cid}.wav") == sha256_file(out / "audio" / f"{cid}.wav")


def test_provenance_records_seeds_versions_and_soundfont(built):
    out, _ = built
    record = json.loads((out / "provenance.json").read_text())
    corpus = record["extra"]["corpus"]
    assert record["seeds"] == {"corpus": SEED}
    assert corpus["soundfont"]["sha256"] == sha256_file(render.soundfont_path())
    assert corpus["music21"] and corpus["pretty_midi"] and corpus["tinysoundfont"] == "0.3.7"
    assert corpus["piece_table"]["sha256"] == sha256_file(scores.PIECES_FILE)
    assert corpus["pieces_parsed_differently_from_table"] == []


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"clips": 0}, r"clips must be a whole number >= 1, got 0"),
        ({"clips": 2.5}, r"clips must be a whole number >= 1, got 2.5"),
        ({"seconds": 0}, r"seconds must be between 1 and \d+ \(the longest piece at 60 bpm\), got 0"),
        ({"seconds": -3.0}, r"seconds must be between 1 and \d+ \(the longest piece at 60 bpm\), got -3.0"),
        ({"seconds": 1e6}, r"seconds must be between 1 and 1597 \(the longest piece at 60 bpm\), got 1000000.0"),
        ({"seed": -1}, r"seed must be a whole number >= 0, got -1"),
        ({"workers": 0}, r"workers must be a whole number >= 1, got 0"),
        ({"split": "valid"}, r"split must be one of train, test, got 'valid'"),
    ],
)
def test_bad_arguments(tmp_path, kwargs, message):
    args = {"clips": 1, "seconds": 2.0, "seed": 0, **kwargs}
    with pytest.raises(ConfigError, match=f"^{message}$"):
        build_corpus(tmp_path / "c", args.pop("clips"), args.pop("seconds"), args.pop("seed"), progress=False, **args)
    assert not (tmp_path / "c").exists()


def test_out_must_not_be_a_file(tmp_path):
    f = tmp_path / "taken"
    f.write_text("x")
    with pytest.raises(ConfigError, match=r"^out=.*taken is a file; give a folder for the corpus$"):
        build_corpus(f, 1, 2.0, 0, progress=False)


def _children(pid: int) -> set[int]:
    """Processes whose parent is ``pid`` (from /proc)."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.add(int(stat.parent.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs /proc (Linux)")
def test_workers_die_with_a_killed_parent(tmp_path):
    """SIGKILL a real ``corpus build --workers 2``: its two renderers must not outlive it."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "t2mbench", "corpus", "build", "--out", str(tmp_path / "c"), "--clips", "12",
         "--seconds", "3", "--seed", "33", "--workers", "2"],
        env={**os.environ, "T2MBENCH_NO_PROGRESS": "1"}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    workers: set[int] = set()
    while proc.poll() is None and time.monotonic() < deadline and len(workers) < 2:
        workers = {p for p in _children(proc.pid) if _alive(p)}
        time.sleep(0.05)
    assert len(workers) >= 2, "the build never started its two workers"
    proc.kill()
    proc.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(_alive(p) for p in workers):
        time.sleep(0.05)
    assert not [p for p in workers if _alive(p)]
