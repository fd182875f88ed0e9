"""Weight files: a registry of known checkpoints, the cache under ``$T2MBENCH_HOME``,
sha256 verification, and a resumable download.

Each module that loads checkpoints declares them once, at module level, as
``WEIGHTS = register_all(WeightFile(...), ...)`` (upstream file name, URL, published sha256,
licence); the embedder registry (``t2mbench.metrics.embedders``) and the reference models
(``t2mbench.reference_models.checkpoints.weight_files``) hand those declarations to
``t2mbench weights``. :func:`resolve` finds the file (an explicit
path, the file shipped inside the package, or ``$T2MBENCH_HOME/weights/<filename>``),
checks its hash, and, when it is absent, raises :class:`MissingWeightsError` naming the
file, its URL and where to put it. Nothing is ever downloaded implicitly: only
:func:`fetch` (``t2mbench weights fetch``) touches the network.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from t2mbench.core.errors import ChecksumError, MissingWeightsError, WeightsError
from t2mbench.core.files import sha256_file

ENV_HOME = "T2MBENCH_HOME"


@dataclass(frozen=True)
class WeightFile:
    """One checkpoint file as published upstream (or shipped with t2mbench).

    ``sha256`` is the published hash; ``None`` only where upstream publishes none, and
    then ``note`` says so. ``size`` is in bytes. ``licence`` names the licence the file is
    published under (SPDX id where there is one, and whose). ``bundled`` is the path of a
    file shipped inside the package.
    """

    name: str
    filename: str
    url: str | None
    sha256: str | None
    description: str = ""
    size: int | None = None
    note: str = ""
    bundled: Path | None = None
    licence: str = ""


_REGISTRY: dict[str, WeightFile] = {}
_HASH_MEMO: dict[tuple[str, int, int], str] = {}


def home() -> Path:
    """The suite's home: ``$T2MBENCH_HOME``, else ``~/.cache/t2mbench``."""
    return Path(os.environ.get(ENV_HOME) or Path.home() / ".cache" / "t2mbench")


def weights_dir() -> Path:
    """Where downloaded or hand-placed weight files live: ``<home>/weights``."""
    return home() / "weights"


def register(wf: WeightFile) -> WeightFile:
    """Add ``wf`` to the registry (idempotent for an identical entry)."""
    old = _REGISTRY.get(wf.name)
    if old is not None and old != wf:
        raise WeightsError(f"weight name {wf.name!r} registered twice with different files")
    _REGISTRY[wf.name] = wf
    return wf


def register_all(*files: WeightFile) -> tuple[WeightFile, ...]:
    """Register every file of a module's ``WEIGHTS`` declaration; returns them in order."""
    return tuple(register(wf) for wf in files)


SHIPPED_LICENCE = "MIT (t2mbench's own weights, under the package licence)"


def register_shipped(name: str, directory: Path, filename: str, description: str) -> WeightFile | None:
    """Register a checkpoint trained by t2mbench and shipped in the package at
    ``directory/filename``, with the sha256 and size its ``directory/manifest.json`` records
    (``None`` in a checkout that has not shipped one yet: then only training works)."""
    manifest = directory / "manifest.json"
    if not manifest.is_file():
        return None
    info = json.loads(manifest.read_text(encoding="utf-8"))
    return register(
        WeightFile(
            name=name, filename=filename, url=None, sha256=info["sha256"], size=info["size"],
            description=description, bundled=directory / filename, licence=SHIPPED_LICENCE,
            note=f"trained by t2mbench and shipped in the package; {manifest} records the command",
        )
    )  # fmt: skip


def get(name: str) -> WeightFile:
    """The registered entry ``name``; unknown names list the known ones."""
    try:
        return _REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY)) or "(none registered)"
        raise WeightsError(f"unknown weights {name!r}; known: {known}") from None


def default_path(wf: WeightFile) -> Path:
    """Where ``wf`` is looked for when no explicit path is given."""
    if wf.bundled is not None:
        return wf.bundled
    return weights_dir() / wf.filename


def hash_file(path: Path) -> str:
    """sha256 of ``path``, memoised per (path, size, mtime) within the process."""
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _HASH_MEMO:
        _HASH_MEMO[key] = sha256_file(path)
    return _HASH_MEMO[key]


def missing_message(wf: WeightFile, path: Path) -> str:
    """The one-line explanation for a missing file: what, from where, to where."""
    src = f"download it from {wf.url}" if wf.url else "it has no public download"
    return (
        f"weights {wf.name!r} not found: expected {wf.filename} at {path}; {src} and put it there "
        f"(or run `t2mbench weights fetch {wf.name}` where the network allows, set ${ENV_HOME}, "
        f"or pass an explicit checkpoint path)"
    )


def resolve(name: str, path: str | os.PathLike | None = None, *, verify: bool = True) -> Path:
    """Path of the checked weight file ``name``.

    ``path`` overrides the default location. With ``verify`` the file's sha256 must equal
    the published one (an explicit ``path`` to a differently-hashed file is still refused:
    pass ``verify=False`` to load, e.g., seeded random weights in the upstream layout).
    """
    wf = get(name)
    p = Path(path) if path is not None else default_path(wf)
    if not p.is_file():
        raise MissingWeightsError(missing_message(wf, p))
    if verify:
        check(wf, p)
    return p


def check(wf: WeightFile, path: Path) -> str:
    """Verify ``path`` against ``wf.sha256``; returns the actual hash."""
    actual = hash_file(path)
    if wf.sha256 is not None and actual != wf.sha256:
        size = path.stat().st_size
        hint = f" (size {size} bytes, expected {wf.size})" if wf.size and wf.size != size else ""
        raise ChecksumError(
            f"{path}: sha256 {actual} does not match the published {wf.sha256} for {wf.name!r}{hint}; "
            "the file is truncated, corrupt or a different model: delete it and fetch it again, or, to load your "
            "own file on purpose (a fine-tune, a conversion), pass --no-verify (verify=False in the API)"
        )
    return actual


def fetch(name: str, *, progress: bool = True, timeout: float = 60.0) -> Path:
    """Download ``name`` into :func:`weights_dir`, resuming a partial ``.part`` file.

    The download goes to ``<filename>.part`` and is renamed only after its sha256 checks.
    """
    wf = get(name)
    dest = default_path(wf)
    if dest.is_file():
        check(wf, dest)
        return dest
    if not wf.url:
        raise MissingWeightsError(missing_message(wf, dest))
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    done = part.stat().st_size if part.exists() else 0
    req = urllib.request.Request(wf.url, headers={"Range": f"bytes={done}-"} if done else {})
    try:
        resp = urllib.request.urlopen(req, timeout=timeout)
    except (urllib.error.URLError, OSError) as e:
        raise MissingWeightsError(f"{missing_message(wf, dest)}; download failed: {e}") from None
    with resp:
        if done and resp.status != 206:  # server ignored the range: start over
            done = 0
        total = resp.headers.get("Content-Length")
        total = int(total) + done if total else wf.size
        from t2mbench.core.progress import progress_bar

        with open(part, "ab" if done else "wb") as f, progress_bar(
            total=total, initial=done, desc=wf.filename, unit="B", unit_scale=True, disable=not progress
        ) as bar:
            for block in iter(lambda: resp.read(1 << 20), b""):
                f.write(block)
                bar.update(len(block))
    check(wf, part)
    os.replace(part, dest)
    return dest
