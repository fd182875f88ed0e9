"""A corpus folder's splits: the clips of one split (``train``/``test``, fixed per piece when
the corpus is built) and their audio decoded into one tensor at a model's rate.

Training reads the ``train`` split; the evidence studies score against the ``test`` split
(pieces never used in training). Both read it from here."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from t2mbench.core.audio import load_audio
from t2mbench.core.errors import ManifestError
from t2mbench.core.manifest import ClipRecord, load_clipset
from t2mbench.core.progress import progress_bar


def split_clips(corpus: str | Path, split: str, *, need_captions: bool = False) -> list[ClipRecord]:
    """The clips of ``split`` (``train``/``test``) of a corpus folder, in manifest order;
    with ``need_captions`` a clip without a caption is an error."""
    clips = [c for c in load_clipset(corpus) if c.split == split]
    if not clips:
        raise ManifestError(f"{corpus}: no clips in split {split!r}")
    no_caption = [c.id for c in clips if not c.caption]
    if need_captions and no_caption:
        raise ManifestError(f"{corpus}: clips without a caption: {no_caption[:10]}")
    return clips


def load_split_audio(
    clips: list[ClipRecord], sample_rate: int, channels: int, n_samples: int, *, progress: bool = True
) -> torch.Tensor:
    """Decode ``clips`` at ``sample_rate`` Hz with ``channels`` (1: channel mean before
    resampling; 2: stereo) and crop or zero-pad each to ``n_samples`` → float32 ``[N, C, n_samples]``."""
    policy = "mono" if channels == 1 else "stereo"
    out = np.zeros((len(clips), channels, n_samples), np.float32)
    for i, clip in enumerate(progress_bar(clips, desc="decode", unit="clip", disable=not progress)):
        audio, _ = load_audio(clip.path, sample_rate=sample_rate, channels=policy)
        n = min(n_samples, audio.shape[-1])
        out[i, :, :n] = audio[:, :n]
    return torch.from_numpy(out)
