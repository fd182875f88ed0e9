"""MERT-v1-95M: parity with MERT's hub model code run through fadtk 1.1.0's ``MERTModel`` loader on seeded
random weights of a reduced config (fixtures from tools/fixtures/make_mert.py), the full-size key layout,
fadtk's settings, bad input and bad weights."""

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from support.parity import rel_err

from t2mbench.core.audio import save_audio
from t2mbench.core.errors import AudioError, ConfigError, MissingWeightsError, WeightsError
from t2mbench.core.manifest import ClipRecord
from t2mbench.metrics.base import ScoringItem
from t2mbench.metrics.clip_audio import ClipAudio
from t2mbench.metrics.embedders import embedder_spec, get_embedder
from t2mbench.metrics.embedders.mert import (
    CHECKPOINT,
    LIMIT_SAMPLES,
    SAMPLE_RATE,
    Mert,
    MertConfig,
    canonical_state_dict,
    load_mert,
    normalise,
)
from t2mbench.metrics.frechet import frechet_distance
from t2mbench.metrics.registry import get_metric

FIX_DIR = Path(__file__).parents[1] / "fixtures" / "mert"
FIX = np.load(FIX_DIR / "mert.npz")
META = json.loads((FIX_DIR / "meta.json").read_text())
SMALL = MertConfig(
    hidden=META["config_small"]["hidden_size"], layers=META["config_small"]["num_hidden_layers"],
    heads=META["config_small"]["num_attention_heads"], ffn=META["config_small"]["intermediate_size"],
    conv_dim=META["config_small"]["conv_dim"][0], pos_kernel=META["config_small"]["num_conv_pos_embeddings"],
    pos_groups=META["config_small"]["num_conv_pos_embedding_groups"],
)  # fmt: skip
TOL = 1e-5  # max abs error / max abs value, float32


@pytest.fixture(scope="module")
def state() -> dict[str, torch.Tensor]:
    return {k.removeprefix("weight__"): torch.from_numpy(FIX[k]) for k in FIX.files if k.startswith("weight__")}


def audio(name: str) -> torch.Tensor:
    return torch.from_numpy(FIX[f"audio__{name}"])[None, None]


def test_full_size_keys_and_shapes_equal_upstream():
    upstream = [(k, tuple(s)) for k, s in json.loads((FIX_DIR / "keys_95m.json").read_text())]
    with torch.device("meta"):
        ours = [(k, tuple(v.shape)) for k, v in Mert().state_dict().items()]
    assert sorted(ours) == sorted(upstream)
    assert sum(int(np.prod(s)) for _, s in upstream) == META["params_95m"] == 94_371_712


@pytest.mark.parametrize("name", list(META["clips"]))
def test_every_hidden_state_matches_upstream(state, name):
    net = load_mert(state, config=SMALL).net
    wave = normalise(audio(name)[:, 0])
    np.testing.assert_allclose(wave[0].numpy(), FIX[f"input_values__{name}"], rtol=0, atol=2e-6)
    hidden = FIX[f"hidden__{name}"]  # [layers + 1, T, hidden]
    assert hidden.shape[1] == 1 + (META["clips"][name] - 400) // 320
    with torch.inference_mode():
        for layer in range(SMALL.layers + 1):
            assert rel_err(net(wave, layer)[0].numpy(), hidden[layer]) < TOL, layer


@pytest.mark.parametrize("layer", [0, 1, 2])
def test_embed_equals_fadtk_get_embedding(state, layer):
    # fadtk: processor (per-clip normalisation) -> model -> hidden_states[layer] -> float16
    emb = load_mert(state, config=SMALL, layer=layer)
    equal = total = 0
    for name in META["clips"]:
        ours = emb.embed(audio(name), SAMPLE_RATE)[0].numpy()
        theirs = FIX[f"fadtk_l{layer}__{name}"].astype(np.float32)
        if name == "min":  # fadtk's .squeeze() drops the time axis of a one-frame clip: [hidden], not [1, hidden]
            assert theirs.shape == (SMALL.hidden,)
            theirs = theirs[None]
        assert ours.dtype == np.float32 and ours.shape == theirs.shape
        assert np.array_equal(ours, ours.astype(np.float16).astype(np.float32))  # float16 values
        # equal except where float32 noise straddles a float16 rounding boundary: then a float16 step apart
        step = np.spacing(np.maximum(np.abs(ours), np.abs(theirs)).astype(np.float16)).astype(np.float32)
        assert np.all(np.abs(ours - theirs) <= np.maximum(2 * step, TOL * np.abs(theirs).max())), name
        equal, total = equal + int(np.sum(ours == theirs)), total + ours.size
    assert equal / total > 0.95


