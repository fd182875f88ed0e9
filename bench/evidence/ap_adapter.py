"""Does a generation follow its audio prompt? An AP-Adapter (a ``t2mbench train ap-adapter`` run's
``ema.safetensors``, or the copy-initialised adapter) on the shipped ``tiny`` model, measured on the corpus's
``test`` split (clips no training saw).

For each test clip i, with its caption as the text: one clip generated with clip i as the audio prompt and
one with clip i+1's (a rotation, the last clip taking the first's), from the same seed (``seed + i``; 4 s,
the model config's sampler and CFG scale, 10 steps). Per clip the shipped evaluator's clip-embedding cosine of each
generation to clip i; the study reports the mean of each arm and the mean of the paired difference (own
prompt minus other prompt) with its 95% bootstrap CI. A difference above zero says the generation follows
its prompt; λ 0 makes both arms the base model (difference exactly 0).

Command: ``t2mbench evidence ap-adapter --corpus CORPUS --weights RUN/ema.safetensors --scale 1 --pool 2
--out ap_adapter.json``
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from t2mbench.bench.corpus.splits import split_clips


def prompt_following(corpus: str | Path, weights: str | Path | None, scale: float = 1.0, pool: int = 2,
                     seconds: float = 4.0, steps: int = 10, seed: int = 0) -> dict[str, Any]:
    """``{"clips", "own", "other", "difference", "ci": [low, high]}`` (cosines) for the adapter of ``weights``
    (None: the copy-initialised adapter) at λ = ``scale`` and pooling rate ``pool``; ``seconds`` of audio per
    generation, ``steps`` sampler steps."""
    from t2mbench.bench.audio_prompt import EvaluatorPatchEncoder
    from t2mbench.core.audio import load_audio
    from t2mbench.metrics.bootstrap import paired_difference_ci
    from t2mbench.metrics.embedders.evaluator import load_evaluator
    from t2mbench.reference_models.adapters.ap_adapter import audio_prompt_inputs
    from t2mbench.reference_models.generate import generate, load_model

    clips = split_clips(corpus, "test")
    model, evaluator = load_model("tiny"), load_evaluator()
    encoder = EvaluatorPatchEncoder(evaluator.net)
    audio = [torch.from_numpy(load_audio(c.path, sample_rate=model.sample_rate, channels="mono")[0])[None]
             for c in clips]
    refs = torch.cat([evaluator.clip_embedding(a, model.sample_rate) for a in audio])
    own, other = [], []
    for i, clip in enumerate(clips):
        sims = []
        for j in (i, (i + 1) % len(clips)):
            inputs = audio_prompt_inputs(model, audio[j], model.sample_rate, encoder, scale, pool, weights=weights)
            out = generate(model, [clip.caption or ""], steps=steps, seconds=seconds, seed=seed + i, control=inputs)
            sims.append(float(evaluator.clip_embedding(out.audio, model.sample_rate)[0] @ refs[i]))
        own.append(sims[0])
        other.append(sims[1])
    diff, low, high = paired_difference_ci(own, other)
    return {"clips": len(clips), "own": sum(own) / len(own), "other": sum(other) / len(other), "difference": diff,
            "ci": [low, high]}
