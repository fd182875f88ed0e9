"""Training task for the corpus evaluator (:mod:`t2mbench.metrics.embedders.evaluator`) and its export.

Data: the clips of one split (``train``) of a corpus folder (``t2mbench corpus build``). Each
clip is loaded once, made mono at 32 kHz and peak-normalised to -1 dBFS as the evaluator
metrics feed it (:func:`~t2mbench.metrics.embedders.evaluator.protocol_input`) and turned into its whole
features ``[76, frames]`` (log-mel and log-chroma) by the evaluator's own front end;
each caption into ``caption_variants`` frozen MiniLM sentence embeddings: the caption itself and
variants with its comma-separated parts shuffled and each dropped with probability
``caption_drop`` (at least one kept), drawn once from ``init_seed``. The corpus captions are
fields in random order (Stable Audio Open's style), so a shuffled caption is another caption of
the same clip; dropping parts stops the text tower leaning on one field (a title names a
piece, and test pieces are never in training). Both are exact precomputations (nothing trained
sits before them), so a step costs only the CNN.

Step ``k`` (every draw from the loop's step generator):

- ``batch_clips`` distinct clips (a random permutation's head), ``crops_per_clip`` random
  2-s crops of each at any frame offset, and one of each clip's caption variants;
- contrastive loss: CLIP's symmetric InfoNCE between the clip embeddings (mean of the crops'
  window embeddings, projected, unit norm) and the caption embeddings, logits scaled by the
  learnable ``exp(s)`` (initialised to 1/0.07, capped at 100);
- attribute losses, per crop against the clip's labels: cross-entropy for single-label heads
  (clips whose value is missing are ignored), mean binary cross-entropy for multi-label heads;
  ``loss = contrastive + attribute_weight * mean(head losses)``.

Command (trains, resumable, then ships the EMA weights with their sha256)::

    t2mbench train evaluator --corpus CORPUS --out runs/evaluator --ship metrics/embedders/checkpoints
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from t2mbench.bench.corpus.splits import split_clips
from t2mbench.bench.train.ship import ship
from t2mbench.core.audio import load_audio
from t2mbench.core.errors import ConfigError, ManifestError
from t2mbench.core.manifest import ClipRecord
from t2mbench.core.progress import progress_bar
from t2mbench.metrics.embedders.evaluator import (
    CHECKPOINT_FILE,
    N_FEATURES,
    WINDOW_FRAMES,
    AttributeHead,
    EvaluatorConfig,
    EvaluatorNet,
    FrontEnd,
    attribute_values,
    build_net,
    protocol_input,
)
from t2mbench.reference_models.text_encoders import MiniLMEncoder

DEFAULT_CONFIG = Path(__file__).resolve().parent / "configs" / "evaluator.json"
IGNORE = -100


@dataclass(frozen=True)
class TaskSettings:
    """The ``task`` block of the training config."""

    heads: tuple[tuple[str, str], ...]  # (manifest attribute, "single" | "multi")
    split: str = "train"
    batch_clips: int = 64
    crops_per_clip: int = 2
    attribute_weight: float = 1.0
    caption_variants: int = 8
    caption_drop: float = 0.15
    init_seed: int = 0

    @classmethod
    def from_block(cls, task: dict[str, Any]) -> TaskSettings:
        """Settings from a training config's ``task`` block (``heads`` as ``{name, kind}`` objects)."""
        try:
            heads = tuple((h["name"], h["kind"]) for h in task["heads"])
            return cls(**{**task, "heads": heads})
        except (TypeError, KeyError) as e:
            raise ConfigError(f"bad evaluator task settings ({e})") from None

    def __post_init__(self) -> None:
        if self.batch_clips < 2:
            raise ConfigError(f"batch_clips must be >= 2 (contrastive negatives), got {self.batch_clips}")
        if self.crops_per_clip < 1:
            raise ConfigError(f"crops_per_clip must be >= 1, got {self.crops_per_clip}")
        if self.caption_variants < 1 or not 0.0 <= self.caption_drop < 1.0:
            got = f"{self.caption_variants}, {self.caption_drop}"
            raise ConfigError(f"need caption_variants >= 1 and 0 <= caption_drop < 1, got {got}")


