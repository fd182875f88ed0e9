"""PaSST: parity with hear21passt 0.0.26 on seeded random weights (fixtures from
tools/fixtures/make_passt.py), stable-audio-metrics windowing and KL, bad input, bad weights."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from support.parity import rel_err
from support.passt_weights import passt_shapes, passt_weights

from t2mbench.core.audio import peak_normalize, resample, set_channels
from t2mbench.core.errors import AudioError, ChecksumError, ConfigError, MissingWeightsError, WeightsError
from t2mbench.metrics.embedders import get_embedder
from t2mbench.metrics.embedders.passt import MIN_SAMPLES, PaSST, PasstEmbedder, load_passt
from t2mbench.metrics.kl import kl_divergence

FIX_DIR = Path(__file__).parents[2] / "fixtures" / "passt"
FIX = np.load(FIX_DIR / "passt.npz")
META = json.loads((FIX_DIR / "meta.json").read_text())
TOL = 1e-4  # max abs error / max abs value, float32


def clip(name: str) -> tuple[np.ndarray, int]:
    """The fixture clip as soundfile would decode it, peak-normalised over all channels."""
    return peak_normalize(FIX[f"audio__{name}"].astype(np.float32) / 32768.0), int(FIX[f"sr__{name}"])


@pytest.fixture(scope="module")
def state() -> dict[str, torch.Tensor]:
    return {k: torch.from_numpy(v) for k, v in passt_weights(META["weight_seed"]).items()}


@pytest.fixture(scope="module")
def embedder(state) -> PasstEmbedder:
    return load_passt(state)


@pytest.fixture(scope="module")
def ours(embedder) -> dict[str, np.ndarray]:
    """Our pooled logits per clip, computed once (the 12 s clip through window_logits)."""
    out = {}
    for name in META["clips"]:
        x, sr = clip(name)
        if name == "12s_32k":
            out["windows__12s_32k"] = embedder.window_logits(torch.from_numpy(x)[None], sr)[0].numpy()
            out[name] = embedder.pool(torch.from_numpy(out["windows__12s_32k"])[None])[0].numpy()
        else:
            out[name] = embedder.embed(torch.from_numpy(x)[None], sr)[0].numpy()
    return out


def test_state_dict_keys_and_shapes_equal_upstream():
    upstream = [(k, tuple(s)) for k, s in json.loads((FIX_DIR / "passt_keys.json").read_text())]
    ours = [(k, tuple(v.shape)) for k, v in PaSST().state_dict().items()]
    assert ours == upstream
    assert list(passt_shapes().items()) == upstream
    assert sum(int(np.prod(s)) for _, s in upstream) == 86_153_758


def test_seeded_weights_are_the_ones_the_fixture_used(state):
    sums = {k: float(v.double().sum()) for k, v in state.items()}
    assert sums == pytest.approx(META["weight_sums"], rel=1e-9, abs=1e-9)


@pytest.mark.parametrize("name", [n for n in META["clips"] if n != "12s_32k"])
def test_logits_match_hear21passt_with_sam_windowing(ours, name):
    # min (4801 samples), 1 s, 1.5 s: one unpadded window; 1.5 s + 1 sample and 7 s stereo: padded to 10 s;
    # 1.2 s stereo at 44.1 kHz: downmixed then resampled with soxr HQ, as librosa.load(sr=32000, mono=True)
    assert ours[name].shape == (527,)
    assert rel_err(ours[name], FIX[f"logits__{name}"]) < TOL


def test_two_windows_and_both_collect_modes_match(ours, embedder):
    windows = FIX["windows__12s_32k"]
    assert ours["windows__12s_32k"].shape == windows.shape == (2, 527)
    assert rel_err(ours["windows__12s_32k"], windows) < TOL
    assert rel_err(ours["12s_32k"], FIX["logits__12s_32k"]) < TOL
    as_max = PasstEmbedder(embedder.net, embedder.weights_sha256, collect="max")
    pooled_max = as_max.pool(torch.from_numpy(ours["windows__12s_32k"])[None])[0].numpy()
    assert rel_err(pooled_max, FIX["logits_max__12s_32k"]) < TOL
    assert np.abs(FIX["logits_max__12s_32k"] - FIX["logits__12s_32k"]).max() > 0.1  # the modes differ


def test_sam_order_mono_resample_normalise_matches(embedder):
    # stable-audio-metrics loads (mono, 32 kHz) and only then peak-normalises
    raw = FIX["audio__1p2s_stereo_44k"].astype(np.float32) / 32768.0
    x = peak_normalize(resample(set_channels(raw, "mono"), 44100, 32000))
    ours = embedder.embed(torch.from_numpy(x)[None], 32000)[0].numpy()
    assert rel_err(ours, FIX["sam_logits__1p2s_stereo_44k"]) < TOL


def test_kl_from_our_logits_matches_stable_audio_metrics(ours):
    # t2mbench.metrics.kl against the fixture's torch F.kl_div((p_ref + 1e-6).log(), p_gen, reduction="sum")
    gen, ref = (np.stack([ours[name] for name in side]) for side in FIX["kl_pairs"].T)
    kls = kl_divergence(gen, ref)
    assert rel_err(kls, FIX["kl_per_pair"]) < TOL
    assert abs(kls.mean() - float(FIX["kl_mean"])) / float(FIX["kl_mean"]) < TOL


def test_too_short_names_the_minimum(embedder):
    assert MIN_SAMPLES == 4801  # upstream: 4800 samples give 15 frames, fewer than the 16-frame patch
    assert "Kernel size can't be greater than actual input size" in META["too_short_4800_error"]
    with pytest.raises(AudioError, match=r"at least 4801 samples \(0\.150 s\) at 32000 Hz; got 4800 \(4800 at 32000"):
        embedder.embed(torch.zeros(1, 1, 4800), 32000)
    with pytest.raises(AudioError, match=r"got 4354 \(6000 at 44100 Hz\)"):
        embedder.embed(torch.zeros(1, 2, 6000), 44100)


def test_bad_audio_is_refused(embedder):
    with pytest.raises(AudioError, match=r"shape \[batch, channels, samples\], got \(1, 32000\)"):
        embedder.embed(torch.zeros(1, 32000), 32000)
    with pytest.raises(AudioError, match="NaN or Inf"):
        embedder.embed(torch.full((1, 1, 32000), float("nan")), 32000)


def test_unknown_collect_is_a_config_error(embedder):
    with pytest.raises(ConfigError, match="unknown PaSST collect 'median'; use 'mean' or 'max'"):
        PasstEmbedder(embedder.net, embedder.weights_sha256, collect="median")


def test_registry_builds_it_and_settings_record_the_protocol(state):
    emb = get_embedder("passt", checkpoint=state, collect="max")
    assert isinstance(emb, PasstEmbedder) and emb.sample_rate == 32000
    s = emb.settings()
    assert (s["name"], s["window_s"], s["step_s"], s["pad_above_s"], s["collect"]) == ("passt", 10.0, 5.0, 1.5, "max")
    assert len(s["weights_sha256"]) == 64


def test_missing_weights_say_where_to_put_them(tmp_path, monkeypatch):
    monkeypatch.setenv("T2MBENCH_HOME", str(tmp_path))
    with pytest.raises(
        MissingWeightsError,
        match=r"passt-s-f128-p16-s10-ap\.476-swa\.pt at .*weights.*download it from "
        r"https://github\.com/kkoutini/PaSST/releases/download/v0\.0\.1-audioset/",
    ):
        load_passt()


def test_truncated_file_is_a_clear_error(tmp_path):
    path = tmp_path / "passt.pt"
    torch.save({"cls_token": torch.zeros(1, 1, 768)}, path)
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(WeightsError, match="cannot read the PaSST checkpoint .* truncated or not a torch checkpoint"):
        load_passt(path, verify=False)
    with pytest.raises(ChecksumError, match="does not match the published 302903fa"):
        load_passt(path)


def test_wrong_model_is_a_clear_error(tmp_path, state):
    path = tmp_path / "other.pt"
    torch.save({"conv1.weight": torch.zeros(3), **dict(list(state.items())[:3])}, path)
    with pytest.raises(WeightsError, match=r"not a PaSST-S passt_s_swa_p16_128_ap476 checkpoint: 156 keys missing "
                       r"\['freq_new_pos_embed', .*1 unexpected \['conv1\.weight'\]"):
        load_passt(path, verify=False)
    wrong = {**state, "head.1.weight": torch.zeros(10, 768)}
    with pytest.raises(WeightsError, match=r"head\.1\.weight is \(10, 768\), expected \(527, 768\)"):
        load_passt(wrong)


def test_sizes_are_read_from_the_shapes():
    """The upstream manifest gives PaSST-S's sizes; a reduced state in the same layout its own (the 527 classes
    stay; heads one per 64 channels off PaSST-S's width)."""
    from t2mbench.metrics.embedders.passt import sizes_from_state

    with torch.device("meta"):
        upstream = {k: torch.empty(s) for k, s in json.loads((FIX_DIR / "passt_keys.json").read_text())}
        assert sizes_from_state(upstream) == {"dim": 768, "depth": 12, "heads": 12}
        small = PaSST(dim=64, depth=2, heads=1).state_dict()
    assert sizes_from_state(small) == {"dim": 64, "depth": 2, "heads": 1}
    assert sizes_from_state({"cls_token": torch.zeros(1, 1, 64)}) == {}  # no blocks: PaSST-S, the key check names why
