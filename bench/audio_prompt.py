"""The product's audio-prompt encoder for the AP-Adapter path
(:mod:`t2mbench.reference_models.adapters.ap_adapter`), and ``generate --audio-prompt FILE``'s inputs.

AudioMAE (upstream's encoder) cannot be downloaded here, so the prompt's feature grid comes from the
shipped evaluator's first convolutional stages (:class:`EvaluatorPatchEncoder`). It lives in ``bench``
because the evaluator is a metric, a layer above the reference models, which only see the
:class:`~t2mbench.reference_models.adapters.ap_adapter.AudioPromptEncoder` protocol.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from t2mbench.reference_models.adapters.ap_adapter import (
    DEFAULT_POOL,
    DEFAULT_SCALE,
    AudioPromptInputs,
    audio_prompt_inputs,
    check_knobs,
)
from t2mbench.reference_models.model import LatentDiffusionModel

PROMPT_SECONDS = 10.24  # AudioMAE's 1024 fbank frames at a 10-ms shift: prompts are cut or zero-padded to it
EVALUATOR_GRID_FREQ = 8  # frequency cells of EvaluatorPatchEncoder's grid (64 mels / 2³)


class EvaluatorPatchEncoder(nn.Module):
    """The shipped evaluator's first ``stages`` convolutional stages on the log-mel of a
    :data:`PROMPT_SECONDS` window (module doc): audio ``[B, C, T]`` -> mono 32 kHz, cut or
    zero-padded to 10.24 s -> 64 log-mels × 656 frames (64 frames/s) -> 3 conv stages with 2×2 max
    pooling -> 64 channels on 8 frequency × 82 time cells."""

    def __init__(self, net: nn.Module, stages: int = 3) -> None:
        super().__init__()
        from t2mbench.metrics.embedders.evaluator import EvaluatorNet

        if not isinstance(net, EvaluatorNet):
            raise TypeError(f"expected an EvaluatorNet, got {type(net).__name__}")
        self.front = net.front
        self.stages = net.audio.stages[:stages]
        self.width = net.config.channels[stages - 1]
        self.requires_grad_(False)

    def inputs(self, audio: torch.Tensor, sample_rate: int) -> torch.Tensor:
        """Float audio ``[B, C, T]`` -> normalised log-mels ``[B, 1, 64 mel, 656 frames]``."""
        from t2mbench.metrics.embedders.evaluator import N_MELS, SAMPLE_RATE, mono_32k

        wave = mono_32k(audio, sample_rate)
        n = round(PROMPT_SECONDS * SAMPLE_RATE)
        wave = F.pad(wave[:, :n], (0, max(0, n - wave.shape[-1])))
        return self.front(wave.to(self.front.window.device))[:, None, :N_MELS]

    def grid(self, inputs: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        x = self.stages(inputs)  # [B, D, F, T]
        b, d, f, t = x.shape
        return x.permute(0, 3, 2, 1).reshape(b, t * f, d), (t, f)


def check_audio_prompt(path: str, scale: float, pool: int) -> None:
    """The CLI's checks of ``--audio-prompt PATH --audio-prompt-scale λ --audio-prompt-pool N`` before
    any model loads (the pooling rate must fit :class:`EvaluatorPatchEncoder`'s 8 frequency cells)."""
    from t2mbench.core.errors import ManifestError

    if not Path(path).is_file():
        raise ManifestError(f"--audio-prompt: {path}: no such audio file")
    check_knobs(scale, pool, EVALUATOR_GRID_FREQ)


def audio_prompt_from_file(model: LatentDiffusionModel, path: str, scale: float = DEFAULT_SCALE,
                           pool: int = DEFAULT_POOL, weights: str | None = None) -> AudioPromptInputs:
    """:func:`audio_prompt_inputs` for the audio file ``path`` (any rate and channel count), used for every prompt."""
    from t2mbench.core.audio import load_audio

    check_audio_prompt(path, scale, pool)
    audio, rate = load_audio(path)
    from t2mbench.metrics.embedders.evaluator import load_evaluator

    return audio_prompt_inputs(model, torch.from_numpy(audio)[None], rate, EvaluatorPatchEncoder(load_evaluator().net),
                               scale, pool, weights=weights)
