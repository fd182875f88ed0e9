"""The provenance record every result carries, written as ``provenance.json`` into every
output folder: software versions and commit, device, threads, CPU/GPU model, seeds, and
the sha256 of every input manifest and weight file the result depends on.
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from t2mbench.core.files import sha256_file, write_json

FILENAME = "provenance.json"
_SOURCE_DIR = Path(__file__).resolve().parent.parent


def git_commit(source_dir: Path = _SOURCE_DIR) -> dict[str, Any]:
    """Commit and dirty flag of the t2mbench checkout, or ``{"commit": None}`` when not a repo."""
    try:
        commit = subprocess.run(
            ["git", "-C", str(source_dir), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(source_dir), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, timeout=10, check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}
    return {"commit": commit, "dirty": bool(dirty)}


def cpu_model() -> str:
    """The CPU's model name (from /proc/cpuinfo on Linux, else :func:`platform.processor`)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def device_info(device: str | None = None) -> dict[str, Any]:
    """Device, torch thread count, CPU model and (when CUDA is up) GPU model and count."""
    import torch

    info: dict[str, Any] = {
        "device": device or ("cuda" if torch.cuda.is_available() else "cpu"),
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "cpu": cpu_model(),
        "gpu": None,
        "gpu_count": 0,
    }
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
        info["gpu_count"] = torch.cuda.device_count()
    return info


def collect(
    *,
    seeds: Mapping[str, int] | None = None,
    inputs: Mapping[str, str | os.PathLike] | None = None,
    weights: Mapping[str, str] | None = None,
    device: str | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Build the provenance record.

    Args:
        seeds: named seeds used (``{"corpus": 0, "sampling": 1}``).
        inputs: named input files (manifests, configs); each is hashed here.
        weights: weight name to the sha256 of the file actually loaded.
        device: the torch device the work ran on (default: cuda if available, else cpu).
        extra: anything else the stage wants recorded (command line, settings).
    """
    import numpy
    import torch

    from t2mbench import __version__

    record: dict[str, Any] = {
        "t2mbench_version": __version__,
        "git": git_commit(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        **device_info(device),
        "created_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "argv": list(sys.argv),
        "seeds": dict(seeds or {}),
        "inputs": {name: {"path": str(p), "sha256": sha256_file(p)} for name, p in (inputs or {}).items()},
        "weights": dict(weights or {}),
    }
    if extra:
        record["extra"] = dict(extra)
    return record


def write(out_dir: str | os.PathLike, record: Mapping[str, Any]) -> Path:
    """Write ``record`` to ``<out_dir>/provenance.json`` atomically."""
    return write_json(Path(out_dir) / FILENAME, dict(record))
