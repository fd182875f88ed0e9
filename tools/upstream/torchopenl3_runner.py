"""Upstream OpenL3 runner: torchopenl3 1.0.1 (front end A, kapre 0.1.4 style), stacked as
stable-audio-metrics stacks OpenL3 frames.

A standalone script for another python (torch, torchopenl3, resampy, soxr; t2mbench never imports it)::

    python tools/upstream/torchopenl3_runner.py --weights torchopenl3_mel256_music_512.pth.tar \\
        --in in.npz --out out.npz [--hop 0.5] [--eval-rate 44100] [--input-repr mel256] \\
        [--embedding-size 512] [--batch-size 4]

``in.npz``: ``audio`` [N, C, T] float (already peak-normalised), ``sample_rate``.
``out.npz``: ``embeddings`` [N, F, 2·D] float32 (per frame ``[L ‖ R]``; a mono clip is duplicated,
channels beyond the second are ignored), ``timestamps`` [F], ``seconds`` (wall time of the
embedding calls, model loading excluded) and ``versions`` (JSON).

Per clip: ``soxr.resample`` (HQ) to ``--eval-rate`` (``0`` keeps the clip's rate), float32; then
``torchopenl3.get_audio_embedding`` of each channel (float64, resampy ``kaiser_best`` to 48 kHz,
``center=True``, ``hop_size``). The network is ``torchopenl3.models.PytorchOpenl3`` with the given
state dict loaded strictly (torchopenl3's own loader downloads; this one does not).
"""

from __future__ import annotations

import numpy as np
from openl3_common import main, sam_channels, stack_lr


def load_model(weights: str, input_repr: str = "mel256", embedding_size: int = 512):
    """``torchopenl3.models.PytorchOpenl3`` with the state dict ``weights`` loaded strictly, in eval mode."""
    import torch
    from torchopenl3.models import PytorchOpenl3

    model = PytorchOpenl3(content_type="music", input_repr=input_repr, embedding_size=embedding_size)
    model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True), strict=True)
    return model.eval()


def sam_embeddings(model, audio: np.ndarray, sr: int, *, eval_rate: int = 44100, hop: float = 0.5, batch_size: int = 4):
    """stable-audio-metrics-style frames of clips ``audio [N, C, T]``: ``([N, F, 2·D] float32, timestamps [F])``."""
    import torchopenl3

    left, right, rate = sam_channels(audio, sr, eval_rate)
    kw = dict(model=model, verbose=False, hop_size=hop, batch_size=batch_size, center=True, sampler="resampy")
    kw.update(input_repr=model.input_repr, embedding_size=model.embedding_size)
    emb_l, ts = torchopenl3.get_audio_embedding(left, [rate] * len(left), **kw)
    emb_r = emb_l if audio.shape[1] == 1 else torchopenl3.get_audio_embedding(right, [rate] * len(right), **kw)[0]
    return stack_lr([e.numpy() for e in emb_l], [e.numpy() for e in emb_r]), np.asarray(ts[0])


def versions() -> dict[str, str]:
    import soxr
    import torch
    import torchopenl3

    found = {"torchopenl3": torchopenl3.__version__, "torch": torch.__version__}
    return {**found, "numpy": np.__version__, "soxr": soxr.__version__}


if __name__ == "__main__":
    main(
        __doc__.splitlines()[0],
        lambda a: load_model(a.weights, a.input_repr, a.embedding_size),
        sam_embeddings,
        versions,
    )
