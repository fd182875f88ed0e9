import json

import numpy as np
import pytest

from t2mbench.cli import main
from t2mbench.core.audio import save_audio


def test_build_then_check(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("T2MBENCH_NO_PROGRESS", "1")
    out = tmp_path / "corpus"
    assert main(["corpus", "build", "--out", str(out), "--clips", "2", "--seconds", "2", "--seed", "34"]) == 0
    printed = capsys.readouterr().out
    assert f"built 2 clips in {out} (2 rendered, 0 reused from an earlier run)" in printed
    assert f"{out / 'manifest.jsonl'}: 2 clips, 0.1 min of audio (2.00-2.00 s each)" in printed
    assert "sample rates: 44100 Hz (2); channels: 2 (2)" in printed
    assert "captions: 2/2; ground truth: 2/2; sha256 verified: 2/2" in printed

    assert main(["corpus", "check", str(out)]) == 0
    assert "sha256 verified: 2/2" in capsys.readouterr().out

    # a second build of the same arguments reuses both clips
    assert main(["corpus", "build", "--out", str(out), "--clips", "2", "--seconds", "2", "--seed", "34"]) == 0
    assert "(0 rendered, 2 reused from an earlier run)" in capsys.readouterr().out

    # a corrupted clip is reported by id
    wav = out / "audio" / "clip00001.wav"
    wav.write_bytes(wav.read_bytes()[:-10] + b"\x00" * 10)
    assert main(["corpus", "check", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.strip().endswith("sha256 differs from the manifest: clip00001")
    assert main(["corpus", "check", str(out), "--no-hash"]) == 0


@pytest.mark.parametrize(
    "argv, message",
    [  # a count, length or seed that is no number of its kind is a usage error; a length no piece has, the builder's
        (["--clips", "0"], "corpus build: error: argument --clips: must be an integer >= 1, got '0'; see --help"),
        (["--seconds", "0"], "corpus build: error: argument --seconds: must be a finite number > 0, got '0'; "
                             "see --help"),
        (["--seconds", "5000"], "corpus: error: seconds must be between 1 and 1597 (the longest piece at 60 bpm), got "
                                "5000.0"),
        (["--seed", "-2"], "corpus build: error: argument --seed: must be an integer >= 0, got '-2'; see --help"),
    ],
)  # fmt: skip
def test_build_bad_arguments_exit_2_with_one_line(tmp_path, capsys, argv, message):
    assert main(["corpus", "build", "--out", str(tmp_path / "c"), *argv]) == 2
    captured = capsys.readouterr()
    assert captured.err == f"t2mbench {message}\n"


def test_build_into_a_file_is_refused(tmp_path, capsys):
    f = tmp_path / "file.txt"
    f.write_text("")
    assert main(["corpus", "build", "--out", str(f), "--clips", "1", "--seconds", "2"]) == 2
    assert capsys.readouterr().err == f"t2mbench corpus: error: {f} is a file, not a folder; choose another --out\n"


def _external_set(folder, ids):
    folder.mkdir()
    for i in ids:
        save_audio(folder / f"{i}.wav", np.full((1, 16000), 0.1, np.float32), 16000)


def test_check_accepts_an_external_csv_set(tmp_path, capsys):
    _external_set(tmp_path / "mc", ["a1", "b2"])
    (tmp_path / "mc" / "captions.csv").write_text("id,caption\na1,a calm piano\nb2,a fast reel\n")
    assert main(["corpus", "check", str(tmp_path / "mc")]) == 0
    out = capsys.readouterr().out
    assert "2 clips, 0.0 min of audio (1.00-1.00 s each)" in out
    assert "sample rates: 16000 Hz (2); channels: 1 (2)" in out
    assert "splits: none" in out and "captions: 2/2; ground truth: 0/2; sha256 verified: 0/2" in out


def test_check_lists_missing_and_unmatched_ids(tmp_path, capsys):
    _external_set(tmp_path / "sd", ["x1", "x2", "stray"])
    rows = [{"id": "x1", "caption": "c"}, {"id": "x2", "caption": "c"}, {"id": "x3", "caption": "c"},
            {"id": "x4", "caption": "c"}]
    (tmp_path / "sd" / "captions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert main(["corpus", "check", str(tmp_path / "sd")]) == 2
    assert capsys.readouterr().err.strip().endswith("ids listed without an audio file in " f"{tmp_path / 'sd'}: x3, x4")
    (tmp_path / "sd" / "captions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows[:2]))
    assert main(["corpus", "check", str(tmp_path / "sd")]) == 2
    assert capsys.readouterr().err.strip().endswith("audio files in " f"{tmp_path / 'sd'} that no row names: stray.wav")


def test_check_reports_nan_silent_and_over_long_clips_as_score_would(tmp_path, capsys):
    import soundfile as sf

    _external_set(tmp_path / "x", ["ok", "nan", "quiet", "long"])
    sf.write(tmp_path / "x" / "nan.wav", np.full(16000, np.nan, np.float32), 16000, subtype="FLOAT")
    save_audio(tmp_path / "x" / "quiet.wav", np.zeros((1, 16000), np.float32), 16000)
    save_audio(tmp_path / "x" / "long.wav", np.full((1, 32000), 0.1, np.float32), 16000)
    rows = [{"id": i, "caption": "c", "seconds": 1.0} for i in ("ok", "nan", "quiet", "long")]
    (tmp_path / "x" / "set.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert main(["corpus", "check", str(tmp_path / "x")]) == 2
    assert capsys.readouterr().err == (
        f"t2mbench corpus: error: {tmp_path / 'x' / 'set.jsonl'}: NaN or Inf samples (score refuses them): nan; "
        "digital silence (score cannot peak-normalise it for FD, KL or CLAP): quiet; longer than the manifest's "
        "seconds: long\n"
    )


def test_check_lists_duplicate_ids(tmp_path, capsys):
    _external_set(tmp_path / "d", ["a"])
    (tmp_path / "d" / "c.csv").write_text("id,caption\na,x\na,y\n")
    assert main(["corpus", "check", str(tmp_path / "d")]) == 2
    assert capsys.readouterr().err.strip().endswith("duplicate ids: a")


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["corpus", "--help"], ["t2mbench corpus build --out corpus --clips 64 --seconds 10 --seed 0",
                                "pip install --no-deps tinysoundfont", "columns id, caption and optionally path"]),
        (["corpus", "build", "--help"], ["t2mbench corpus build --out corpus --clips 64 --seconds 10 --seed 0"]),
        (["corpus", "check", "--help"], ["t2mbench corpus check musiccaps/captions.csv"]),
    ],
)
def test_help_shows_examples(capsys, argv, expected):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for line in expected:
        assert line in text
