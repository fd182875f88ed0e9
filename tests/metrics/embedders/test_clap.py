"""LAION-CLAP: parity with laion-clap 1.1.7 (stable-audio-metrics' call sequence) on seeded random
weights (fixtures from tools/fixtures/make_clap.py), keys of the published layout, bad input, bad
weights and tokenizers."""

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from support.clap_weights import clap_clip, clap_weights, manifest, write_tokenizer
from support.parity import rel_err

from t2mbench.core.audio import int16_roundtrip
from t2mbench.core.errors import AudioError, ManifestError, MissingWeightsError, WeightsError
from t2mbench.metrics.embedders import get_embedder
from t2mbench.metrics.embedders.clap import (
    ClapEmbedder,
    ClapModel,
    Variant,
    load_clap,
    load_tokenizer,
    normalise_state_dict,
)

FIX_DIR = Path(__file__).parents[2] / "fixtures" / "clap"
FIX = np.load(FIX_DIR / "clap.npz")
META = json.loads((FIX_DIR / "meta.json").read_text())
TOL = 1e-4  # max abs error / max abs value, float32


def clip(name: str) -> tuple[torch.Tensor, int]:
    """The fixture clip ``[1, C, T]`` as soundfile decodes int16, and its rate."""
    spec = META["clips"][name]
    pcm = clap_clip(name, spec["sample_rate"], spec["channels"], spec["samples"], META["signal_seed"])
    assert hashlib.sha256(pcm.tobytes()).hexdigest() == spec["sha256"]  # the generator has not drifted
    return torch.from_numpy(pcm.astype(np.float32) / 32768.0)[None], spec["sample_rate"]


def seeded(variant: str) -> dict[str, torch.Tensor]:
    return {k: torch.from_numpy(v) for k, v in clap_weights(variant, META["weight_seeds"][variant]).items()}


@pytest.fixture(scope="module")
def tok_dir(tmp_path_factory) -> Path:
    return write_tokenizer(tmp_path_factory.mktemp("tok") / "roberta-base")


@pytest.fixture(scope="module")
def fusion_state() -> dict[str, torch.Tensor]:
    return seeded("htsat_tiny_fusion")


@pytest.fixture(scope="module")
def fusion(fusion_state, tok_dir) -> ClapEmbedder:
    return load_clap(fusion_state, tokenizer=tok_dir)


@pytest.fixture(scope="module")
def ours(fusion) -> dict[str, np.ndarray]:
    return {name: fusion.embed(*clip(name))[0].numpy() for name in META["clips"]}


@pytest.mark.parametrize("variant", ["htsat_tiny_fusion", "htsat_base"])
def test_state_dict_keys_and_shapes_equal_laion_clap(variant):
    v = Variant(dim=96, fusion=True) if variant == "htsat_tiny_fusion" else Variant(dim=128, fusion=False)
    with torch.device("meta"):
        model = ClapModel(v)
    ours = {k: tuple(t.shape) for k, t in model.state_dict().items()} | v.unused_shapes()
    assert ours == {k: s for k, s, _ in manifest(variant)}


def test_seeded_weights_are_the_ones_the_fixture_used(fusion_state):
    sums = {k: float(v.numpy().sum(dtype=np.float64)) for k, v in fusion_state.items()}
    assert sums == pytest.approx(META["weight_sums"]["htsat_tiny_fusion"], rel=1e-9, abs=1e-9)


@pytest.mark.parametrize("name", list(META["clips"]))
def test_fusion_audio_embeddings_match_laion_clap(ours, name):
    # 3.3 s repeat-padded; exactly 10 s; 480200 samples (1001 frames: short); 15 s fusion chunks;
    # 11 s stereo at 44.1 kHz: downmixed, then resampled with soxr HQ, as librosa.load(sr=48000, mono=True)
    assert ours[name].shape == (512,)
    assert rel_err(ours[name], FIX[f"emb_fusion__{name}"]) < TOL


def test_parity_is_not_trivial(ours):
    # random weights still separate the clips by far more than the parity tolerance
    names = list(ours)
    gaps = [np.abs(ours[a] - ours[b]).max() for i, a in enumerate(names) for b in names[i + 1 :]]
    assert min(gaps) > 100 * TOL * np.abs(ours[names[0]]).max()


def test_fusion_features_match_get_audio_features(fusion):
    wave, _ = clip("15s_48k")
    quantised = torch.from_numpy(int16_roundtrip(wave[0].numpy()))[0]
    mel, longer = fusion._features(quantised)
    assert longer and mel.shape == (4, 1001, 64)
    # float32 FFT rounding differs by CPU instruction set (fixtures: Intel with AMX; here an
    # AVX-512 EPYC): the largest error is 2.3e-3 dB in a bin 94 dB under the peak, 4.4e-5 of
    # the range; a wrong mel filter or log floor is off by whole dB
    assert rel_err(mel.numpy(), FIX["mel_fusion__15s_48k"]) < TOL


