"""CLAP score: torch ``cosine_similarity(eps=1e-8)`` as stable-audio-metrics averages it."""

from pathlib import Path

import numpy as np
import pytest

from t2mbench.metrics.clap_score import clap_score
from t2mbench.metrics.registry import get_metric

FIX = np.load(Path(__file__).parents[1] / "fixtures" / "metrics" / "kl_clap.npz")


def test_per_clip_cosine_matches_torch_including_a_zero_vector():
    got = clap_score(FIX["audio_emb"], FIX["text_emb"])
    np.testing.assert_allclose(got, FIX["clap"], atol=1e-7)
    assert got[3] == 0.0


def test_mean_over_clips_matches_clap_score():
    m = get_metric("clap", ci_resamples=0)
    m.update(FIX["audio_emb"], FIX["text_emb"], list("abcde"))
    assert m.compute().value == pytest.approx(float(FIX["clap_mean"]), abs=1e-7)


def test_shapes_must_pair():
    with pytest.raises(ValueError, match=r"audio and text embeddings must both be \[B, D\]; got \(2, 4\) and \(3, 4\)"):
        clap_score(np.ones((2, 4)), np.ones((3, 4)))
