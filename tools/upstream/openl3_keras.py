"""Upstream OpenL3 runner: openl3 0.4.2 (Keras, kapre 0.3.7) as stable-audio-metrics' FD_openl3 calls it.

A standalone script for another python (TensorFlow 2.13, kapre 0.3.7, resampy, soxr; t2mbench never
imports it)::

    python tools/upstream/openl3_keras.py --weights openl3_audio_mel256_music.h5 --in in.npz --out out.npz \\
        [--hop 0.5] [--eval-rate 44100] [--input-repr mel256] [--embedding-size 512] [--batch-size 4] \\
        [--openl3-src DIR]

``in.npz``: ``audio`` [N, C, T] float (already peak-normalised), ``sample_rate``.
``out.npz``: ``embeddings`` [N, F, 2·D] float32 (per frame ``[L ‖ R]``; a mono clip is duplicated,
channels beyond the second are ignored), ``timestamps`` [F], ``seconds`` (wall time of the
embedding calls, model loading excluded) and ``versions`` (JSON).

Per clip, as ``stable-audio-metrics/src/openl3_fd.py`` ``extract_embeddings`` after loading and
normalising: ``soxr.resample`` (HQ) to ``--eval-rate`` (``0`` feeds the clip at its own rate, for
parity checks of openl3 itself), float32; then ``openl3.get_audio_embedding`` of each channel
(resampy ``kaiser_best`` to 48 kHz inside, ``center=True``, ``hop_size``). The model is
``openl3.models.load_audio_embedding_model_from_path(weights, input_repr, embedding_size, frontend="kapre")``,
so ``--weights`` is any Keras ``save_weights`` file in openl3's layout (the published one, or seeded weights).
openl3 0.4.2 cannot be pip-installed offline (its setup.py downloads the weights): ``--openl3-src`` names an
unpacked sdist to put on ``sys.path``.
"""

from __future__ import annotations

import sys

import numpy as np
from openl3_common import main, sam_channels, stack_lr


def load_model(weights: str, input_repr: str = "mel256", embedding_size: int = 512, openl3_src: str | None = None):
    """openl3's Keras model (kapre front end, final pooling) with ``weights`` loaded."""
    if openl3_src:
        sys.path.insert(0, openl3_src)
    import openl3

    return openl3.models.load_audio_embedding_model_from_path(weights, input_repr, embedding_size, frontend="kapre")


def sam_embeddings(model, audio: np.ndarray, sr: int, *, eval_rate: int = 44100, hop: float = 0.5, batch_size: int = 4):
    """stable-audio-metrics' frames of clips ``audio [N, C, T]``: ``([N, F, 2·D] float32, timestamps [F])``."""
    import openl3

    left, right, rate = sam_channels(audio, sr, eval_rate)
    kw = dict(model=model, verbose=False, hop_size=hop, batch_size=batch_size, center=True)
    emb_l, ts = openl3.get_audio_embedding(left, [rate] * len(left), **kw)
    emb_r = emb_l if audio.shape[1] == 1 else openl3.get_audio_embedding(right, [rate] * len(right), **kw)[0]
    return stack_lr(emb_l, emb_r), np.asarray(ts[0])


def versions() -> dict[str, str]:
    import openl3
    import soxr

    found = {"openl3": openl3.__version__, "tensorflow": sys.modules["tensorflow"].__version__}
    return {**found, "kapre": sys.modules["kapre"].__version__, "numpy": np.__version__, "soxr": soxr.__version__}


if __name__ == "__main__":
    main(
        __doc__.splitlines()[0],
        lambda a: load_model(a.weights, a.input_repr, a.embedding_size, a.openl3_src),
        sam_embeddings,
        versions,
        lambda p: p.add_argument("--openl3-src", help="directory holding the openl3 package (an unpacked sdist)"),
    )
