"""MERT-v1-330M and ``mad``: parity with MERT's hub model code (MERT-v1-330M's flags: pre-LN encoder) run through
mad-metric 0.0.6's own ``MERT330M.get_embedding`` on seeded random weights of a reduced config (fixtures from
tools/fixtures/make_mert_330m.py), the full-size key layout, sizes read from a checkpoint's shapes, and the ``mad``
metric end to end on WAV files."""

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from support.parity import rel_err

from t2mbench.core.errors import MissingWeightsError
from t2mbench.core.manifest import ClipRecord
from t2mbench.metrics.base import ScoringItem
from t2mbench.metrics.clip_audio import ClipAudio
from t2mbench.metrics.embedders import embedder_spec, get_embedder
from t2mbench.metrics.embedders.mert import Mert, MertConfig, config_from_state, normalise
from t2mbench.metrics.embedders.mert_330m import CHECKPOINT, MERT_V1_330M, PROTOCOL_VERSION, load_mert_330m
from t2mbench.metrics.mauve import music_audio_distance
from t2mbench.metrics.registry import get_metric

FIX_DIR = Path(__file__).parents[1] / "fixtures" / "mert"
FIX = np.load(FIX_DIR / "mert_330m.npz")
META = json.loads((FIX_DIR / "meta_330m.json").read_text())
MAD_VALUES = json.loads((FIX_DIR / "mad_330m.json").read_text())  # tools/fixtures/make_mert_330m_mad.py
_S = META["config_small"]
SMALL = replace(
    MERT_V1_330M, hidden=_S["hidden_size"], layers=_S["num_hidden_layers"], heads=_S["num_attention_heads"],
    ffn=_S["intermediate_size"], conv_dim=_S["conv_dim"][0], pos_kernel=_S["num_conv_pos_embeddings"],
    pos_groups=_S["num_conv_pos_embedding_groups"],
)  # fmt: skip
N = META["n_clips"]
TOL = 1e-5  # max abs error / max abs value, float32


@pytest.fixture(scope="module")
def state() -> dict[str, torch.Tensor]:
    return {k.removeprefix("weight__"): torch.from_numpy(FIX[k]) for k in FIX.files if k.startswith("weight__")}


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> list[ClipAudio]:
    """The fixture's stereo int16 WAV files at 32 kHz, written back byte for byte as mad-metric read them."""
    folder = tmp_path_factory.mktemp("mad_clips")
    out = []
    for i in range(N):
        path = folder / f"clip{i}.wav"
        sf.write(path, FIX[f"pcm__{i}"], META["file_rate"], subtype="PCM_16")
        out.append(ClipAudio(ClipRecord(id=f"c{i}", path=path)))
    return out


def test_full_size_keys_and_shapes_equal_upstream_and_give_the_330m_config():
    upstream = [(k, tuple(s)) for k, s in json.loads((FIX_DIR / "keys_330m.json").read_text())]
    with torch.device("meta"):
        net = Mert(MERT_V1_330M)
        ours = [(k, tuple(v.shape)) for k, v in net.state_dict().items()]
        assert sorted(ours) == sorted(upstream)
        assert config_from_state(net.state_dict(), MERT_V1_330M) == MERT_V1_330M
        assert config_from_state(Mert().state_dict()) == MertConfig()  # the 95M's sizes from its own shapes
    assert sum(int(np.prod(s)) for _, s in upstream) == META["params_330m"] == 315_428_992
    assert META["encoder_class"] == "HubertEncoderStableLayerNorm" and META["flags_330m"]["do_stable_layer_norm"]
    sizes = META["sizes_330m"]
    assert (MERT_V1_330M.hidden, MERT_V1_330M.layers, MERT_V1_330M.heads, MERT_V1_330M.ffn) == (
        sizes["hidden_size"], sizes["num_hidden_layers"], sizes["num_attention_heads"], sizes["intermediate_size"])


@pytest.mark.parametrize("i", range(N))
def test_every_hidden_state_matches_upstream(state, clips, i):
    # our decode (int16 / 32768, soxr HQ to 24 kHz, channel mean) and network against librosa.load + the hub code
    net = load_mert_330m(state, config=SMALL).net
    wave = normalise(torch.from_numpy(clips[i].mono(24_000)))
    hidden = FIX[f"hidden__{i}"]  # [layers + 1, T, hidden]
    with torch.inference_mode():
        for layer in range(SMALL.layers + 1):
            assert rel_err(net(wave, layer)[0].numpy(), hidden[layer]) < TOL, layer


def test_post_ln_network_does_not_match(state, clips):
    """The parity above needs the pre-LN flag: the 95M's post-LN wiring of the same weights is far off."""
    net = load_mert_330m(state, config=replace(SMALL, stable_layer_norm=False)).net
    wave = normalise(torch.from_numpy(clips[0].mono(24_000)))
    with torch.inference_mode():
        assert rel_err(net(wave, SMALL.layers)[0].numpy(), FIX["hidden__0"][SMALL.layers]) > 0.1


