import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from support.evaluator_clips import GOLDEN_CAPTIONS, SAMPLE_RATE, chord

from t2mbench.bench.train.ship import ship
from t2mbench.core.audio import resample
from t2mbench.core.dsp.chroma import chroma_filters
from t2mbench.core.dsp.filterbanks import mel_filterbank
from t2mbench.core.errors import AudioError, ChecksumError, WeightsError
from t2mbench.core.files import sha256_file
from t2mbench.metrics.embedders import get_embedder
from t2mbench.metrics.embedders.evaluator import (
    CHECKPOINT_DIR,
    HOP,
    MIN_SAMPLES,
    N_FFT,
    AttributeHead,
    EvaluatorConfig,
    FrontEnd,
    load_evaluator,
    protocol_input,
    read_checkpoint,
    summary_features,
)
from t2mbench.metrics.kl import kl_divergence

GOLDEN = np.load(Path(__file__).parents[2] / "fixtures" / "evaluator" / "golden.npz")


@pytest.fixture(scope="module")
def ev():
    return load_evaluator()


@pytest.fixture(scope="module")
def chord_audio():
    return torch.from_numpy(chord())[None]  # [1, 2, 132300] at 44.1 kHz


def test_shipped_checkpoint_matches_its_manifest_and_budget(ev):
    manifest = json.loads((CHECKPOINT_DIR / "manifest.json").read_text())
    path = CHECKPOINT_DIR / "evaluator.safetensors"
    assert sha256_file(path) == manifest["sha256"] == ev.weights_sha256
    assert path.stat().st_size == manifest["size"] <= 6_000_000
    assert sum(p.numel() for p in ev.net.parameters()) == manifest["parameters"]
    assert get_embedder("evaluator").weights_sha256 == manifest["sha256"]


def test_corrupted_checkpoint_is_refused(tmp_path):
    bad = tmp_path / "evaluator.safetensors"
    shutil.copyfile(CHECKPOINT_DIR / "evaluator.safetensors", bad)
    data = bytearray(bad.read_bytes())
    data[-100] ^= 0xFF
    bad.write_bytes(bytes(data))
    with pytest.raises(ChecksumError, match=r"evaluator.safetensors: sha256 [0-9a-f]{64} does not match the published"):
        load_evaluator(bad)


def test_checkpoint_that_does_not_fit_its_config_is_refused(tmp_path):
    config, state = read_checkpoint(CHECKPOINT_DIR / "evaluator.safetensors")
    del state["head.bias"]
    path = ship(state, tmp_path, "evaluator.safetensors", info={}, metadata={"config": config.to_json()})
    with pytest.raises(WeightsError, match=r"do not match the config in its metadata: 1 keys missing \['head.bias'\]"):
        load_evaluator(path, verify=False)


