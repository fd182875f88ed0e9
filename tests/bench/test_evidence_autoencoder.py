import json

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import load_file

from t2mbench.bench.corpus.splits import load_split_audio, split_clips
from t2mbench.bench.evidence.autoencoder import autoencoder_table, resample_roundtrip
from t2mbench.cli import main
from t2mbench.core.audio import load_audio
from t2mbench.core.dsp.resample_hann import resample_hann
from t2mbench.core.errors import ConfigError
from t2mbench.metrics.spectral import mel_distance, stft_distance
from t2mbench.reference_models import build

SR = 16_000
BASELINE = "resample to 1 kHz and back"


def _si_sdr(estimate, target, eps=1e-8):
    """SI-SDR in dB of mono signals as auraloss defines it (zero mean, eps 1e-8), written out here."""
    s, e = target - target.mean(), estimate - estimate.mean()
    alpha = np.dot(e, s) / (np.dot(s, s) + eps)
    return 10 * np.log10(np.sum((alpha * s) ** 2) / (np.sum((alpha * s - e) ** 2) + eps) + eps)


@pytest.fixture(scope="module")
def run(rendered_corpus, vae_file, tmp_path_factory):
    out = tmp_path_factory.mktemp("ae_out")
    return out, autoencoder_table(rendered_corpus, vae_file, out, clips=1, progress=False)


@pytest.fixture(scope="module")
def signals(rendered_corpus, vae_file):
    """The first test clip at 16 kHz mono (2 s), and its VAE reconstruction computed here."""
    clip = split_clips(rendered_corpus, "test")[0]
    x = load_split_audio([clip], SR, 1, 63 * 512, progress=False)  # 2 s -> 63 latent frames
    vae = build("tiny").pretransform.model
    vae.load_state_dict(load_file(str(vae_file)))
    with torch.inference_mode():
        recon = vae.decode(vae.encode(x, sample=False)[0])
    return clip, x[0, :, :32_000].numpy(), recon[0, :, :32_000].numpy()


def test_rows_and_latent_budget(run):
    _, table = run
    assert table["system"].tolist() == ["tiny VAE (ours)", BASELINE]
    vae, base = table.iloc[0], table.iloc[1]
    assert (vae["latent_rate_hz"], vae["latent_channels"], vae["values_per_second"]) == (31.25, 32, 1000)
    assert (base["latent_rate_hz"], base["latent_channels"], base["values_per_second"]) == (1000, 1, 1000)
    for m in ("stft", "mel", "sisdr"):  # one clip: the bootstrap CI collapses onto the value
        assert table[f"{m}_ci_low"].tolist() == pytest.approx(table[m].tolist())
        assert table[f"{m}_ci_high"].tolist() == pytest.approx(table[m].tolist())


def test_reference_is_the_16k_mono_input_and_vae_audio_is_its_roundtrip(run, signals):
    out, _ = run
    clip, x, recon = signals
    ref, sr = load_audio(out / "audio" / "reference" / f"{clip.id}.wav")
    assert sr == SR and ref.shape == (1, 32_000)
    assert np.array_equal(ref, x)  # 32-bit float wav: exact
    written, _ = load_audio(out / "audio" / "vae" / f"{clip.id}.wav")
    assert np.allclose(written, recon, atol=1e-5, rtol=0)
    assert not np.allclose(written, x, atol=1e-2)  # random weights: far from the input


def test_metric_values_are_those_of_the_right_signals_at_16k(run, signals):
    _, table = run
    _, x, recon = signals
    baseline = resample_hann(resample_hann(x, SR, 1_000), 1_000, SR)[:, :32_000]
    vae, base = table.iloc[0], table.iloc[1]
    assert base["sisdr"] == pytest.approx(_si_sdr(baseline[0].astype(np.float64), x[0].astype(np.float64)), abs=1e-6)
    assert vae["sisdr"] == pytest.approx(_si_sdr(recon[0].astype(np.float64), x[0].astype(np.float64)), abs=1e-3)
    assert base["stft"] == pytest.approx(stft_distance(baseline, x)[0], rel=1e-6)
    assert vae["stft"] == pytest.approx(stft_distance(recon, x)[0], rel=1e-4)
    assert base["mel"] == pytest.approx(mel_distance(baseline, x, SR)[0], rel=1e-6)
    assert vae["mel"] == pytest.approx(mel_distance(recon, x, SR)[0], rel=1e-4)


def test_outputs_on_disk(run):
    out, table = run
    assert pd.read_csv(out / "autoencoder.csv")["sisdr"].tolist() == pytest.approx(table["sisdr"].tolist())
    record = json.loads((out / "autoencoder.json").read_text())
    assert record["clips"] == 1 and record["split"] == "test" and len(record["rows"]) == 2
    lines = (out / "autoencoder.md").read_text().splitlines()
    assert lines[0] == "| system | STFT distance ↓ | mel distance ↓ | SI-SDR ↑ | latent rate | latent channels |"
    assert lines[2].startswith("| tiny VAE (ours) | ") and lines[2].endswith(" | 31.25 Hz | 32 |")
    assert lines[3].startswith(f"| {BASELINE} | {table['stft'][1]:.3g} [") and lines[3].endswith(" | 1000 Hz | 1 |")
    assert (out / "autoencoder.png").read_bytes()[:4] == b"\x89PNG"


def test_resample_roundtrip_keeps_below_500_hz_and_removes_above():
    t = np.arange(SR) / SR
    low = np.sin(2 * np.pi * 200 * t)[None].astype(np.float32)
    high = np.sin(2 * np.pi * 2_000 * t)[None].astype(np.float32)
    middle = slice(1_000, -1_000)  # away from the edges
    kept = resample_roundtrip(low, SR, 1_000)
    assert kept.shape == low.shape and kept.dtype == np.float32
    assert _si_sdr(kept[0, middle].astype(np.float64), low[0, middle].astype(np.float64)) > 40
    assert np.sqrt(np.mean(resample_roundtrip(high, SR, 1_000)[0, middle] ** 2)) < 1e-3


def test_the_command_prints_the_table_and_rejects_zero_clips(rendered_corpus, vae_file, tmp_path, capsys):
    argv = ["evidence", "autoencoder", "--corpus", str(rendered_corpus), "--vae", str(vae_file), "--out", str(tmp_path)]
    assert main([*argv, "--clips", "1"]) == 0
    printed = capsys.readouterr().out
    assert "| tiny VAE (ours) |" in printed and f"| {BASELINE} |" in printed
    with pytest.raises(ConfigError, match="clips must be >= 1, got 0"):
        autoencoder_table(rendered_corpus, vae_file, tmp_path, clips=0, progress=False)
    assert main([*argv, "--clips", "0"]) == 2  # a usage error, from the argument parser
    assert capsys.readouterr().err == ("t2mbench evidence autoencoder: error: argument --clips: must be an integer "
                                       ">= 1, got '0'; see --help\n")  # fmt: skip
