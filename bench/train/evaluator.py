"""Training task for the corpus evaluator (:mod:`metrics.embedders.evaluator`) and its export.

Data: the clips of one split (``train``) of a corpus folder (``t2mbench corpus build``). Each
clip is loaded once, made mono at 32 kHz and peak-normalised to -1 dBFS as the evaluator
metrics feed it (:func:`~metrics.embedders.evaluator.protocol_input`) and turned into its whole
log-mel ``[64, frames]`` by the evaluator's own front end;
each caption into its frozen MiniLM sentence embedding. Both are exact precomputations (nothing
trained sits before them), so a step costs only the CNN.

Step ``k`` (every draw from the loop's step generator):

- ``batch_clips`` distinct clips (a random permutation's head), ``crops_per_clip`` random
  2-s crops of each at any frame offset;
- contrastive loss: CLIP's symmetric InfoNCE between the clip embeddings (mean of the crops'
  window embeddings, projected, unit norm) and the caption embeddings, logits scaled by the
  learnable ``exp(s)`` (initialised to 1/0.07, capped at 100);
- attribute losses, per crop against the clip's labels: cross-entropy for single-label heads
  (clips whose value is missing are ignored), mean binary cross-entropy for multi-label heads;
  ``loss = contrastive + attribute_weight * mean(head losses)``.

Command (trains, resumable, then ships the EMA weights with their sha256)::

    python -m bench.train.evaluator --corpus CORPUS --out runs/evaluator \\
        --ship metrics/embedders/checkpoints
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from bench.train.loop import TrainConfig, train
from metrics.embedders.evaluator import (
    CHECKPOINT_FILE,
    CHECKPOINT_MANIFEST,
    N_MELS,
    SAMPLE_RATE,
    WINDOW_FRAMES,
    AttributeHead,
    EvaluatorConfig,
    EvaluatorNet,
    LogMel,
    attribute_values,
    build_net,
    protocol_input,
    write_checkpoint,
)
from reference_models.text_encoders import MiniLMEncoder
from t2mbench import provenance
from t2mbench.audio import load_audio
from t2mbench.errors import ConfigError, ManifestError
from t2mbench.files import read_json, sha256_file, write_json
from t2mbench.manifest import ClipRecord, load_clipset
from t2mbench.progress import progress_bar

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
    init_seed: int = 0

    def __post_init__(self) -> None:
        if self.batch_clips < 2:
            raise ConfigError(f"batch_clips must be >= 2 (contrastive negatives), got {self.batch_clips}")
        if self.crops_per_clip < 1:
            raise ConfigError(f"crops_per_clip must be >= 1, got {self.crops_per_clip}")


def read_config(path: str | Path = DEFAULT_CONFIG) -> tuple[TaskSettings, dict[str, Any], TrainConfig]:
    """The ``task``, ``model`` and ``train`` blocks of a training config JSON."""
    raw = read_json(path)
    missing = [k for k in ("task", "model", "train") if k not in raw]
    if missing:
        raise ConfigError(f"{path}: missing blocks {missing}; a config has 'task', 'model' and 'train'")
    try:
        task = dict(raw["task"])
        task["heads"] = tuple((h["name"], h["kind"]) for h in task["heads"])
        settings = TaskSettings(**task)
        train_cfg = dict(raw["train"])
        if "betas" in train_cfg:
            train_cfg["betas"] = tuple(train_cfg["betas"])
        config = TrainConfig(**train_cfg)
    except (TypeError, KeyError) as e:
        raise ConfigError(f"{path}: bad training config ({e})") from None
    return settings, dict(raw["model"]), config


class EvaluatorTask:
    """The :class:`bench.train.loop.TrainTask` of the evaluator over a corpus folder's split."""

    name = "evaluator"

    def __init__(
        self, corpus: str | Path, settings: TaskSettings, model: dict[str, Any] | None = None, *, progress: bool = True
    ) -> None:
        clips = [c for c in load_clipset(corpus) if c.split == settings.split]
        if len(clips) < 2:
            raise ManifestError(f"{corpus}: split {settings.split!r} has {len(clips)} clips; training needs at least 2")
        no_caption = [c.id for c in clips if not c.caption]
        if no_caption:
            raise ManifestError(f"{corpus}: clips without a caption: {no_caption[:10]}")
        self.settings = settings
        self.clips = clips
        self.config = EvaluatorConfig(heads=vocabularies(clips, settings.heads), **_model_sizes(model or {}))
        self.mels, self.frames = clip_log_mels(clips, progress=progress)
        self.text = MiniLMEncoder().sentence_embeddings([c.caption for c in clips])
        self.targets = {h.name: encode(h, clips) for h in self.config.heads}

    def build(self) -> EvaluatorNet:
        return build_net(self.config, self.settings.init_seed)

    def batch(self, step: int, generator: torch.Generator) -> dict[str, Any]:
        """``mel [B, crops, 64, 128]``, ``text [B, 384]``, ``targets {head: [B] or [B, n]}``."""
        n_clips = min(self.settings.batch_clips, len(self.clips))
        idx = torch.randperm(len(self.clips), generator=generator)[:n_clips]
        room = (self.frames[idx] - WINDOW_FRAMES + 1).to(torch.float64)
        offsets = (torch.rand(n_clips, self.settings.crops_per_clip, generator=generator, dtype=torch.float64)
                   * room[:, None]).long()  # fmt: skip
        crops = [self.mels[i, :, o : o + WINDOW_FRAMES] for i, row in zip(idx.tolist(), offsets.tolist()) for o in row]
        mel = torch.stack(crops).view(n_clips, self.settings.crops_per_clip, N_MELS, WINDOW_FRAMES)
        return {"mel": mel, "text": self.text[idx], "targets": {k: v[idx] for k, v in self.targets.items()}}

    def losses(self, model: EvaluatorNet, batch: dict[str, Any], generator: torch.Generator) -> dict[str, torch.Tensor]:
        mel = batch["mel"]
        b, crops = mel.shape[:2]
        emb = model.audio(mel.flatten(0, 1))  # [B * crops, D]
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


