"""How well the evaluator knows the corpus: caption→audio retrieval and attribute accuracy on a
split (the ``test`` split holds pieces never seen in training), each next to its chance level.

- **Retrieval.** Every caption ranks every clip of the split by the cosine of
  ``embed_text(caption)`` and ``clip_embedding(audio)``; recall@k is the fraction of captions
  whose own clip is among the first ``k`` (ties count in the caption's favour: the rank is the
  number of clips scoring strictly higher). Chance: ``k / N``.
- **Attributes.** Clip-level logits (the KL protocol's mean over windows) per head.
  Single-label heads: accuracy of the arg-max over the clips that have the attribute, next to
  the uniform chance ``1 / n_classes`` and the majority baseline (the most frequent true class
  of the evaluated clips). A value never seen in training counts as an error (``unseen``).
  Multi-label heads: exact-set accuracy (sigmoid > 0.5) next to the most frequent set's share,
  and the macro average precision over the classes present in the split next to its chance,
  their mean prevalence.
- **CLAP-style score.** The mean cosine of matched clip–caption pairs and of mismatched ones.

Audio is fed as the evaluator metrics feed it: mono at 32 kHz, peak-normalised to -1 dBFS.

Command: ``t2mbench evidence retrieval --corpus CORPUS --split test --out retrieval.json``
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from t2mbench.bench.corpus.splits import split_clips
from t2mbench.core.audio import load_audio
from t2mbench.core.manifest import ClipRecord
from t2mbench.core.progress import progress_bar
from t2mbench.metrics.embedders.evaluator import (
    SAMPLE_RATE,
    AttributeHead,
    EvaluatorEmbedder,
    attribute_values,
    load_evaluator,
    protocol_input,
)

KS = (1, 10)


@dataclass
class SplitOutputs:
    """Evaluator outputs for ``N`` clips: ``clip`` and ``text`` ``[N, D]`` unit-norm,
    ``logits`` ``[N, K]`` (mean over windows)."""

    clip: torch.Tensor
    text: torch.Tensor
    logits: torch.Tensor


def embed_clips(embedder: EvaluatorEmbedder, clips: Sequence[ClipRecord], *, progress: bool = True) -> SplitOutputs:
    """Peak-normalised audio and captions of ``clips`` through the evaluator."""
    clip, logits = [], []
    for record in progress_bar(clips, desc="evaluator", unit="clip", disable=not progress):
        audio, sr = load_audio(record.path)
        out = embedder.analyse(protocol_input(audio, sr, source=str(record.path)), SAMPLE_RATE)
        clip.append(out.clip)
        logits.append(out.attribute_logits)
    text = embedder.embed_text([c.caption for c in clips])
    return SplitOutputs(clip=torch.cat(clip), text=text, logits=torch.cat(logits))


def recall_at_k(similarity: torch.Tensor, ks: Sequence[int] = KS) -> dict[int, float]:
    """Recall@k of ``similarity [N captions, N clips]`` whose diagonal holds the true pairs."""
    n = similarity.shape[0]
    if similarity.ndim != 2 or similarity.shape[1] != n:
        raise ValueError(f"similarity must be square [N, N], got {tuple(similarity.shape)}")
    rank = (similarity > similarity.diagonal()[:, None]).sum(dim=1)
    return {k: float((rank < k).double().mean()) for k in ks}


def average_precision(scores: np.ndarray, truth: np.ndarray) -> float:
    """Average precision of one label: mean precision at each positive's rank (ties broken by
    order, scores sorted descending with a stable sort)."""
    order = np.argsort(-scores, kind="stable")
    hits = truth[order].astype(np.float64)
    if hits.sum() == 0:
        raise ValueError("average precision needs at least one positive")
    precision = np.cumsum(hits) / np.arange(1, len(hits) + 1)
    return float((precision * hits).sum() / hits.sum())


def single_label_scores(head: AttributeHead, logits: torch.Tensor, clips: Sequence[ClipRecord]) -> dict[str, Any]:
    """Arg-max accuracy of a single-label head with its chance levels (module docstring)."""
    index = {c: i for i, c in enumerate(head.classes)}
    values = [attribute_values(c.attributes, head.name) for c in clips]
    rows = [i for i, v in enumerate(values) if v]
    truth = [values[i][0] for i in rows]
    if not rows:
        return {"clips": 0}
    pred = logits[rows].argmax(dim=-1).tolist()
    correct = sum(index.get(t) == p for t, p in zip(truth, pred))
    return {
        "clips": len(rows),
        "accuracy": correct / len(rows),
        "chance_uniform": 1.0 / len(head.classes),
        "majority": Counter(truth).most_common(1)[0][1] / len(rows),
        "unseen": sum(t not in index for t in truth),
    }


def multi_label_scores(head: AttributeHead, logits: torch.Tensor, clips: Sequence[ClipRecord]) -> dict[str, Any]:
    """Exact-set accuracy and macro average precision of a multi-label head with chance levels."""
    values = [attribute_values(c.attributes, head.name) for c in clips]
    rows = [i for i, v in enumerate(values) if v]
    if not rows:
        return {"clips": 0}
    sets = [frozenset(values[i]) for i in rows]
    hot = np.zeros((len(rows), len(head.classes)), dtype=bool)
    for r, i in enumerate(rows):
        hot[r, head.labels(clips[i].attributes)] = True
    scores = logits[rows].double().numpy()
    pred = [frozenset(head.classes[j] for j in np.flatnonzero(s > 0.0)) for s in scores]
    present = [j for j in range(len(head.classes)) if hot[:, j].any()]  # AP needs a positive
    return {
        "clips": len(rows),
        "exact_set_accuracy": sum(p == t for p, t in zip(pred, sets)) / len(rows),
        "majority_set": Counter(sets).most_common(1)[0][1] / len(rows),
        "mean_average_precision": _mean([average_precision(scores[:, j], hot[:, j]) for j in present]),
        "chance_average_precision": _mean([float(hot[:, j].mean()) for j in present]),
        "unseen": sum(bool(t - set(head.classes)) for t in sets),
    }


def _mean(values: list[float]) -> float | None:
    return float(np.mean(values)) if values else None


def score(embedder: EvaluatorEmbedder, outputs: SplitOutputs, clips: Sequence[ClipRecord]) -> dict[str, Any]:
    """Retrieval, attribute and CLAP-style numbers of ``outputs`` (see the module docstring)."""
    n = len(clips)
    similarity = outputs.text @ outputs.clip.T  # [captions, clips]
    recall = recall_at_k(similarity, KS)
    matched = similarity.diagonal()
    off = (similarity.sum() - matched.sum()) / max(1, n * n - n)
    per_head = embedder.config.split(outputs.logits)
    attributes = {
        h.name: (single_label_scores if h.kind == "single" else multi_label_scores)(h, per_head[h.name], clips)
        for h in embedder.config.heads
    }
    return {
        "clips": n,
        "retrieval": {**{f"recall@{k}": recall[k] for k in KS}, **{f"chance@{k}": min(1.0, k / n) for k in KS}},
        "attributes": attributes,
        "clap_evaluator": {"matched": float(matched.mean()), "mismatched": float(off)},
    }


def evaluate(
    corpus: str | Path,
    split: str = "test",
    *,
    embedder: EvaluatorEmbedder | None = None,
    checkpoint: str | Path | None = None,
    progress: bool = True,
    verify: bool = True,
) -> dict[str, Any]:
    """Retrieval and attribute scores of ``embedder`` (default: the evaluator loaded from
    ``checkpoint``, itself defaulting to the shipped one) on ``split`` of ``corpus``."""
    if embedder is None:
        embedder = load_evaluator(checkpoint, verify=verify)  # a file of one's own loads with verify=False
    clips = split_clips(corpus, split, need_captions=True)
    result = score(embedder, embed_clips(embedder, clips, progress=progress), clips)
    return {"split": split, "weights_sha256": embedder.weights_sha256, **result}
