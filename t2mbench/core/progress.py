"""Progress bars for long work (tqdm on stderr, silenced by ``T2MBENCH_NO_PROGRESS=1``)."""

from __future__ import annotations

import os
from typing import Any

from tqdm.auto import tqdm


def progress_bar(*args: Any, disable: bool | None = None, **kwargs: Any) -> tqdm:
    """A tqdm bar with clips/steps and ETA; off when ``T2MBENCH_NO_PROGRESS`` is set."""
    if os.environ.get("T2MBENCH_NO_PROGRESS"):
        disable = True
    kwargs.setdefault("dynamic_ncols", True)
    kwargs.setdefault("mininterval", 0.5)
    return tqdm(*args, disable=disable, **kwargs)
