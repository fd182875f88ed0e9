"""Corpus data for training: one split's clips, decoded once into memory at the model's rate,
and the training-config reader shared by every task."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from t2mbench.bench.train.loop import TrainConfig

from t2mbench.core.audio import load_audio
from t2mbench.core.errors import ConfigError, ManifestError
from t2mbench.core.files import read_json
from t2mbench.core.manifest import ClipRecord, load_clipset
from t2mbench.core.progress import progress_bar

CONFIG_BLOCKS = ("task", "model", "train")


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


def read_train_config(
    path: str | Path, steps: int | None = None
) -> tuple[dict[str, Any], dict[str, Any], TrainConfig]:
    """``(task, model, train)`` blocks of a training-config JSON; ``steps`` overrides the
    configured step count."""
    raw = read_json(path)
    missing = [k for k in CONFIG_BLOCKS if k not in raw]
    if missing:
        raise ConfigError(f"{path}: missing blocks {missing}; a training config has 'task', 'model' and 'train'")
    block = dict(raw["train"])
    if "betas" in block:
        block["betas"] = tuple(block["betas"])
    try:
        config = TrainConfig(**block)
    except TypeError as e:
        raise ConfigError(f"{path}: bad training config ({e})") from None
    if steps is not None:
        config = TrainConfig(**{**asdict(config), "steps": steps})
    return dict(raw["task"]), dict(raw["model"]), config
