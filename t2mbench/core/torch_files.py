"""Reading torch checkpoint files (``.pt``, ``.pth``, ``.ckpt``, ``.bin``) safely, in one place.

Every load is ``torch.load(weights_only=True)``: tensors and plain containers only, plus NumPy
scalars and dtypes (LAION-CLAP's training checkpoints, e.g. ``music_audioset_epoch_15_esc_90.14.pt``,
hold NumPy floats in their training metadata; those reconstructors only rebuild numbers). A file that
holds other pickled Python objects is refused in one line that says so; nothing in it runs, and
the message never suggests loading it unsafely.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from t2mbench.core.errors import WeightsError


def _numpy_globals() -> list[Any]:
    """NumPy's scalar reconstructor (under its NumPy 1 and 2 module paths) and its dtype classes."""
    scalar = np.dtype("float64").type(0).__reduce__()[0]  # numpy.(_)core.multiarray.scalar
    dtypes = [type(np.dtype(c)) for c in "?bBhHiIlLqQefdgFDG"]
    names = ["numpy.core.multiarray.scalar", "numpy._core.multiarray.scalar"]
    return [np.dtype, *dtypes, *[(scalar, name) for name in names]]


def load_torch_file(path: str | os.PathLike, *, what: str = "checkpoint", hint: str = "") -> Any:
    """The contents of the torch file ``path`` (tensors and plain containers only).

    ``what`` names the file in messages (e.g. "the PaSST checkpoint"); ``hint`` is appended to
    the message for an unreadable file (e.g. where to download it again).

    Raises:
        WeightsError: pickled Python objects (refused, never run), or an unreadable file.
    """
    p = Path(path)
    try:
        with torch.serialization.safe_globals(_numpy_globals()):
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


def load_state_file(path: str | os.PathLike, what: str, url: str) -> Mapping[str, Any]:
    """The mapping a downloaded torch checkpoint holds (a state dict or a training dict), read by
    :func:`load_torch_file`; ``what`` names it ("the PaSST checkpoint"), ``url`` is where to download it again.

    Raises:
        WeightsError: unreadable, pickled objects, or not a mapping.
    """
    state = load_torch_file(path, what=what,
                            hint=f"; the file is truncated or not a torch checkpoint: download it again from {url}")
    if not isinstance(state, Mapping):
        raise WeightsError(f"{path}: holds a {type(state).__name__}, not {what.removeprefix('the ')} dict")
    return state