@pytest.mark.parametrize("layer", [1, 2])
def test_mad_vectors_and_value_equal_mad_metrics(state, clips, layer):
    """``mad`` max-pools the frames of each decoded file as mad-metric's ``get_embedding(..., 'max')`` does,
    and its value is mad-metric's ``compute_mad`` on those vectors (clips 0-2 evaluated, 3-5 reference; MAUVE's
    k-means starts from rows picked by position, so the clips go in the order ``compute_mad`` read its files:
    generated ids that sort that way, references fed that way)."""
    expected = MAD_VALUES["values"][f"mad_l{layer}"]
    emb = load_mert_330m(state, config=SMALL, layer=layer)
    metric = get_metric("mad", embedder=emb)
    metric.prepare(None)
    for rank, (g, r) in enumerate(zip(expected["eval_order"], expected["ref_order"], strict=True)):
        metric.feed(ScoringItem(f"g{rank}", clips[g], clips[r]))
    theirs = FIX[f"mad_l{layer}"]
    ours = np.concatenate([np.stack([metric.generated[f"g{k}"] for k in range(3)]), np.stack(metric.reference)])
    assert rel_err(ours, theirs[expected["eval_order"] + expected["ref_order"]]) < TOL
    value = metric.compute().value
    assert value == pytest.approx(expected["mad"], rel=1e-9)
    assert value == pytest.approx(music_audio_distance(theirs[expected["eval_order"]], theirs[expected["ref_order"]]),
                                  rel=1e-12)


def test_layer_1_mad_depends_on_the_row_order():
    """Why the order above matters: the same vectors in sorted order give another MAD (3 + 3 clips, 2 buckets)."""
    theirs = FIX["mad_l1"]
    assert music_audio_distance(theirs[:3], theirs[3:]) != pytest.approx(MAD_VALUES["values"]["mad_l1"]["mad"])


def test_settings_record_mad_metrics_defaults(state):
    emb = load_mert_330m(state, config=SMALL)
    s = emb.settings()
    assert (s["name"], s["model"], s["layer"], s["float16"], s["normalize"], s["limit_s"]) == (
        "mert_330m", "MERT-v1-330M", SMALL.layers, False, True, None)
    assert s["protocol_version"] == PROTOCOL_VERSION
    metric = get_metric("mad", embedder=emb)
    ms = metric.settings()
    assert (ms["embedder"], ms["sample_rate"], ms["channels"], ms["peak_db"], ms["resampler"]) == (
        "mert_330m", 24_000, 1, None, "soxr_hq")
    assert ms["aggregation"] == "max" and ms["seed"] == 25 and ms["explained_variance"] == 0.9
    assert metric.protocol_version == "mad-metric-0.0.6-mauve-0.4" and metric.higher_is_better is False
    # no length limit: a clip longer than fadtk's 6 minutes is not cut (checked on the limit, not by embedding it)
    assert emb.limit_samples is None


def test_missing_file_names_the_url_and_the_place(tmp_path, monkeypatch):
    monkeypatch.setenv("T2MBENCH_HOME", str(tmp_path))
    with pytest.raises(MissingWeightsError) as e:
        get_embedder("mert_330m")
    assert CHECKPOINT.url in str(e.value) and str(tmp_path / "weights" / CHECKPOINT.filename) in str(e.value)
    assert "CC-BY-NC-4.0" in CHECKPOINT.licence
    assert CHECKPOINT.sha256 is None and "could not be retrieved" in CHECKPOINT.note
    assert embedder_spec("mert_330m").weight_files() == (CHECKPOINT,)


def test_a_reduced_file_at_the_default_place_loads_with_sizes_from_its_shapes(state, tmp_path, monkeypatch):
    """The registered file's place, seeded reduced weights: the sizes come from the shapes, the 330M's pre-LN
    flag from the entry, one head per 64 channels (at least one) for a width other than 1024, the last layer."""
    monkeypatch.setenv("T2MBENCH_HOME", str(tmp_path))
    path = tmp_path / "weights" / CHECKPOINT.filename
    path.parent.mkdir(parents=True)
    torch.save(state, path)
    emb = get_embedder("mert_330m")
    assert emb.net.cfg == replace(SMALL, heads=1) and emb.layer == SMALL.layers
    x = torch.from_numpy(FIX["pcm__0"].T.astype(np.float32) / 32768)[None]
    expected = load_mert_330m(state, config=replace(SMALL, heads=1)).embed(x, 32_000)
    torch.testing.assert_close(emb.embed(x, 32_000), expected, rtol=0, atol=0)
