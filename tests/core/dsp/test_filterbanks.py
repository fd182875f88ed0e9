import json
from pathlib import Path

import numpy as np
import pytest
from support.parity import rel_err

from t2mbench.core.dsp.filterbanks import hz_to_mel, kaldi_mel_banks, mel_filterbank, mel_to_hz

FIX = np.load(Path(__file__).parents[2] / "fixtures" / "filterbanks" / "filterbanks.npz")
CASES = {
    "openl3_kapre037": (48000, 2048, 256, 0.0, 24000.0),
    "auraloss_mel": (44100, 1024, 128, 0.0, None),
    "clap_melW": (48000, 1024, 64, 50.0, 14000.0),
}


@pytest.mark.parametrize("name", CASES)
def test_slaney_matches_librosa(name):
    ours = mel_filterbank(*CASES[name])
    assert rel_err(ours, FIX[f"librosa_slaney__{name}"]) < 1e-6


@pytest.mark.parametrize("name", CASES)
def test_htk_without_norm_matches_librosa(name):
    ours = mel_filterbank(*CASES[name], scale="htk", norm=None)
    assert rel_err(ours, FIX[f"librosa_htk_nonorm__{name}"]) < 1e-6


def test_htk_matches_torchaudio_melscale_fbanks():
    # torchaudio builds the bank in float32: agreement is at float32 rounding of the edges
    ours = mel_filterbank(48000, 1024, 64, 50.0, 14000.0, scale="htk", norm=None)
    assert np.abs(ours - FIX["torchaudio_htk__clap_fusion"]).max() < 2e-5


def test_kaldi_matches_torchaudio_get_mel_banks():
    ours = kaldi_mel_banks(128, 1024, 32000.0, 0.0, 15000.0)
    assert ours.shape == (128, 512)
    assert np.abs(ours - FIX["kaldi__passt"]).max() < 5e-5


@pytest.mark.parametrize("scale", ["slaney", "htk"])
def test_mel_scale_roundtrip(scale):
    f = np.array([0.0, 440.0, 1000.0, 4000.0, 22050.0])
    assert np.allclose(mel_to_hz(hz_to_mel(f, scale), scale), f, rtol=1e-12, atol=1e-9)


def test_slaney_mel_of_1khz_is_15():
    assert hz_to_mel(1000.0) == pytest.approx(15.0)


def test_unknown_norm_is_an_error():
    with pytest.raises(ValueError, match="unknown mel norm 'l1'"):
        mel_filterbank(16000, 512, 40, norm="l1")


def test_fixture_records_versions():
    assert json.loads(str(FIX["versions"]))["librosa"] == "0.11.0"
