"""Aligning a generated clip with its reference for the paired signal metrics.

Policy (stable-audio-tools' autoencoder evaluation, plus what it leaves open):

- both clips are resampled to the metric's rate;
- channel counts must agree; a mono clip paired with a stereo one is duplicated to L = R
  (as stable-audio-metrics fakes stereo); any other mismatch is an error;
- lengths are trimmed to the shorter clip (SAT's ``trim_to_shortest``), from the start.
"""

from __future__ import annotations

import numpy as np

from t2mbench.core.errors import AudioError
from t2mbench.metrics.base import ScoringItem
from t2mbench.metrics.clip_audio import Resampler


def paired_signals(
    item: ScoringItem, sample_rate: int, *, resampler: Resampler = "soxr_hq", min_samples: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """``(generated, reference)`` float32 ``[C, T]`` at ``sample_rate``, channel-matched and trimmed.

    Raises:
        AudioError: incompatible channel counts, or a clip shorter than ``min_samples``.
    """
    if item.generated is None or item.reference is None:
        raise AudioError(f"clip {item.clip_id!r}: a paired metric needs both the generated and the reference clip")
    gen = item.generated.at(sample_rate, resampler)
    ref = item.reference.at(sample_rate, resampler)
    if gen.shape[0] != ref.shape[0]:
        if gen.shape[0] == 1 and ref.shape[0] == 2:
            gen = np.repeat(gen, 2, axis=0)
        elif ref.shape[0] == 1 and gen.shape[0] == 2:
            ref = np.repeat(ref, 2, axis=0)
        else:
            raise AudioError(
                f"clip {item.clip_id!r}: generated has {gen.shape[0]} channels, reference {ref.shape[0]}; "
                "paired metrics need equal counts (mono is duplicated to match stereo)"
            )
    n = min(gen.shape[-1], ref.shape[-1])
    if n < min_samples:
        short = item.generated if gen.shape[-1] == n else item.reference
        raise AudioError(
            f"{short.source}: is {n} samples at {sample_rate} Hz ({n / sample_rate:.4f} s); "
            f"this metric needs at least {min_samples} ({min_samples / sample_rate:.4f} s)"
        )
    return gen[:, :n], ref[:, :n]
