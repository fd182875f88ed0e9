"""Audiobox Aesthetics: parity with audiobox-aesthetics 0.0.4's ``AesPredictor`` on a seeded random
checkpoint of a reduced WavLM (fixtures from tools/fixtures/make_audiobox.py), the full-size key layout,
the package's resampling and windowing, the four metrics, bad input and bad weights."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from support.parity import rel_err

from t2mbench.core.audio import save_audio
from t2mbench.core.dsp.resample_hann import resample_hann
from t2mbench.core.errors import AudioError, ConfigError, MissingWeightsError, WeightsError
from t2mbench.core.manifest import ClipRecord
from t2mbench.core.torch_files import load_torch_file
from t2mbench.metrics.aesthetics import AUDIOBOX, AestheticsMetric
from t2mbench.metrics.base import ScoringItem
from t2mbench.metrics.cache import EmbeddingCache
from t2mbench.metrics.clip_audio import ClipAudio
from t2mbench.metrics.embedders import embedder_spec, get_embedder
from t2mbench.metrics.embedders.audiobox import (
    AXES,
    CHECKPOINT,
    AesModel,
    HeadConfig,
    WavLMConfig,
    load_audiobox,
    relative_buckets,
    windows,
)
from t2mbench.metrics.registry import get_metric

FIX_DIR = Path(__file__).parents[1] / "fixtures" / "audiobox"
FIX = np.load(FIX_DIR / "audiobox.npz")
META = json.loads((FIX_DIR / "meta.json").read_text())
SMALL = WavLMConfig(dim=32, layers=2, heads=4, ffn=64, conv_dim=16, pos_kernel=16, pos_groups=4)
TOL = 1e-5  # max abs error / max abs value, float32


@pytest.fixture(scope="module")
def ckpt_path(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("aes") / "checkpoint.pt"
    path.write_bytes(FIX["checkpoint"].tobytes())
    return path


@pytest.fixture(scope="module")
def embedder(ckpt_path):
    return load_audiobox(ckpt_path, verify=False, config=SMALL)


def clip(name: str) -> tuple[torch.Tensor, int]:
    return torch.from_numpy(FIX[f"audio__{name}"].astype(np.float32) / 32768.0)[None], int(FIX[f"sr__{name}"])


def test_full_size_keys_and_shapes_equal_upstream():
    upstream = [(k, tuple(s)) for k, s in json.loads((FIX_DIR / "keys_full.json").read_text())]
    with torch.device("meta"):
        ours = [(k, tuple(v.shape)) for k, v in AesModel(HeadConfig()).state_dict().items()]
    assert sorted(ours) == sorted(upstream)
    assert sum(int(np.prod(s)) for _, s in upstream) == META["params_full"]


def test_the_settings_the_fixture_checkpoint_holds(ckpt_path):
    ckpt = load_torch_file(ckpt_path)
    assert ckpt["model_cfg"] == META["model_cfg"] and ckpt["target_transform"] == META["target_transform"]
    assert HeadConfig.from_model_cfg(ckpt["model_cfg"], "fixture") == HeadConfig(
        proj_num_layer=2, proj_ln=True, nth_layer=3, precision="32")


@pytest.mark.parametrize("name", list(META["clips"]))
def test_window_network_outputs_match_upstream(embedder, name):
    x, sr = clip(name)
    mono = embedder.to_rate(x, sr).mean(dim=1)
    # the package's torchaudio resampling, first 4000 samples stored
    np.testing.assert_allclose(mono[0, :4000].numpy(), FIX[f"resampled__{name}"], rtol=0, atol=2e-6)
    wins, pads, weights = windows(mono)
    np.testing.assert_allclose(weights.numpy(), FIX[f"window_weights__{name}"], rtol=1e-12)
    with torch.inference_mode():
        preds = embedder.net(wins[0], pads[0]).numpy()
    assert preds.shape == FIX[f"window_preds__{name}"].shape == (wins.shape[1], 4)
    assert rel_err(preds, FIX[f"window_preds__{name}"]) < TOL


@pytest.mark.parametrize("name", list(META["clips"]))
def test_scores_match_aes_predictor(embedder, name):
    # torchaudio-default resampling to 16 kHz, mean over channels, 10 s windows, x * std + mean, weighted mean
    x, sr = clip(name)
    ours = embedder.embed(x, sr)[0].numpy()
    theirs = FIX[f"scores__{name}"]
    assert META["axes"] == list(AXES)
    # relative to the spread the network adds around the transform's mean (the scores themselves are ~5)
    spread = np.abs(FIX[f"window_preds__{name}"]).max() * max(v["std"] for v in META["target_transform"].values())
    assert np.abs(ours - theirs).max() / spread < TOL


def test_relative_buckets_match_wavlm():
    # WavLM: 320 buckets, half per sign; |d| < 80 exact; larger log-spaced up to 800, capped at 159 (+160)
    b = relative_buckets(1200, 320, 800, torch.device("cpu"))
    assert b[0, 0] == 0 and b[0, 79] == 160 + 79 and b[79, 0] == 79 and b[0, 80] == 160 + 80
    assert b[0, 1199] == 160 + 159 and b[1199, 0] == 159
    d = 200
    expected = 80 + int(np.float32(np.log(np.float32(d / 80))) / np.log(10.0) * 80)
    assert b[0, d] == 160 + expected and b[d, 0] == expected


def test_windows_of_make_inference_batch():
    wins, pads, weights = windows(torch.ones(2, 160_001))
    assert wins.shape == (2, 2, 160_000) and weights.tolist() == [1.0, 1 / 160_000]
    assert pads[0, 1, 0].item() is False and pads[0, 1, 1:].all() and not pads[0, 0].any()


def test_stereo_is_averaged(embedder):
    x, _ = clip("3s_16k")
    both = embedder.embed(torch.cat([x, x], dim=1), 16_000)
    np.testing.assert_allclose(both.numpy(), embedder.embed(x, 16_000).numpy(), rtol=1e-6)


def test_bad_input_and_bad_checkpoints_raise(embedder, ckpt_path):
    with pytest.raises(AudioError, match=r"\[batch, channels, samples\]"):
        embedder.embed(torch.zeros(1, 1600), 16_000)
    with pytest.raises(AudioError, match="NaN"):
        embedder.embed(torch.full((1, 1, 1600), float("nan")), 16_000)
    ckpt = load_torch_file(ckpt_path)
    with pytest.raises(WeightsError, match="it needs state_dict, model_cfg and target_transform"):
        load_audiobox({"state_dict": ckpt["state_dict"]}, config=SMALL)
    broken = {**ckpt, "state_dict": {k: v for k, v in ckpt["state_dict"].items() if "grep_a" not in k}}
    with pytest.raises(WeightsError, match="2 keys missing"):
        load_audiobox(broken, config=SMALL)
    with pytest.raises(WeightsError, match="nth_layer 3: this port reads all 13"):
        load_audiobox(ckpt, config=WavLMConfig())  # full-size network, reduced checkpoint
    with pytest.raises(WeightsError, match="wrong shape"):
        load_audiobox(ckpt, config=WavLMConfig(dim=64, layers=2, heads=4, ffn=64, conv_dim=16, pos_kernel=16,
                                               pos_groups=4))
    with pytest.raises(WeightsError, match="lacks the mean/std of axis PQ"):
        load_audiobox({**ckpt, "target_transform": {a: ckpt["target_transform"][a] for a in AXES[:3]}}, config=SMALL)


def test_missing_file_names_the_url_the_place_and_the_licence(tmp_path, monkeypatch):
    monkeypatch.setenv("T2MBENCH_HOME", str(tmp_path))
    with pytest.raises(MissingWeightsError) as e:
        get_embedder("audiobox_aesthetics")
    assert CHECKPOINT.url in str(e.value) and str(tmp_path / "weights" / CHECKPOINT.filename) in str(e.value)
    assert CHECKPOINT.licence.startswith("CC-BY-4.0")
    assert embedder_spec("audiobox_aesthetics").weight_files() == (CHECKPOINT,)


def test_resampler_is_torchaudios_default(embedder):
    x = torch.randn(1, 1, 22_050)
    np.testing.assert_array_equal(embedder.to_rate(x, 22_050).numpy()[0], resample_hann(x[0].numpy(), 22_050, 16_000))


def test_the_four_metrics_score_a_file_as_the_package_does(embedder, tmp_path):
    # the file decoded as torchaudio.load does (int16 / 32768), torchaudio's resampler, no peak normalisation;
    # one cache entry serves all four axes, so the network runs once per clip
    name = "10p2s_stereo_22k"
    path = save_audio(tmp_path / "a.wav", FIX[f"audio__{name}"].astype(np.float32) / 32768.0, int(FIX[f"sr__{name}"]))
    cache = EmbeddingCache(tmp_path / "cache")
    for axis, expected in zip(AXES, FIX[f"scores__{name}"], strict=True):
        metric = get_metric(f"aesthetics_{axis.lower()}", embedder=embedder)
        metric.prepare(cache)
        metric.feed(ScoringItem("a", ClipAudio(ClipRecord(id="a", path=path)), None))
        result = metric.compute()
        assert result.value == pytest.approx(expected, rel=1e-6) and result.per_clip == {"a": result.value}
        assert metric.settings()["resampler"] == "sinc_hann" and metric.settings()["peak_db"] is None
        assert metric.weights() == {"audiobox_aesthetics": embedder.weights_sha256}
    assert cache.misses == 1 and cache.hits == 3
    with pytest.raises(ConfigError, match="unknown aesthetics axis 'XX'"):
        AestheticsMetric(axis="XX", **AUDIOBOX)


def test_sizes_are_read_from_the_checkpoints_shapes(embedder, ckpt_path):
    """Without a config the loader reads the reduced checkpoint's sizes from its shapes (heads and buckets from
    ``relative_attention_bias``), giving the network of the explicit reduced config; the full-size key manifest
    gives WavLM-base's."""
    from t2mbench.metrics.embedders.audiobox import config_from_state

    inferred = load_audiobox(load_torch_file(ckpt_path))
    assert inferred.net.wavlm_model.cfg == SMALL
    x = torch.linspace(-0.5, 0.5, 16_000)[None, None]
    torch.testing.assert_close(inferred.embed(x, 16_000), embedder.embed(x, 16_000), rtol=0, atol=0)
    keys = json.loads((FIX_DIR / "keys_full.json").read_text())
    with torch.device("meta"):
        full = {k.removeprefix("model."): torch.empty(s) for k, s in keys}
    assert config_from_state(full) == WavLMConfig()
