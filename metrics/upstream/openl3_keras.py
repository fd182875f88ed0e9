"""Upstream OpenL3 runner: openl3 0.4.2 (Keras, kapre 0.3.7) as stable-audio-metrics' FD_openl3 calls it.

A standalone script for another python (TensorFlow 2.13, kapre 0.3.7, resampy, soxr; t2mbench never
imports it)::

    python metrics/upstream/openl3_keras.py --weights openl3_audio_mel256_music.h5 --in in.npz --out out.npz \\
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

import argparse
import json
import sys
import time

import numpy as np


def load_model(weights: str, input_repr: str = "mel256", embedding_size: int = 512, openl3_src: str | None = None):
    """openl3's Keras model (kapre front end, final pooling) with ``weights`` loaded."""
    if openl3_src:
        sys.path.insert(0, openl3_src)
    import openl3

    return openl3.models.load_audio_embedding_model_from_path(weights, input_repr, embedding_size, frontend="kapre")


def sam_embeddings(model, audio: np.ndarray, sr: int, *, eval_rate: int = 44100, hop: float = 0.5, batch_size: int = 4):
    """stable-audio-metrics' frames of clips ``audio [N, C, T]``: ``([N, F, 2·D] float32, timestamps [F])``."""
    import openl3
    import soxr

    rate = eval_rate or sr
    clips = [soxr.resample(x.T, sr, rate) if rate != sr else x.T for x in audio.astype(np.float32)]  # [T, C]
    left = [c[:, 0] for c in clips]
    right = [c[:, 1] if c.shape[1] > 1 else c[:, 0] for c in clips]
    kw = dict(model=model, verbose=False, hop_size=hop, batch_size=batch_size, center=True)
    emb_l, ts = openl3.get_audio_embedding(left, [rate] * len(left), **kw)
    emb_r = emb_l if audio.shape[1] == 1 else openl3.get_audio_embedding(right, [rate] * len(right), **kw)[0]
    return np.stack([np.concatenate([a, b], axis=1) for a, b in zip(emb_l, emb_r)]).astype(np.float32), ts[0]


def versions() -> dict[str, str]:
    import openl3
    import soxr

    found = {"openl3": openl3.__version__, "tensorflow": sys.modules["tensorflow"].__version__}
    return {**found, "kapre": sys.modules["kapre"].__version__, "numpy": np.__version__, "soxr": soxr.__version__}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", required=True, help="Keras .h5 weights in openl3's layout")
    parser.add_argument("--in", dest="inp", required=True, help="npz with audio [N, C, T] and sample_rate")
    parser.add_argument("--out", required=True, help="npz to write embeddings [N, F, 2*D] to")
    parser.add_argument("--hop", type=float, default=0.5, help="hop size in seconds")
    parser.add_argument("--eval-rate", type=int, default=44100, help="soxr rate before openl3 (0: none)")
    parser.add_argument("--input-repr", default="mel256", choices=("mel128", "mel256"))
    parser.add_argument("--embedding-size", type=int, default=512, choices=(512, 6144))
    parser.add_argument("--batch-size", type=int, default=4, help="Keras predict batch size (frames)")
    parser.add_argument("--openl3-src", help="directory holding the openl3 package (an unpacked sdist)")
    args = parser.parse_args()
    data = np.load(args.inp)
    model = load_model(args.weights, args.input_repr, args.embedding_size, args.openl3_src)
    start = time.perf_counter()
    embeddings, timestamps = sam_embeddings(
        model,
        data["audio"],
        int(data["sample_rate"]),
        eval_rate=args.eval_rate,
        hop=args.hop,
        batch_size=args.batch_size,
    )
    seconds = time.perf_counter() - start
    np.savez(args.out, embeddings=embeddings, timestamps=timestamps, seconds=seconds, versions=json.dumps(versions()))


if __name__ == "__main__":
    main()
