"""Plot plumbing shared by every figure the suite writes: matplotlib without a display, and
figures saved atomically (a killed run never leaves a half-written PNG under its final name)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from t2mbench.core.files import atomic_path


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the non-interactive Agg backend (imported on first use)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig: Any, png: str | Path, *, dpi: int = 110) -> Path:
    """Write ``fig`` to ``png`` atomically, close it, and return the path."""
    with atomic_path(png) as tmp:
        fig.savefig(tmp, dpi=dpi)
    pyplot().close(fig)
    return Path(png)