@pytest.fixture(scope="module")
def base(tok_dir) -> ClapEmbedder:
    return load_clap(seeded("htsat_base"), tokenizer=tok_dir)


@pytest.mark.parametrize("name", META["base_clips"])
def test_htsat_base_non_fusion_matches_laion_clap(base, name):
    # torchlibrosa front end from the checkpoint's kernels and melW; 15 s: the seeded random 10 s crop
    assert base.variant.describe() == "HTSAT-base non-fusion + RoBERTa-base"
    assert rel_err(base.embed(*clip(name))[0].numpy(), FIX[f"emb_base__{name}"]) < TOL


def test_token_ids_match_laion_clap(fusion):
    tokens = fusion.tokenizer(
        META["captions"], padding="max_length", truncation=True, max_length=77, return_tensors="np"
    )
    assert np.array_equal(tokens["input_ids"], FIX["input_ids"])
    assert np.array_equal(tokens["attention_mask"], FIX["attention_mask"])
    assert FIX["attention_mask"][2].all() and FIX["input_ids"][2, -1] == 2  # the long caption: cut to 77, </s> last


def test_text_embeddings_and_clap_score_match_laion_clap(fusion, ours):
    text = fusion.embed_text(META["captions"]).numpy()
    assert text.shape == (5, 512)
    assert rel_err(text, FIX["text_fusion"]) < TOL
    short = [0, 1, 3, 4]  # without the 77-token caption the batch is cut to its longest caption: same numbers
    assert rel_err(fusion.embed_text([META["captions"][i] for i in short]).numpy(), FIX["text_fusion"][short]) < TOL
    audio = np.stack([ours[n] for n in META["clips"]])
    score = float((audio * text).sum(axis=1).mean())  # unit vectors: cosine = dot product
    assert abs(score - float(FIX["clap_score_fusion"])) < TOL * abs(float(FIX["clap_score_fusion"]))


def test_batch_equals_single_clips(fusion, ours):
    wave, sr = clip("15s_48k")
    batch = torch.cat([wave, wave.flip(-1)])
    out = fusion.embed(batch, sr).numpy()
    assert rel_err(out[0], ours["15s_48k"]) < 1e-5
    assert rel_err(out[1], fusion.embed(wave.flip(-1), sr)[0].numpy()) < 1e-5


def test_seed_fixes_the_fusion_chunks(fusion):
    other = ClapEmbedder(fusion.model, fusion.variant, fusion.tokenizer, weights_sha256=fusion.weights_sha256,
                         checkpoint=fusion.checkpoint, seed=1)  # fmt: skip
    assert other.settings()["seed"] == 1 and fusion.settings()["seed"] == 0
    wave = torch.from_numpy(int16_roundtrip(clip("15s_48k")[0][0].numpy()))[0]
    mine, theirs = fusion._features(wave)[0], other._features(wave)[0]
    assert torch.equal(mine[0], theirs[0])  # the global view has no randomness
    assert not torch.equal(mine[1:], theirs[1:])  # other chunks
    assert torch.equal(fusion._features(wave)[0], mine)  # the same seed draws the same chunks every time


def test_bad_audio(fusion):
    with pytest.raises(AudioError, match=r"at least 1024 samples \(21\.3 ms, one STFT window\) at 48000 Hz; got 1023"):
        fusion.embed(torch.ones(1, 1, 1023), 48000)
    with pytest.raises(AudioError, match=r"got 944 \(867 at 44100 Hz\)"):
        fusion.embed(torch.ones(1, 2, 867), 44100)  # stereo at 44.1 kHz: downmixed and resampled first
    with pytest.raises(AudioError, match=r"shape \[batch, channels, samples\], got \(48000,\)"):
        fusion.embed(torch.zeros(48000), 48000)
    with pytest.raises(AudioError, match="NaN or Inf"):
        fusion.embed(torch.full((1, 1, 48000), float("nan")), 48000)


def test_bad_captions(fusion):
    with pytest.raises(ManifestError, match="non-empty list of captions"):
        fusion.embed_text([])
    with pytest.raises(ManifestError, match="caption 1 is ''"):
        fusion.embed_text(["piano", ""])
    with pytest.raises(ManifestError, match="caption 0 is '   '"):
        fusion.embed_text(["   "])


