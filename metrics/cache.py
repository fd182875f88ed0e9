"""On-disk embedding cache under ``$T2MBENCH_HOME/cache/embeddings/``.

An entry is keyed by the sha256 of the audio file's bytes (or of a caption's UTF-8 text),
the embedder's name, its weights' sha256, its protocol version and settings, and the scoring
protocol's version and preprocessing settings: change any of them and the entry is not
found, so a stale embedding is never reused.

Layout: ``<root>/<embedder>/<key[:2]>/<key>.emb``. A file is
``MAGIC | sha256(payload) | payload`` where the payload is the array in ``.npy`` format
(no pickle). Writes go to a temporary file in the same folder and are renamed onto the final
name (atomic on POSIX), so a killed run leaves either a complete entry or none (a stray
temporary file is ignored), and two runs writing the same entry each rename a complete file
over the other's. A read verifies the magic, the checksum and the ``.npy`` header; an entry
that fails is deleted and counted as corrupt, and the caller recomputes it.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from t2mbench.core.files import check_writable, write_bytes_atomic
from t2mbench.core.weights import home

MAGIC = b"T2MEMB1\n"
_DIGEST = 32


def default_root() -> Path:
    """``$T2MBENCH_HOME/cache/embeddings`` (``~/.cache/t2mbench/cache/embeddings`` by default)."""
    return home() / "cache" / "embeddings"


def entry_key(**fields: Any) -> str:
    """sha256 of the canonical JSON of ``fields`` (content hash, embedder, weights, protocol, settings)."""
    text = json.dumps(fields, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


class EmbeddingCache:
    """Content-addressed store of float arrays with integrity checks.

    Attributes ``hits``, ``misses``, ``writes`` and ``corrupt`` count what happened in this
    process (reported in the scoring summary).
    """

    def __init__(self, root: str | os.PathLike | None = None) -> None:
        self.root = Path(root) if root is not None else default_root()
        self.hits = self.misses = self.writes = self.corrupt = 0

    def check_writable(self) -> None:
        """Create the cache folder and write a probe there, so that a read-only or misplaced cache
        (under a regular file) fails before any clip is embedded (OSError naming the path)."""
        check_writable(self.root)

    def path(self, embedder: str, key: str) -> Path:
        return self.root / embedder / key[:2] / f"{key}.emb"

    def get(self, embedder: str, key: str) -> np.ndarray | None:
        """The stored array, or ``None`` when absent or corrupt (a corrupt entry is deleted)."""
        p = self.path(embedder, key)
        try:
            data = p.read_bytes()
        except FileNotFoundError:
            self.misses += 1
            return None
        array = _decode(data)
        if array is None:
            self.corrupt += 1
            self.misses += 1
            p.unlink(missing_ok=True)
            return None
        self.hits += 1
        return array

    def put(self, embedder: str, key: str, array: np.ndarray) -> None:
        """Store ``array`` atomically (overwriting an entry with the same key is harmless)."""
        buf = io.BytesIO()
        np.save(buf, np.ascontiguousarray(array), allow_pickle=False)
        payload = buf.getvalue()
        write_bytes_atomic(self.path(embedder, key), MAGIC + hashlib.sha256(payload).digest() + payload)
        self.writes += 1

    def counts(self) -> dict[str, int]:
        return {"hits": self.hits, "misses": self.misses, "writes": self.writes, "corrupt": self.corrupt}

    def add_counts(self, counts: dict[str, int]) -> None:
        """Add what another process's cache on the same root counted (a scoring worker's shard)."""
        for name, n in counts.items():
            setattr(self, name, getattr(self, name) + int(n))


def _decode(data: bytes) -> np.ndarray | None:
    head = len(MAGIC) + _DIGEST
    if len(data) < head or not data.startswith(MAGIC):
        return None
    payload = data[head:]
    if hashlib.sha256(payload).digest() != data[len(MAGIC) : head]:
        return None
    try:
        return np.load(io.BytesIO(payload), allow_pickle=False)
    except (ValueError, OSError, EOFError):
        return None
