"""Embedding networks, one file each, behind :class:`t2mbench.metrics.embedders.base.Embedder`.

The registry below is the one list of embedders: each :class:`EmbedderSpec` names the module
that holds the network, its factory, and the outputs a metric may read. That module declares
the weight files it reads once, as ``WEIGHTS = register_all(WeightFile(...), ...)``
(:mod:`t2mbench.core.weights`); ``t2mbench weights`` lists them through :func:`embedder_weights`.
Third-party embedders join through the entry-point group ``t2mbench.embedders`` (each entry
loads an :class:`EmbedderSpec`), read once, on first use.

Networks are imported lazily so that ``import metrics`` stays light.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from t2mbench.core.plugins import Registry
from t2mbench.core.weights import WeightFile
from t2mbench.metrics.embedders.base import Embedder, TextEmbedder

GROUP = "t2mbench.embedders"


@dataclass(frozen=True)
class EmbedderSpec:
    """A registered embedder.

    Attributes:
        module: the module that defines the network, its factory and ``WEIGHTS`` (a tuple of the
            :class:`~t2mbench.core.weights.WeightFile` s it reads, registered at import).
        factory: name of the module's function ``factory(checkpoint=None, **options) -> Embedder``.
        description: one line for listings.
        audio_outputs: the embedder methods ``(audio [B, C, T], sample_rate) -> [B, ...]`` a
            metric may read as its ``audio_output`` (``embed`` first: the default).
        text_outputs: the methods ``(texts) -> [B, D]`` a metric may read as its ``text_output``
            (empty: no text tower).
    """

    module: str
    factory: str
    description: str
    audio_outputs: tuple[str, ...] = ("embed",)
    text_outputs: tuple[str, ...] = ()

    def load(self, checkpoint: str | None = None, **options: Any) -> Embedder:
        """Build the embedder (imports its module)."""
        return getattr(importlib.import_module(self.module), self.factory)(checkpoint=checkpoint, **options)

    def weight_files(self) -> tuple[WeightFile, ...]:
        """The weight files the module declares in ``WEIGHTS`` (imports the module)."""
        return tuple(importlib.import_module(self.module).WEIGHTS)


_BUILT_IN: dict[str, EmbedderSpec] = {
    "openl3": EmbedderSpec("t2mbench.metrics.embedders.openl3", "load_openl3",
                           "OpenL3 mel256/512 frames, SAM front end"),
    "passt": EmbedderSpec("t2mbench.metrics.embedders.passt", "load_passt",
                          "PaSST-S AudioSet logits [B, 527] over 10 s windows"),
    "clap": EmbedderSpec("t2mbench.metrics.embedders.clap", "load_clap",
                         "LAION-CLAP HTSAT-tiny fusion audio/text [B, 512]", text_outputs=("embed_text",)),
    "clap_music": EmbedderSpec("t2mbench.metrics.embedders.clap", "load_clap_music",
                               "LAION-CLAP HTSAT-base music audio [B, T_s, 512], fadtk's 10 s chunks every 1 s"),
    "mert": EmbedderSpec("t2mbench.metrics.embedders.mert", "load_mert",
                         "MERT-v1-95M frames [B, T, 768] at 75 Hz, fadtk's layer 12 (CC-BY-NC weights)"),
    "mert_330m": EmbedderSpec("t2mbench.metrics.embedders.mert_330m", "load_mert_330m",
                              "MERT-v1-330M frames [B, T, 1024] at 75 Hz, mad-metric's layer 24 (CC-BY-NC weights)"),
    "audiobox_aesthetics": EmbedderSpec("t2mbench.metrics.embedders.audiobox", "load_audiobox",
                                        "Audiobox Aesthetics scores [B, 4]: CE, CU, PC, PQ (1-10 scale)"),
    "evaluator": EmbedderSpec("t2mbench.metrics.embedders.evaluator", "load_evaluator", "the corpus evaluator",
                              audio_outputs=("embed", "attribute_logits", "clip_embedding"),
                              text_outputs=("embed_text",)),
}  # fmt: skip
REGISTRY: Registry[EmbedderSpec] = Registry(GROUP, _BUILT_IN, EmbedderSpec, "embedder")


def embedders() -> dict[str, EmbedderSpec]:
    """Every registered embedder by name: the built-in ones, then the plugins' (read once).

    Raises:
        ConfigError: a plugin repeats a built-in name or does not load an :class:`EmbedderSpec`.
    """
    return REGISTRY.entries()


def embedder_spec(name: str) -> EmbedderSpec:
    """The registry entry ``name``; an unknown name lists the known ones (ConfigError)."""
    return REGISTRY.get(name)


def embedder_names() -> dict[str, str]:
    """Registered embedder names with one-line descriptions."""
    return {name: spec.description for name, spec in embedders().items()}


def embedder_weights() -> list[WeightFile]:
    """The weight files of every registered embedder (imports each embedder's module)."""
    return [wf for spec in embedders().values() for wf in spec.weight_files()]


def weights_status(name: str, sha256: str) -> str:
    """Whether the weights embedder ``name`` loaded (their ``sha256``) are published ones.

    ``"published"``: ``sha256`` is the published hash of one of the embedder's registered files;
    ``"unpublished"``: some of those files publish hashes and it is none of them (a fine-tune, a
    conversion, seeded test weights, a file loaded with ``verify=False``; also a registered file whose
    own hash upstream does not publish, e.g. LAION-CLAP's unpinned checkpoints: the status compares
    hashes, not file names); ``"no published sha256"``: none of the embedder's files publishes a hash
    to compare with (MERT, Audiobox); ``"not registered"``: no embedder of that name.
    """
    if name not in embedders():
        return "not registered"
    published = {wf.sha256 for wf in embedders()[name].weight_files() if wf.sha256}
    if not published:
        return "no published sha256"
    return "published" if sha256 in published else "unpublished"


def get_embedder(name: str, checkpoint: str | None = None, **options: Any) -> Embedder:
    """Build embedder ``name`` with its checked weights (``checkpoint`` overrides the default file).

    Raises:
        ConfigError: unknown name (the message lists the known ones).
        MissingWeightsError: the weight file is absent (the message says where to put it).
    """
    return embedder_spec(name).load(checkpoint, **options)


__all__ = [
    "Embedder",
    "EmbedderSpec",
    "TextEmbedder",
    "embedder_names",
    "embedder_spec",
    "embedder_weights",
    "embedders",
    "get_embedder",
    "weights_status",
]