def test_stereo_is_averaged_and_other_rates_resampled(state):
    emb = load_mert(state, config=SMALL, float16=False)
    x = audio("3s")
    stereo = torch.cat([x, x], dim=1)
    np.testing.assert_allclose(emb.embed(stereo, SAMPLE_RATE), emb.embed(x, SAMPLE_RATE), rtol=0, atol=0)
    assert emb.embed(x, 48_000).shape[1] == 1 + (x.shape[-1] // 2 - 400) // 320


def test_settings_record_fadtk_defaults(state):
    s = load_mert(state, config=SMALL).settings()
    assert s["name"] == "mert" and s["sample_rate"] == 24_000 and s["layer"] == SMALL.layers  # the last: fadtk's 12
    assert s["float16"] is True and s["normalize"] is True and s["limit_s"] == 360.0
    assert LIMIT_SAMPLES == 6 * 60 * 24_000


def test_normalize_off_feeds_the_raw_wave(state):
    emb = load_mert(state, config=SMALL, normalize=False, float16=False, layer=1)
    x = audio("short")
    with torch.inference_mode():
        expected = emb.net(x[:, 0], 1)
    torch.testing.assert_close(emb.embed(x, SAMPLE_RATE), expected, rtol=0, atol=0)


def test_parametrized_weight_norm_names_are_accepted(state):
    renamed = {
        k.replace("conv.weight_g", "conv.parametrizations.weight.original0").replace(
            "conv.weight_v", "conv.parametrizations.weight.original1"
        ): v
        for k, v in state.items()
    }
    assert canonical_state_dict(renamed).keys() == state.keys()
    x = audio("boundary")
    a = load_mert(renamed, config=SMALL).embed(x, SAMPLE_RATE)
    b = load_mert(state, config=SMALL).embed(x, SAMPLE_RATE)
    torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_too_short_and_bad_input_raise(state):
    emb = load_mert(state, config=SMALL)
    with pytest.raises(AudioError, match="at least 400 samples"):
        emb.embed(torch.zeros(1, 1, 399), SAMPLE_RATE)
    with pytest.raises(AudioError, match=r"\[batch, channels, samples\]"):
        emb.embed(torch.zeros(1, 400), SAMPLE_RATE)
    with pytest.raises(AudioError, match="NaN"):
        emb.embed(torch.full((1, 1, 800), float("nan")), SAMPLE_RATE)


def test_bad_layer_and_bad_weights_raise(state):
    with pytest.raises(ConfigError, match="layer must be an integer from 0 to 2"):
        load_mert(state, config=SMALL, layer=3)
    broken = dict(state)
    broken.pop("encoder.layer_norm.weight")
    with pytest.raises(WeightsError, match="1 keys missing"):
        load_mert(broken, config=SMALL)
    with pytest.raises(WeightsError, match="wrong shape"):
        load_mert(state, config=replace(SMALL, hidden=64))


def test_missing_file_names_the_url_and_the_place(tmp_path, monkeypatch):
    monkeypatch.setenv("T2MBENCH_HOME", str(tmp_path))
    with pytest.raises(MissingWeightsError) as e:
        get_embedder("mert")
    assert CHECKPOINT.url in str(e.value) and str(tmp_path / "weights" / CHECKPOINT.filename) in str(e.value)
    assert "CC-BY-NC-4.0" in CHECKPOINT.licence
    assert embedder_spec("mert").weight_files() == (CHECKPOINT,)


def test_a_file_in_the_upstream_layout_loads(state, tmp_path):
    path = tmp_path / "pytorch_model.bin"
    torch.save(state, path)
    emb = load_mert(path, config=SMALL, verify=False)
    x = audio("min")
    torch.testing.assert_close(emb.embed(x, SAMPLE_RATE), load_mert(state, config=SMALL).embed(x, SAMPLE_RATE))
    assert len(emb.weights_sha256) == 64


def test_chunked_feature_encoder_equals_the_whole_clip_at_once(state):
    # frames depend only on their own 400 samples (unpadded convs); the first GroupNorm's statistics are
    # the whole clip's, so any chunking gives the same frames as running each layer on the whole clip
    net = load_mert(state, config=SMALL).net
    wave = normalise(audio("3s")[:, 0])
    with torch.inference_mode():
        x = wave[:, None]
        for layer in net.feature_extractor.conv_layers:  # nn.GroupNorm over the whole clip
            x = layer(x)
        whole = x.transpose(1, 2)
        for chunk in (1, 7, 100, 10_000):
            assert rel_err(net.features(wave, chunk).numpy(), whole.numpy()) < 1e-6, chunk


def test_fad_mert_is_fd_over_fadtks_frames_of_the_decoded_files(state, tmp_path):
    # fadtk: the file as decoded (int16 / 32768), mono at 24 kHz, no peak normalisation; FD over every frame
    emb = load_mert(state, config=SMALL)
    items, frames = [], {"gen": [], "ref": []}
    for i, name in enumerate(["3s", "boundary", "short"]):
        clips = {}
        for side, gain in (("gen", 1.0), ("ref", 0.5)):
            path = save_audio(tmp_path / f"{side}{i}.wav", gain * FIX[f"audio__{name}"][None], SAMPLE_RATE)
            clips[side] = ClipAudio(ClipRecord(id=f"c{i}", path=path))
            decoded = torch.from_numpy(clips[side].mono(SAMPLE_RATE))[None]
            frames[side].append(emb.embed(decoded, SAMPLE_RATE)[0].numpy())
        items.append(ScoringItem(f"c{i}", clips["gen"], clips["ref"]))
    metric = get_metric("fad_mert", embedder=emb, ci_resamples=0)
    metric.prepare(None)
    for item in items:
        metric.feed(item)
    expected = frechet_distance(np.concatenate(frames["gen"]), np.concatenate(frames["ref"]))
    assert metric.compute().value == pytest.approx(expected, rel=1e-9)
    s = metric.settings()
    assert (s["sample_rate"], s["channels"], s["peak_db"], s["embedder"]) == (24_000, 1, None, "mert")
    assert s["embedder_settings"]["layer"] == SMALL.layers and metric.weights() == {"mert": emb.weights_sha256}
