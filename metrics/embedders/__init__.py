"""Embedding networks, one file each, behind :class:`t2mbench.metrics.embedders.base.Embedder`.

Networks are imported lazily so that ``import metrics`` stays light.
"""

from __future__ import annotations

import importlib
from typing import Any

from t2mbench.metrics.embedders.base import Embedder, TextEmbedder

from t2mbench.core.errors import ConfigError

# name -> (module, factory, one-line description)
_EMBEDDERS: dict[str, tuple[str, str, str]] = {
    "openl3": ("t2mbench.metrics.embedders.openl3", "load_openl3", "OpenL3 mel256/512 frames, SAM front end"),
    "passt": ("t2mbench.metrics.embedders.passt", "load_passt", "PaSST-S AudioSet logits [B, 527] over 10 s windows"),
    "clap": ("t2mbench.metrics.embedders.clap", "load_clap", "LAION-CLAP HTSAT-tiny fusion audio/text [B, 512]"),
    "evaluator": ("t2mbench.metrics.embedders.evaluator", "load_evaluator", "the corpus evaluator"),
}


def embedder_names() -> dict[str, str]:
    """Registered embedder names with one-line descriptions."""
    return {name: desc for name, (_, _, desc) in _EMBEDDERS.items()}


def get_embedder(name: str, checkpoint: str | None = None, **options: Any) -> Embedder:
    """Build embedder ``name`` with its checked weights (``checkpoint`` overrides the default file).

    Raises:
        ConfigError: unknown name (the message lists the known ones).
        MissingWeightsError: the weight file is absent (the message says where to put it).
    """
    if name not in _EMBEDDERS:
        raise ConfigError(f"unknown embedder {name!r}; known: {', '.join(_EMBEDDERS)}")
    module, factory, _ = _EMBEDDERS[name]
    return getattr(importlib.import_module(module), factory)(checkpoint=checkpoint, **options)


__all__ = ["Embedder", "TextEmbedder", "embedder_names", "get_embedder"]
