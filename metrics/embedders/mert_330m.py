"""MERT-v1-330M (``m-a-p/MERT-v1-330M``) as the ``mad-metric`` package (0.0.6) embeds clips for MAD.

The network is :class:`t2mbench.metrics.embedders.mert.Mert` with the 330M's architecture
(:data:`MERT_V1_330M`: pre-LN encoder, see that module's docstring). Its hub ``config.json`` gives
hidden 1024, 24 layers, FFN 4096, ``do_stable_layer_norm`` true, ``feat_extract_norm`` "group",
``feat_proj_layer_norm`` true, ``conv_bias`` false, the 95M's conv kernels and strides, eps 1e-5,
``deepnorm`` false and ``attention_relax`` 32.0 (inert on this encoder).

UNCERTAIN, decided: the part of ``config.json`` that could be read here stops before
``num_attention_heads``, ``num_conv_pos_embeddings`` and ``num_conv_pos_embedding_groups``. Decided:
16 heads (the model card's "24-1024" with MERT's head width 64, as 768/12 for the 95M; HuBERT-large's
16), positional kernel 128 in 16 groups (``MERTConfig``'s defaults, which the 95M also keeps).
The kernel and groups are checked by the checkpoint's shapes (``weight_v`` [1024, 64, 128]); the
heads cannot be, so a wrong head count would show only as a parity failure on the real weights.
The preprocessor (``Wav2Vec2FeatureExtractor``) is taken as the 95M's: ``do_normalize`` true,
24 kHz (see :mod:`~t2mbench.metrics.embedders.mert`).

mad-metric's ``featurize`` per clip (``compute_mad.py``, ``embedding_models.MERT330M``):

1. ``librosa.load(path, sr=24000)``: mono by channel mean, librosa's default resampler (soxr HQ);
   here the scoring engine's decode, channel mean and soxr HQ (``mad``'s protocol settings);
2. ``Wav2Vec2FeatureExtractor(audios, sampling_rate=24000, padding=True)``: per-clip
   ``(x - mean) / sqrt(var + 1e-7)``;
3. ``model(**inputs, output_hidden_states=True).hidden_states[24]`` (``--layer 24``), float32,
   the whole clip in one pass (no truncation, no windowing);
4. ``.max(dim=1)`` over time (``--aggregation max``): done by the ``mad`` metric
   (:class:`~t2mbench.metrics.mauve.MadMetric`, ``aggregation="max"``), so ``embed`` returns the
   frames ``[B, T, 1024]``.

Batching: mad-metric embeds files three at a time, zero-padding each batch to its longest clip
(with an attention mask); the padded frames enter the first conv layer's GroupNorm statistics and
the max over time. For clips of equal length, the usual benchmark case, that equals embedding each
clip alone, which is what t2mbench does; for clips of unequal length mad-metric's vectors depend on
which files share a batch (``os.listdir`` order), and t2mbench's are those of each clip alone.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import torch

from t2mbench.core.weights import WeightFile, register_all
from t2mbench.metrics.embedders.mert import MertConfig, MertEmbedder, load_network

LAYER = 24  # mad-metric's --layer default
PROTOCOL_VERSION = "mad-metric-0.0.6-mert-330m-1"

MERT_V1_330M = MertConfig(hidden=1024, layers=24, heads=16, ffn=4096, stable_layer_norm=True)

WEIGHTS = register_all(
    WeightFile(
        name="mert-v1-330m",
        filename="MERT-v1-330M/pytorch_model.bin",
        url="https://huggingface.co/m-a-p/MERT-v1-330M/resolve/main/pytorch_model.bin",
        sha256=None,
        description="MERT-v1-330M self-supervised music model (mad), m-a-p",
        note=(
            "the sha256 of this Git LFS file on huggingface.co could not be retrieved when this entry was "
            "written (no network); the loader checks every key and shape instead: add the published LFS sha256 here"
        ),
        # as for MERT-v1-95M: the current model card's licence (its earliest revisions said MIT)
        licence="CC-BY-NC-4.0 (m-a-p/MERT-v1-330M): non-commercial use only",
    )
)
CHECKPOINT = WEIGHTS[0]


def load_mert_330m(
    checkpoint: str | os.PathLike | Mapping[str, torch.Tensor] | None = None,
    *,
    device: str | torch.device = "cpu",
    verify: bool = True,
    layer: int | None = LAYER,
    config: MertConfig | None = None,
) -> MertEmbedder:
    """MERT-v1-330M frames as mad-metric computes them, before its max over time.

    ``embed(audio [B, C, T], sample_rate) -> [B, T', 1024]`` float32 (CPU), 75 frames per second at
    24 kHz: channel mean, soxr HQ to 24 kHz, per-clip normalisation, hidden state ``layer``; no
    float16 rounding and no length limit (mad-metric has neither).

    Args:
        checkpoint: ``None`` for the registered file (``$T2MBENCH_HOME/weights/MERT-v1-330M/pytorch_model.bin``),
            a path to a state dict in the upstream layout, or a state dict built in memory.
        device: where the network runs.
        verify: check the file's sha256 when one is published (none is recorded yet: keys and shapes
            are always checked).
        layer: hidden state read (mad-metric: 24, the last; ``None``: the last). A checkpoint with
            fewer layers (reduced seeded weights in tests) reads its last one for the default 24.
        config: network sizes; ``None`` reads them from the checkpoint's shapes with MERT-v1-330M's
            pre-LN architecture (the published file gives :data:`MERT_V1_330M`).

    Raises:
        MissingWeightsError: the file is absent (the message says where to get it and put it).
        WeightsError: unreadable file, or keys/shapes that are not MERT's.
        ConfigError: ``layer`` out of range.
    """
    net, sha = load_network(checkpoint, CHECKPOINT, config, MERT_V1_330M, verify=verify)
    if layer == LAYER and net.cfg.layers < LAYER:  # a reduced checkpoint (tests): its last layer
        layer = None
    return MertEmbedder(net.to(device), sha, layer=layer, normalize=True, float16=False, model="MERT-v1-330M",
                        limit_samples=None, name="mert_330m", protocol_version=PROTOCOL_VERSION)


__all__ = ["CHECKPOINT", "LAYER", "MERT_V1_330M", "WEIGHTS", "load_mert_330m"]