def test_training_checkpoint_layout_loads(fusion_state, tok_dir, fusion):
    # a LAION training dict: state_dict entry, DataParallel 'module.' prefix, position_ids of old transformers
    wrapped = {f"module.{k}": v for k, v in fusion_state.items()}
    wrapped["module.text_branch.embeddings.position_ids"] = torch.arange(514)[None]
    ckpt = {"epoch": 45, "name": "run", "state_dict": wrapped, "optimizer": {}}
    assert list(normalise_state_dict(ckpt, "x")) == list(fusion_state)
    model = get_embedder("clap", checkpoint=ckpt, tokenizer=tok_dir)
    assert model.settings()["model"] == "HTSAT-tiny fusion (aff_2d) + RoBERTa-base"
    assert torch.equal(model.embed_text(["piano"]), fusion.embed_text(["piano"]))


def test_wrong_model_is_refused(fusion_state, tmp_path):
    with pytest.raises(WeightsError, match="not a LAION-CLAP HTSAT checkpoint .*missing; first keys \\['cls_token'"):
        load_clap({"cls_token": torch.zeros(1, 1, 768)}, tokenizer=tmp_path)
    partial = {k: v for k, v in fusion_state.items() if k != "audio_branch.norm.weight"}
    with pytest.raises(WeightsError, match=r"HTSAT-tiny fusion \(aff_2d\) \+ RoBERTa-base checkpoint: 1 keys missing"):
        load_clap(partial, tokenizer=tmp_path)
    bad = dict(fusion_state, **{"text_projection.0.weight": torch.zeros(512, 512)})
    with pytest.raises(WeightsError, match=r"text_projection.0.weight is \(512, 512\), expected \(512, 768\)"):
        load_clap(bad, tokenizer=tmp_path)


def test_truncated_and_missing_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "630k-audioset-fusion-best.pt"
    torch.save({"state_dict": {"logit_scale_a": torch.zeros(1000)}}, path)
    path.write_bytes(path.read_bytes()[:300])
    with pytest.raises(
        WeightsError, match="cannot read the LAION-CLAP checkpoint .* truncated or not a torch checkpoint"
    ):
        load_clap(path)
    monkeypatch.setenv("T2MBENCH_HOME", str(tmp_path / "home"))
    with pytest.raises(MissingWeightsError, match="630k-audioset-fusion-best.pt .*huggingface.co/lukewys/laion_clap"):
        load_clap()
    with pytest.raises(MissingWeightsError, match="music_audioset_epoch_15_esc_90.14.pt"):
        load_clap("clap-music-audioset")


def test_tokenizer_must_be_roberta_base(tmp_path, monkeypatch, tok_dir):
    small = tmp_path / "small"
    small.mkdir()
    (small / "vocab.json").write_text(json.dumps({"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3, "a": 4}))
    (small / "merges.txt").write_text("#version: 0.2\n")
    with pytest.raises(
        WeightsError, match=r"has \d+ tokens, the CLAP text tower expects roberta-base's 50265 \(recent transformers"
    ):
        load_tokenizer(small)
    with pytest.raises(MissingWeightsError, match="tokenizer file .*nothing/vocab.json not found"):
        load_tokenizer(tmp_path / "nothing")
    monkeypatch.setenv("T2MBENCH_HOME", str(tmp_path / "home"))
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "hf"))
    with pytest.raises(MissingWeightsError, match="not in t2mbench's weights or the HF cache; download .*roberta-base"):
        load_tokenizer()
    (tmp_path / "home" / "weights").mkdir(parents=True)
    (tmp_path / "home" / "weights" / "roberta-base").symlink_to(tok_dir)
    assert len(load_tokenizer()) == 50265  # found in t2mbench's weights folder


@pytest.mark.parametrize("variant", ["htsat_tiny_fusion", "htsat_base"])
def test_published_layouts_are_detected_as_published_and_reduced_ones_by_their_shapes(variant):
    from t2mbench.metrics.embedders.clap import detect_variant

    with torch.device("meta"):
        full = {k: torch.empty(s) for k, s, _ in manifest(variant)}
        v = detect_variant(full, "manifest")
        assert v == (Variant(dim=96, fusion=True) if variant == "htsat_tiny_fusion" else Variant(dim=128, fusion=False))
        assert v.published
        reduced = Variant(dim=8, fusion=v.fusion, depths=(1, 2, 1, 1), text_dim=32, text_layers=1)
        state = dict(ClapModel(reduced).state_dict()) | {k: torch.empty(s) for k, s in reduced.unused_shapes().items()}
    found = detect_variant(state, "reduced")
    assert found == reduced and not found.published
    kind = "fusion (aff_2d)" if v.fusion else "non-fusion"
    text = "RoBERTa (reduced: width 32, 1 layers)"
    assert found.describe() == f"HTSAT (reduced: width 8, depths [1, 2, 1, 1]) {kind} + {text}"
