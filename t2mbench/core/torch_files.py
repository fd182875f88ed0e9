"""Reading torch checkpoint files (``.pt``, ``.pth``, ``.ckpt``, ``.bin``) safely, in one place.

Every load is ``torch.load(weights_only=True)``: tensors and plain containers only. A file that
holds other pickled Python objects is refused in one line that says so; nothing in it runs, and
the message never suggests loading it unsafely.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any

import torch

from t2mbench.core.errors import WeightsError


def load_torch_file(path: str | os.PathLike, *, what: str = "checkpoint", hint: str = "") -> Any:
    """The contents of the torch file ``path`` (tensors and plain containers only).

    ``what`` names the file in messages (e.g. "the PaSST checkpoint"); ``hint`` is appended to
    the message for an unreadable file (e.g. where to download it again).

    Raises:
        WeightsError: pickled Python objects (refused, never run), or an unreadable file.
    """
    p = Path(path)
    try:
        try:
            return torch.load(p, map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError as e:
            if "mmap" not in str(e):
                raise
            return torch.load(p, map_location="cpu", weights_only=True)  # legacy (non-zip) format
    except pickle.UnpicklingError as e:
        if "GLOBAL" in str(e):  # weights_only met a pickled object (a global), not a corrupt stream
            raise WeightsError(
                f"{p}: refused: the file holds pickled Python objects besides tensors, which t2mbench never runs; "
                "save its state dict as .safetensors (or torch.save of the tensors alone) and pass that file"
            ) from None
        raise WeightsError(f"{p}: cannot read {what} (not a torch file: its pickle stream is corrupt){hint}") from None
    except Exception as e:  # torch raises RuntimeError, EOFError, OSError... for a truncated or foreign file
        first = str(e).strip().splitlines()[0][:200] if str(e).strip() else ""
        raise WeightsError(f"{p}: cannot read {what} ({type(e).__name__}: {first}){hint}") from None
