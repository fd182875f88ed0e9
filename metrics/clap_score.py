"""CLAP score: cosine similarity of each clip's audio embedding with its caption's text embedding.

As stable-audio-metrics ``clap_score``: ``torch.nn.functional.cosine_similarity(a, t, eps=1e-8)``
per clip, i.e. a·t / (max(‖a‖, 1e-8)·max(‖t‖, 1e-8)), and the dataset score is the arithmetic
mean over every clip (LAION-CLAP embeddings are already unit-norm, so this is a·t).
"""

from __future__ import annotations

import numpy as np

COSINE_EPS = 1e-8


def clap_score(audio_emb: np.ndarray, text_emb: np.ndarray) -> np.ndarray:
    """Per-clip cosine similarity of ``audio_emb`` and ``text_emb`` ``[B, D]`` (rows paired), float64 ``[B]``.

    >>> clap_score(np.array([[3.0, 4.0]]), np.array([[1.0, 0.0]])).tolist()
    [0.6]
    """
    a = np.asarray(audio_emb, dtype=np.float64)
    t = np.asarray(text_emb, dtype=np.float64)
    if a.ndim != 2 or a.shape != t.shape:
        raise ValueError(f"audio and text embeddings must both be [B, D]; got {a.shape} and {t.shape}")
    if not (np.isfinite(a).all() and np.isfinite(t).all()):
        raise ValueError("embeddings contain NaN or Inf")
    na = np.maximum(np.linalg.norm(a, axis=-1), COSINE_EPS)
    nt = np.maximum(np.linalg.norm(t, axis=-1), COSINE_EPS)
    return np.sum((a / na[:, None]) * (t / nt[:, None]), axis=-1)