class EvaluatorTask:
    """The :class:`t2mbench.bench.train.loop.TrainTask` of the evaluator over a corpus folder's split."""

    name = "evaluator"

    def __init__(
        self, corpus: str | Path, settings: TaskSettings, model: dict[str, Any] | None = None, *, progress: bool = True
    ) -> None:
        clips = split_clips(corpus, settings.split, need_captions=True)
        if len(clips) < 2:
            raise ManifestError(f"{corpus}: split {settings.split!r} has 1 clip; training needs at least 2")
        self.settings = settings
        self.clips = clips
        self.config = EvaluatorConfig(heads=vocabularies(clips, settings.heads), **_model_sizes(model or {}))
        self.features, self.frames = clip_features(clips, progress=progress)
        self.text = caption_embeddings([c.caption for c in clips], settings)  # [N, variants, 384]
        self.targets = {h.name: encode(h, clips) for h in self.config.heads}

    def ship(self, net: EvaluatorNet, ship_dir: str | Path, info: dict[str, Any]) -> Path:
        return ship_evaluator(net, ship_dir, info)

    def build(self) -> EvaluatorNet:
        return build_net(self.config, self.settings.init_seed)

    def batch(self, step: int, generator: torch.Generator) -> dict[str, Any]:
        """``features [B, crops, 76, 128]``, ``text [B, 384]``, ``targets {head: [B] or [B, n]}``."""
        n_clips = min(self.settings.batch_clips, len(self.clips))
        idx = torch.randperm(len(self.clips), generator=generator)[:n_clips]
        room = (self.frames[idx] - WINDOW_FRAMES + 1).to(torch.float64)
        offsets = (torch.rand(n_clips, self.settings.crops_per_clip, generator=generator, dtype=torch.float64)
                   * room[:, None]).long()  # fmt: skip
        pairs = [(i, o) for i, row in zip(idx.tolist(), offsets.tolist()) for o in row]
        crops = [self.features[i, :, o : o + WINDOW_FRAMES] for i, o in pairs]
        features = torch.stack(crops).view(n_clips, self.settings.crops_per_clip, N_FEATURES, WINDOW_FRAMES)
        variant = torch.randint(self.text.shape[1], (n_clips,), generator=generator)
        targets = {k: v[idx] for k, v in self.targets.items()}
        return {"features": features, "text": self.text[idx, variant], "targets": targets}

    def losses(self, model: EvaluatorNet, batch: dict[str, Any], generator: torch.Generator) -> dict[str, torch.Tensor]:
        features = batch["features"]
        b, crops = features.shape[:2]
        emb = model.audio(features.flatten(0, 1))  # [B * crops, D]
        audio = model.joint_audio(emb.view(b, crops, -1))
        text = model.joint_text(batch["text"])
        logits = model.scale() * audio @ text.T
        target = torch.arange(b)
        contrastive = 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))
        terms = {"contrastive": contrastive}
        per_head = self.config.split(model.head(emb))
        for head in self.config.heads:
            y = batch["targets"][head.name].repeat_interleave(crops, dim=0)
            if head.kind == "single":
                terms[head.name] = F.cross_entropy(per_head[head.name], y, ignore_index=IGNORE)
            else:
                terms[head.name] = F.binary_cross_entropy_with_logits(per_head[head.name], y)
        attribute = torch.stack([terms[h.name] for h in self.config.heads]).mean()
        terms["loss"] = contrastive + self.settings.attribute_weight * attribute
        terms["temperature"] = 1.0 / model.scale().detach()
        return terms


