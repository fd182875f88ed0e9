"""A third-party embedder as a plugin package would ship it: a module that declares its weight
files once (``WEIGHTS``), a factory, and the :class:`EmbedderSpec` its entry point loads
(``[project.entry-points."t2mbench.embedders"] toy = "support.plugin_embedder:SPEC"``)."""

from __future__ import annotations

from support.stand_in_embedder import StandInEmbedder
from t2mbench.metrics import EmbedderSpec, WeightFile, register_all

WEIGHTS = register_all(
    WeightFile(name="toy-plugin", filename="toy-plugin.bin", url="https://example.org/toy-plugin.bin",
               sha256=None, description="the toy plugin's projection", licence="CC0-1.0 (the toy plugin)"),
)  # fmt: skip


def load_toy(checkpoint: str | None = None) -> StandInEmbedder:
    """The stand-in embedder under the plugin's name (no weight file is read)."""
    return StandInEmbedder("frames", name="toy")


SPEC = EmbedderSpec(__name__, "load_toy", "a plugin embedder (the test stand-in)")