def clip_log_mels(clips: Sequence[ClipRecord], *, progress: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Clips as the metrics feed them (:func:`protocol_input`) through the evaluator front end:
    log-mels ``[N, 64, max_frames]`` (zero after each clip's end) and frame counts ``[N]``."""
    front = LogMel()
    mels = []
    for clip in progress_bar(clips, desc="evaluator features", unit="clip", disable=not progress):
        audio, sr = load_audio(clip.path)
        with torch.inference_mode():
            mels.append(front(protocol_input(audio, sr, source=str(clip.path))[0])[0])
    frames = torch.tensor([m.shape[-1] for m in mels])
    out = torch.zeros(len(mels), N_MELS, int(frames.max()))
    for i, m in enumerate(mels):
        out[i, :, : m.shape[-1]] = m
    return out, frames


def export(net: EvaluatorNet, ship_dir: str | Path, info: dict[str, Any]) -> Path:
    """Write ``evaluator.safetensors`` (float32, config in the metadata) and ``manifest.json``
    (sha256, size, parameter count and ``info``) into ``ship_dir``; returns the checkpoint path."""
    ship = Path(ship_dir)
    path = write_checkpoint(ship / CHECKPOINT_FILE, net.config, net.state_dict())
    params = sum(p.numel() for p in net.parameters())
    manifest = {"file": CHECKPOINT_FILE, "sha256": sha256_file(path), "size": path.stat().st_size,
                "parameters": params, **info}  # fmt: skip
    write_json(ship / CHECKPOINT_MANIFEST, manifest)
    return path


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m bench.train.evaluator``: train (resuming from ``--out``) and optionally ship."""
    parser = argparse.ArgumentParser(prog="python -m bench.train.evaluator", description=__doc__.split("\n")[0])
    parser.add_argument("--corpus", required=True, help="corpus folder (manifest.jsonl with train/test splits)")
    parser.add_argument("--out", required=True, help="run folder (checkpoints, log.csv, loss.png); resumes if present")
    parser.add_argument("--config", default=str(DEFAULT_CONFIG), help="training config JSON")
    parser.add_argument("--steps", type=int, default=None, help="override the config's step count")
    parser.add_argument("--ship", default=None, help="write evaluator.safetensors + manifest.json here when done")
    args = parser.parse_args(argv)
    settings, model, config = read_config(args.config)
    if args.steps is not None:
        config = TrainConfig(**{**asdict(config), "steps": args.steps})
    t0 = time.perf_counter()
    task = EvaluatorTask(args.corpus, settings, model)
    prep_seconds = time.perf_counter() - t0
    net = train(task, config, args.out)
    if args.ship:
        log = np.genfromtxt(Path(args.out) / "log.csv", delimiter=",", names=True)
        corpus_manifest = Path(args.corpus) / "manifest.jsonl"
        info = {
            "command": "python -m bench.train.evaluator " + " ".join(sys.argv[1:] if argv is None else argv),
            "config": json.loads(Path(args.config).read_text()),
            "corpus": {"manifest_sha256": sha256_file(corpus_manifest), "train_clips": len(task.clips),
                       "split": settings.split},  # fmt: skip
            "feature_seconds": round(prep_seconds, 1),
            "train_seconds": round(float(np.atleast_1d(log["seconds"])[-1]), 1),
            "sample_rate": SAMPLE_RATE,
            "machine": provenance.device_info("cpu"),
        }
        export(net, args.ship, info)
    return 0


if __name__ == "__main__":
    sys.exit(main())
