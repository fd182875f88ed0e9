"""``t2mbench score``: files written, printed aggregates, exit code 2 with one line on user mistakes."""

import json

import pandas as pd
import pytest
from support.scoring_sets import write_pair

from t2mbench.bench.commands.score import parse_settings
from t2mbench.cli import main
from t2mbench.core.errors import ConfigError


def test_scores_a_set_and_prints_the_aggregates(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("T2MBENCH_HOME", str(tmp_path / "home"))
    gen, ref = write_pair(tmp_path, n=3)
    out = tmp_path / "scores"
    rc = main(["score", "--generated", str(gen), "--reference", str(ref), "--metrics", "stft,sisdr,pitch_acc",
               "--out", str(out), "--set", "stft.sc_scope=batch", "--set", "sisdr.ci_resamples=500",
               "--system", "sysA", "--seed", "3"])
    assert rc == 0
    printed = capsys.readouterr().out.splitlines()
    summary = json.loads((out / "summary.json").read_text())
    table = pd.read_parquet(out / "scores.parquet")
    assert set(table.system) == {"sysA"}
    assert summary["metrics"]["stft"]["settings"]["sc_scope"] == "batch"
    assert summary["metrics"]["sisdr"]["settings"]["ci_resamples"] == 500
    assert summary["metrics"]["sisdr"]["settings"]["seed"] == 3
    sisdr = summary["metrics"]["sisdr"]
    assert printed[1] == (f"sisdr        {sisdr['value']:.6g}  95% CI [{sisdr['ci_low']:.6g}, {sisdr['ci_high']:.6g}]"
                          "  (3 clips)")
    assert printed[-1] == f"wrote {out}/scores.parquet, scores.csv, summary.json, provenance.json"
    assert (out / "scores.csv").is_file() and (out / "provenance.json").is_file()


def test_list_names_every_metric(capsys):
    assert main(["score", "--list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    names = [line.split()[0] for line in lines if not line.startswith("preset ")]
    assert names == ["fd_openl3", "kl_passt", "clap", "stft", "mel", "sisdr", "melody_acc", "pitch_acc", "fd_evaluator",
                     "kl_evaluator", "clap_evaluator", "fad_mert", "fad_clap_music", "aesthetics_pq", "aesthetics_pc",
                     "aesthetics_ce", "aesthetics_cu", "kad_openl3", "kad_clap", "kad_evaluator", "kad_mert",
                     "kad_clap_music", "mad", "mad_evaluator"]
    assert lines[-1].startswith("preset paper-2026: fd_openl3, kl_passt, clap, fad_clap_music, ")


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--metrics", "stft,nope"], "t2mbench score: error: unknown metric 'nope'; known: fd_openl3"),
        (["--metrics", "stft", "--set", "stft"], "t2mbench score: error: --set 'stft': expected METRIC.KEY=VALUE"),
        (["--metrics", "fd_openl3"], "t2mbench score: error: weights 'openl3-mel256-music' not found"),
        ([], "t2mbench score: error: missing --metrics or --preset (see t2mbench score --help)"),
    ],
)
def test_user_mistakes_exit_2_with_one_line(tmp_path, capsys, monkeypatch, extra, message):
    monkeypatch.setenv("T2MBENCH_HOME", str(tmp_path / "home"))
    gen, ref = write_pair(tmp_path, n=1)
    rc = main(["score", "--generated", str(gen), "--reference", str(ref), "--out", str(tmp_path / "o"), *extra])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.startswith(message) and err.count("\n") == 1


def test_settings_values_are_json_when_they_parse():
    assert parse_settings(["fd_openl3.fad_inf=true", "fd_openl3.method=sqrtm", "stft.n_fft=2048"]) == {
        "fd_openl3": {"fad_inf": True, "method": "sqrtm"}, "stft": {"n_fft": 2048}}
    with pytest.raises(ConfigError, match="--set '=3': expected METRIC.KEY=VALUE"):
        parse_settings(["=3"])


@pytest.mark.parametrize(
    ("metric", "setting", "message"),
    [
        ("kl_evaluator", "kl_evaluator.audio_output=attribute_logit",
         "t2mbench score: error: metric 'kl_evaluator': unknown audio_output 'attribute_logit'; use one of embed, "
         "attribute_logits, clip_embedding\n"),
        ("stft", "stft.nfft=512",
         "t2mbench score: error: metric 'stft': bad settings (unexpected keyword argument 'nfft'); valid: mel, "
         "sample_rate, sc_scope, n_fft, hop_length, win_length, n_mels, ci_resamples, confidence, seed\n"),
        ("sisdr", "sisdr.ci_resamples=-1",
         "t2mbench score: error: metric 'sisdr': ci_resamples must be an integer >= 0, got -1\n"),
    ],
)  # fmt: skip
def test_a_bad_setting_stops_the_run_before_any_audio_is_read(tmp_path, capsys, monkeypatch, metric, setting, message):
    monkeypatch.setenv("T2MBENCH_HOME", str(tmp_path / "home"))
    gen, ref = write_pair(tmp_path, n=1)
    for clip in gen.glob("*.wav"):
        clip.write_bytes(b"not audio")  # reading it would be an audio error, not the settings one
    args = ["score", "--generated", str(gen), "--reference", str(ref), "--out", str(tmp_path / "o"), "--metrics"]
    assert main([*args, metric, "--set", setting]) == 2
    assert capsys.readouterr().err == message
    assert not (tmp_path / "o").exists()
    assert main([*args, "stft"]) == 2  # the control: with good settings the corrupt clip is what fails
    assert "clip0.wav: unreadable or corrupt audio file" in capsys.readouterr().err