def caption_variants(caption: str, n: int, drop: float, generator: torch.Generator) -> list[str]:
    """``caption`` and ``n - 1`` variants: its ``", "``-separated parts in a random order, each
    dropped with probability ``drop`` (the first part of the order is kept if all would go)."""
    parts = caption.split(", ")
    out = [caption]
    for _ in range(n - 1):
        order = torch.randperm(len(parts), generator=generator).tolist()
        keep = (torch.rand(len(parts), generator=generator) >= drop).tolist()
        out.append(", ".join([parts[i] for i in order if keep[i]] or [parts[order[0]]]))
    return out


def caption_embeddings(captions: Sequence[str], settings: TaskSettings, chunk: int = 256) -> torch.Tensor:
    """MiniLM sentence embeddings of every caption's variants ``[N, caption_variants, 384]``
    (variants drawn from ``settings.init_seed``)."""
    gen = torch.Generator().manual_seed(settings.init_seed)
    texts = [v for c in captions for v in caption_variants(c, settings.caption_variants, settings.caption_drop, gen)]
    encoder = MiniLMEncoder()
    flat = torch.cat([encoder.sentence_embeddings(texts[i : i + chunk]) for i in range(0, len(texts), chunk)])
    return flat.view(len(captions), settings.caption_variants, -1)


def _model_sizes(model: dict[str, Any]) -> dict[str, Any]:
    known = {"channels", "double_stages", "embed_dim", "joint_dim", "text_hidden", "groups"}
    unknown = sorted(set(model) - known)
    if unknown:
        raise ConfigError(f"unknown model settings {unknown}; known: {sorted(known)}")
    return {k: tuple(v) if isinstance(v, list) else v for k, v in model.items()}


def vocabularies(clips: Sequence[ClipRecord], heads: Sequence[tuple[str, str]]) -> tuple[AttributeHead, ...]:
    """One :class:`AttributeHead` per ``(attribute, kind)``, classes = the sorted values seen in ``clips``."""
    out = []
    for name, kind in heads:
        classes = sorted({v for c in clips for v in attribute_values(c.attributes, name)})
        if not classes:
            raise ManifestError(f"no clip has attribute {name!r}; remove its head from the config")
        out.append(AttributeHead(name, kind, tuple(classes)))
    return tuple(out)


def encode(head: AttributeHead, clips: Sequence[ClipRecord]) -> torch.Tensor:
    """Training targets: class index per clip (``-100`` when missing) for a single-label head,
    multi-hot ``[N, n_classes]`` float32 for a multi-label head."""
    labels = [head.labels(c.attributes) for c in clips]
    if head.kind == "single":
        return torch.tensor([ls[0] if ls else IGNORE for ls in labels], dtype=torch.long)
    hot = torch.zeros(len(clips), len(head.classes))
    for i, ls in enumerate(labels):
        hot[i, ls] = 1.0
    return hot


def clip_features(clips: Sequence[ClipRecord], *, progress: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Clips as the metrics feed them (:func:`protocol_input`) through the evaluator front end:
    features ``[N, 76, max_frames]`` (zero after each clip's end) and frame counts ``[N]``."""
    front = FrontEnd()
    mels = []
    for clip in progress_bar(clips, desc="evaluator features", unit="clip", disable=not progress):
        audio, sr = load_audio(clip.path)
        with torch.inference_mode():
            mels.append(front(protocol_input(audio, sr, source=str(clip.path))[0])[0])
    frames = torch.tensor([m.shape[-1] for m in mels])
    out = torch.zeros(len(mels), N_FEATURES, int(frames.max()))
    for i, m in enumerate(mels):
        out[i, :, : m.shape[-1]] = m
    return out, frames


def ship_evaluator(net: EvaluatorNet, ship_dir: str | Path, info: dict[str, Any]) -> Path:
    """Ship ``evaluator.safetensors`` (float32, the config in its metadata) and its manifest."""
    return ship(net.state_dict(), ship_dir, CHECKPOINT_FILE, info=info, metadata={"config": net.config.to_json()})
