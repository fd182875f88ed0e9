"""Tiny generated-clip folders (a tone per system and clip) for the listening-test tests."""

from __future__ import annotations

import numpy as np

from t2mbench.core.audio import save_audio
from t2mbench.core.manifest import ClipRecord, write_manifest

SR = 16000


def runs(tmp_path, names, clips=5, seconds=1.5):
    """One generated-clip folder per system: the same clip ids, a tone per system and clip."""
    folders = []
    for k, name in enumerate(names):
        folder = tmp_path / "runs" / name
        folder.mkdir(parents=True)
        recs = []
        for c in range(clips):
            t = np.arange(int(SR * seconds)) / SR
            audio = (0.1 * (k + 1) * np.sin(2 * np.pi * (220 + 40 * c + 5 * k) * t))[None].astype(np.float32)
            path = save_audio(folder / f"clip{c}.wav", audio, SR)
            recs.append(ClipRecord(id=f"clip{c}", path=path, caption=f"prompt {c} <b>\"é\"</b>", seconds=seconds,
                                   sample_rate=SR, channels=1))  # fmt: skip
        write_manifest(folder, recs)
        folders.append(folder)
    return folders