def test_golden_outputs_of_the_shipped_model(ev, chord_audio):
    stale = "stale fixture: run tools/fixtures/make_evaluator_golden.py"
    assert str(GOLDEN["weights_sha256"]) == ev.weights_sha256, stale
    out = ev.analyse(chord_audio, SAMPLE_RATE)
    assert out.windows.shape == (1, 2, 256)  # 3 s: 1 + (1 + 96000 // 500 - 128) // 64 = 2 windows
    np.testing.assert_allclose(out.windows.numpy(), GOLDEN["windows"], rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(out.attribute_logits.numpy(), GOLDEN["attribute_logits"], rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(out.clip.numpy(), GOLDEN["clip"], atol=1e-5)
    np.testing.assert_allclose(ev.embed_text(list(GOLDEN_CAPTIONS)).numpy(), GOLDEN["text"], atol=1e-5)


def test_outputs_agree_and_are_kl_ready(ev, chord_audio):
    windows = ev.embed(chord_audio, SAMPLE_RATE)
    with torch.inference_mode():
        per_window = ev.net.head(windows)  # [1, W, K]
        clip = torch.nn.functional.normalize(ev.net.audio_proj(windows.mean(dim=1)), dim=-1)
    logits = ev.attribute_logits(chord_audio, SAMPLE_RATE)
    assert logits.shape == (1, len(ev.attribute_names)) == (1, ev.config.n_outputs)
    torch.testing.assert_close(logits, per_window.mean(dim=1))  # mean of logits, not of probabilities
    torch.testing.assert_close(ev.clip_embedding(chord_audio, SAMPLE_RATE), clip)
    # KL of a clip with itself is only the reference epsilon's term Σ_c -p_c ln(1 + 1e-6 / p_c) (< 0)
    p = torch.softmax(logits.double(), dim=-1).numpy()[0]
    expected = float(-(p * np.log1p(1e-6 / p)).sum())
    assert expected < 0 and kl_divergence(logits.numpy(), logits.numpy())[0] == pytest.approx(expected, rel=1e-3)
    other = ev.attribute_logits(torch.from_numpy(chord(midi=(57, 60, 64)))[None], SAMPLE_RATE)
    assert kl_divergence(logits.numpy(), other.numpy())[0] > 1e-4


def _log_power_bands(wave: np.ndarray, n_fft: int, bank: np.ndarray) -> np.ndarray:
    """Independent front end: periodic Hann, hop 500, reflect-centred frames, power, bands, log."""
    x = np.pad(wave.astype(np.float64), n_fft // 2, mode="reflect")
    n = 1 + (len(x) - n_fft) // HOP
    frames = np.stack([x[i * HOP : i * HOP + n_fft] for i in range(n)])
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)
    power = np.abs(np.fft.rfft(frames * window, axis=-1)) ** 2
    return (np.log(bank.astype(np.float64) @ power.T + 1e-6) + 5.0) / 5.0


def test_front_end_matches_an_independent_numpy_version():
    wave = chord(2.5, 32_000)[0]
    mel = _log_power_bands(wave, N_FFT, mel_filterbank(32_000, N_FFT, 64, 0.0, 16_000.0))
    chroma = _log_power_bands(wave, 4096, chroma_filters(32_000, 4096))
    got = FrontEnd()(torch.from_numpy(wave)[None])[0].double().numpy()
    assert got.shape == (76, 1 + 80_000 // 500) == (mel.shape[0] + chroma.shape[0], mel.shape[1])
    np.testing.assert_allclose(got[:64], mel, atol=2e-4)
    np.testing.assert_allclose(got[64:], chroma, atol=2e-4)
    # the C-major chord's strongest chroma classes are its notes C, E, G
    assert sorted(np.argsort(chroma.mean(axis=1))[-3:].tolist()) == [0, 4, 7]


def test_summary_features_find_the_beat_and_the_chord():
    t = np.arange(64_000) / 32_000
    clicks = np.zeros(64_000)
    clicks[::16_000] = 1.0  # 120 bpm: one click every 0.5 s = 32 frames
    wave = chord(2.0, 32_000)[0] * 0.1 + clicks + 1e-3 * np.sin(2 * np.pi * 50 * t)
    windows = FrontEnd()(torch.from_numpy(wave.astype(np.float32))[None])[..., :128]
    summary = summary_features(windows)[0]
    assert summary.shape == (117,)
    assert int(summary[24:].argmax()) + 4 == 32
    assert int(summary[:12].argmax()) in (0, 4, 7)


@pytest.mark.parametrize(("seconds", "windows"), [(0.5, 1), (2.0, 1), (2.9, 1), (3.0, 2), (10.0, 9)])
def test_window_count(ev, seconds, windows):
    assert ev.embed(torch.zeros(1, 1, int(seconds * 32_000)) + 0.01, 32_000).shape == (1, windows, 256)


def test_short_clip_is_zero_padded_to_two_seconds(ev):
    short = torch.from_numpy(chord(0.5, 32_000)[:1])[None]
    padded = torch.nn.functional.pad(short, (0, MIN_SAMPLES - short.shape[-1]))
    torch.testing.assert_close(ev.embed(short, 32_000), ev.embed(padded, 32_000))


def test_downmix_then_resample_and_batch_independence(ev, chord_audio):
    mono = chord_audio.double().mean(dim=1, keepdim=True).float()
    at_32k = torch.from_numpy(resample(mono[0].numpy(), SAMPLE_RATE, 32_000))[None]
    a = ev.embed(chord_audio, SAMPLE_RATE)
    torch.testing.assert_close(a, ev.embed(at_32k, 32_000))
    pair = torch.cat([chord_audio, torch.from_numpy(chord(midi=(50, 53, 57)))[None]])
    torch.testing.assert_close(ev.embed(pair, SAMPLE_RATE)[:1], a, atol=1e-5, rtol=1e-5)


def test_protocol_input_is_mono_32k_peak_normalised():
    x = protocol_input(chord(), SAMPLE_RATE)
    assert x.shape == (1, 1, 96_000)
    assert float(x.abs().max()) == pytest.approx(10 ** (-1 / 20), rel=1e-6)
    with pytest.raises(AudioError, match="is digital silence"):
        protocol_input(np.zeros((2, 44_100), np.float32), SAMPLE_RATE)


def test_text_embeddings(ev):
    t = ev.embed_text([GOLDEN_CAPTIONS[0], GOLDEN_CAPTIONS[1], GOLDEN_CAPTIONS[0]])
    assert t.shape == (3, 128)
    torch.testing.assert_close(t.norm(dim=-1), torch.ones(3))
    torch.testing.assert_close(t[0], t[2])
    assert float(t[0] @ t[1]) < 0.99


def test_bad_input(ev):
    nan = torch.zeros(2, 1, 64_000)
    nan[1, 0, 5] = float("nan")
    with pytest.raises(AudioError, match=r"evaluator: clips \[1\] contain NaN or Inf samples"):
        ev.embed(nan, 32_000)
    with pytest.raises(AudioError, match=r"expected a float tensor \[batch, channels, samples\], got \(1, 64000\)"):
        ev.embed(torch.zeros(1, 64_000), 32_000)
    with pytest.raises(ValueError, match="embed_text got an empty caption list; pass at least one caption"):
        ev.embed_text([])
    with pytest.raises(ValueError, match="got a single string; wrap it in a list"):
        ev.embed_text("piano")


def test_config_roundtrip_and_head_split():
    config = EvaluatorConfig(heads=(AttributeHead("mode", "single", ("major", "minor")),
                                    AttributeHead("mood", "multi", ("calm", "dark", "happy"))))  # fmt: skip
    assert EvaluatorConfig.from_json(config.to_json()) == config
    parts = config.split(torch.arange(5.0)[None])
    assert parts["mode"].tolist() == [[0.0, 1.0]] and parts["mood"].tolist() == [[2.0, 3.0, 4.0]]
    assert config.heads[1].labels({"mood": ["happy", "angry", "calm"]}) == [2, 0]
    with pytest.raises(ValueError, match="kind must be 'single' or 'multi', got 'both'"):
        AttributeHead("mode", "both", ("major",))
