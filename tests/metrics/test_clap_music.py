"""LAION-CLAP music checkpoints as fadtk's ``clap-laion-music`` embedder: HTSAT-base non-fusion (the
architecture the CLAP fixtures already prove against laion-clap 1.1.7, ``emb_base__*``), fadtk's 10 s
chunks every second, the declared weight files, and the checkpoint check."""

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from support.clap_weights import clap_clip, clap_weights
from support.parity import rel_err

from t2mbench.core.errors import ConfigError, MissingWeightsError, WeightsError
from t2mbench.core.torch_files import load_torch_file
from t2mbench.metrics.embedders import embedder_spec, get_embedder
from t2mbench.metrics.embedders.clap import CHECKPOINTS, ClapMusicEmbedder, load_clap_music
from t2mbench.metrics.registry import get_metric

FIX_DIR = Path(__file__).parents[1] / "fixtures" / "clap"
FIX = np.load(FIX_DIR / "clap.npz")
META = json.loads((FIX_DIR / "meta.json").read_text())
TOL = 1e-4  # as the CLAP fixtures (float32, max abs error / max abs value)
CROP = 480_000


def clip(name: str) -> np.ndarray:
    spec = META["clips"][name]
    pcm = clap_clip(name, spec["sample_rate"], spec["channels"], spec["samples"], META["signal_seed"])
    assert hashlib.sha256(pcm.tobytes()).hexdigest() == spec["sha256"]
    return pcm.astype(np.float32) / 32768.0


@pytest.fixture(scope="module")
def music() -> ClapMusicEmbedder:
    state = clap_weights("htsat_base", META["weight_seeds"]["htsat_base"])
    return load_clap_music({k: torch.from_numpy(v) for k, v in state.items()}, batch_size=4)


def test_first_chunk_equals_laion_clap_on_the_same_10_s(music):
    # upstream's fixture embedded the 15 s clip's seeded random 10 s crop (np.random.seed(0); randint);
    # fadtk's first chunk of exactly that crop is the same 10 s through the same HTSAT-base
    wave = clip("15s_48k")[0]
    start = np.random.RandomState(0).randint(0, wave.shape[0] - CROP + 1)
    out = music.embed(torch.from_numpy(wave[start : start + CROP])[None, None], 48_000)[0]
    assert out.shape == (10, 512)  # chunks start at 0, 1, ..., 9 s
    assert music.variant.describe() == "HTSAT-base non-fusion + RoBERTa-base"
    assert rel_err(out[0].numpy(), FIX["emb_base__15s_48k"]) < TOL


def test_chunks_are_fadtks_10_s_every_second_zero_padded(music):
    # 11.5 s: 12 chunks, each the clip from i seconds, zero-padded to 10 s (not tiled as stable-audio-metrics'
    # repeat-pad would be); 3.3 s: 4 chunks (from 0, 1, 2, 3 s); unit-norm
    wave = torch.from_numpy(clip("15s_48k")[0, : 11 * 48_000 + 24_000])
    out = music.embed(wave[None, None], 48_000)[0]
    assert out.shape == (12, 512)
    torch.testing.assert_close(out.norm(dim=-1), torch.ones(12))
    quantised = torch.from_numpy(np.trunc(np.clip(wave.numpy(), -1, 1) * 32767).astype(np.float32) / 32767)
    for i in (0, 5, 11):
        chunk = quantised[i * 48_000 : i * 48_000 + CROP]
        chunk = torch.nn.functional.pad(chunk, (0, CROP - chunk.shape[0]))
        with torch.inference_mode():
            one = music._audio_embedding(chunk[None], torch.zeros(1, dtype=torch.bool))[0]
        assert rel_err(out[i].numpy(), one.numpy()) < 1e-6
    short = music.embed(torch.from_numpy(clip("3s_48k"))[None], 48_000)
    assert short.shape == (1, 4, 512)


def test_music_checkpoints_are_declared_with_licence_and_fetch_hint(tmp_path, monkeypatch):
    assert CHECKPOINTS["clap-music-audioset"].filename == "music_audioset_epoch_15_esc_90.14.pt"
    assert CHECKPOINTS["clap-music-speech-audioset"].filename == "music_speech_audioset_epoch_15_esc_89.98.pt"
    for name in ("clap-music-audioset", "clap-music-speech-audioset"):
        assert CHECKPOINTS[name].licence.startswith("CC0-1.0")
    assert CHECKPOINTS["clap-music-audioset"] in embedder_spec("clap_music").weight_files()
    monkeypatch.setenv("T2MBENCH_HOME", str(tmp_path))
    with pytest.raises(MissingWeightsError, match="music_audioset_epoch_15_esc_90.14.pt") as e:
        get_embedder("clap_music")
    assert "https://huggingface.co/lukewys/laion_clap/resolve/main/music_audioset_epoch_15_esc_90.14.pt" in str(e.value)
    with pytest.raises(MissingWeightsError, match="music_speech_audioset_epoch_15_esc_89.98.pt"):
        get_embedder("clap_music", checkpoint="clap-music-speech-audioset")


def test_a_fusion_or_tiny_checkpoint_is_refused_and_there_is_no_text_tower(music):
    state = clap_weights("htsat_tiny_fusion", META["weight_seeds"]["htsat_tiny_fusion"])
    with pytest.raises(WeightsError, match="HTSAT-tiny fusion .* checkpoint; fadtk's CLAP-music FAD uses HTSAT-base"):
        load_clap_music({k: torch.from_numpy(v) for k, v in state.items()})
    with pytest.raises(ConfigError, match="audio-only"):
        music.embed_text(["piano"])


def test_fad_clap_music_feeds_fadtks_input(music):
    metric = get_metric("fad_clap_music", embedder=music)
    s = metric.settings()
    assert (s["sample_rate"], s["channels"], s["peak_db"], s["embedder"]) == (48_000, 1, None, "clap_music")


def test_training_metadata_with_numpy_scalars_loads(tmp_path):
    # LAION's training checkpoints hold NumPy floats beside the state dict; this file was written by numpy 1.26
    # (pickled as numpy.core.multiarray.scalar), as the published ones were; a current numpy's scalars load too
    ckpt = load_torch_file(FIX_DIR / "numpy1_scalars.pt")
    assert ckpt["epoch"] == 15.0 and ckpt["step"] == 7 and torch.equal(ckpt["state_dict"]["module.x"], torch.ones(2))
    torch.save({"epoch": np.float64(2.5), "dtype": np.dtype("float32")}, tmp_path / "now.pt")
    assert load_torch_file(tmp_path / "now.pt") == {"epoch": 2.5, "dtype": np.dtype("float32")}


def test_music_checkpoint_hashes_are_pinned():
    # the sha256/size several independent projects pin for these Git LFS files (not hashed here: no network)
    assert CHECKPOINTS["clap-music-audioset"].sha256.startswith("fae3e9c087f2909c")
    assert CHECKPOINTS["clap-music-speech-audioset"].sha256.startswith("51c68f12f9d7ea25")
    assert CHECKPOINTS["clap-music-audioset"].size == 2_352_471_003
