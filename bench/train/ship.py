"""Shipping a trained model: its EMA weights as safetensors inside the package, and a
``manifest.json`` beside them with the sha256 checked at load, the size, the parameter count
and how the file was made (command, config, corpus, training time, machine)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

from t2mbench.core import provenance
from t2mbench.core.files import atomic_path, read_json, sha256_file, write_json

MANIFEST = "manifest.json"


def ship(
    state: Mapping[str, torch.Tensor],
    ship_dir: str | Path,
    filename: str,
    *,
    info: Mapping[str, Any],
    dtype: torch.dtype = torch.float32,
    metadata: Mapping[str, str] | None = None,
) -> Path:
    """Write ``state`` (floating tensors cast to ``dtype``) to ``ship_dir/filename`` and the
    manifest beside it; returns the weights path."""
    path = Path(ship_dir) / filename
    tensors = {k: (v.to(dtype) if v.is_floating_point() else v).detach().contiguous() for k, v in state.items()}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={"format": "pt", **dict(metadata or {})})
    manifest = {
        "file": filename,
        "sha256": sha256_file(path),
        "size": path.stat().st_size,
        "parameters": sum(v.numel() for v in tensors.values() if v.is_floating_point()),
        "dtype": str(dtype).removeprefix("torch."),
        **dict(info),
    }
    write_json(Path(ship_dir) / MANIFEST, manifest)
    return path


def run_info(command: str, config: str | Path, corpus: str | Path, train_clips: int, run_dir: str | Path) -> dict:
    """How a run was made: the command, its config, the corpus manifest's sha256, the number of
    training clips, the training seconds (from ``log.csv``) and the machine."""
    return {
        "command": command,
        "config": read_json(config),
        "corpus": {"manifest_sha256": sha256_file(Path(corpus) / "manifest.jsonl"), "train_clips": train_clips},
        **_log_summary(run_dir),
        "machine": provenance.device_info("cpu"),
    }


def upstream_run(weights: str | Path) -> dict:
    """The run that made ``weights`` (a run folder's ``ema.safetensors``, e.g. the VAE a DiT was
    trained on): its sha256, training config, steps and training seconds."""
    run_dir = Path(weights).parent
    return {"file": str(weights), "sha256": sha256_file(weights), "config": read_json(run_dir / "train_config.json"),
            **_log_summary(run_dir)}  # fmt: skip


def _log_summary(run_dir: str | Path) -> dict:
    import pandas as pd

    log = pd.read_csv(Path(run_dir) / "log.csv")
    return {"train_seconds": round(float(log["seconds"].iloc[-1]), 1), "steps": int(log["step"].iloc[-1])}
