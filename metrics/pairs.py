"""Aligning a generated clip with its reference for the paired signal metrics.

Policy (stable-audio-tools' autoencoder evaluation, plus what it leaves open):

- both clips are resampled to the metric's rate;
- channel counts must agree; a mono clip paired with a stereo one is duplicated to L = R
  (as stable-audio-metrics fakes stereo); any other mismatch is an error;
- lengths are trimmed to the shorter clip (SAT's ``trim_to_shortest``), from the start; a
  generated clip shorter than :data:`SHORT_RATIO` of its reference is scored on that part only,
  with a warning (a truncated generation would otherwise look like a good one).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from t2mbench.core.errors import AudioError
from t2mbench.metrics.base import ScoringItem
from t2mbench.metrics.clip_audio import Resampler

SHORT_RATIO = 0.9


def short_clip(clip_id: str, generated: int, reference: int, sample_rate: int) -> str | None:
    """The warning for a generated clip of ``generated`` samples under :data:`SHORT_RATIO` of its
    reference's ``reference`` samples (both at ``sample_rate`` Hz), else None."""
    if generated >= SHORT_RATIO * reference:
        return None
    return (f"clip {clip_id!r}: the generated clip ({generated / sample_rate:.2f} s) is much shorter than its "
            f"reference ({reference / sample_rate:.2f} s); scored on its length only")


def paired_signals(
    item: ScoringItem, sample_rate: int, *, resampler: Resampler = "soxr_hq", min_samples: int = 1,
    warn: Callable[[str], None] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """``(generated, reference)`` float32 ``[C, T]`` at ``sample_rate``, channel-matched and trimmed;
    ``warn`` receives the message for a generated clip much shorter than its reference.

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
    message = short_clip(item.clip_id, gen.shape[-1], ref.shape[-1], sample_rate)
    if warn is not None and message:
        warn(message)
    if n < min_samples:
        short = item.generated if gen.shape[-1] == n else item.reference
        raise AudioError(
            f"{short.source}: is {n} samples at {sample_rate} Hz ({n / sample_rate:.4f} s); "
            f"this metric needs at least {min_samples} ({min_samples / sample_rate:.4f} s)"
        )
    return gen[:, :n], ref[:, :n]
