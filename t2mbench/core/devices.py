"""Torch devices named by users, checked before any work: ``cpu``, ``cuda``, ``cuda:N``, ``mps``."""

from __future__ import annotations

import torch

from t2mbench.core.errors import ConfigError


def resolve_device(device: torch.device | str) -> torch.device:
    """``device`` as a :class:`torch.device` this torch can use; ConfigError in one line otherwise
    (an unknown name, CUDA on a CPU-only torch, a GPU index that does not exist, no MPS)."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise ConfigError(f"unknown device {str(device)!r}; use cpu, cuda, cuda:N or mps") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"device {str(device)!r}: this torch ({torch.__version__}) has no usable CUDA; use cpu")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ConfigError(f"device {str(device)!r}: only {torch.cuda.device_count()} CUDA device(s) here")
    elif dev.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(f"device {str(device)!r}: MPS is not available here; use cpu")
    elif dev.type not in ("cpu", "cuda", "mps", "meta"):
        raise ConfigError(f"device {str(device)!r}: t2mbench runs on cpu, cuda or mps")
    return dev
