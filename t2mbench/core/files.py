"""File helpers: content hashes, atomic writes, JSON and JSONL.

Every file t2mbench writes goes through :func:`atomic_path`, so a killed run never
leaves a half-written file under its final name.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from t2mbench.core.errors import ConfigError

_CHUNK = 1 << 20


def sha256_file(path: str | os.PathLike) -> str:
    """Hex sha256 of a file's bytes, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(_CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def sha256_bytes(data: bytes) -> str:
    """Hex sha256 of a byte string."""
    return hashlib.sha256(data).hexdigest()


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only on success.

    The temporary name keeps the final suffix (``.clip.wav.tmp123.wav``) so that writers
    that infer the format from the suffix (soundfile, pandas) still work. The final file gets
    the permissions a plain ``open`` would give it (0666 less the umask), not the temporary
    file's private 0600.
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", suffix=f".tmp{final.suffix}", dir=final.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o666 & ~_umask())
        os.replace(tmp_path, final)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


STAGING = ".staging"
STAGED = "COMPLETE"  # written last in the staging folder: the set is whole and may be moved in


@contextlib.contextmanager
def staged_outputs(out: str | os.PathLike) -> Iterator[Path]:
    """Yield a staging folder inside ``out``; on success move everything written there into
    ``out`` as one set, on failure (a full disk, an error) delete it and leave ``out`` as it was.

    The move renames file by file after a ``COMPLETE`` marker is written, so a run killed
    between two renames is finished by the next call on ``out`` (:func:`finish_staged`): readers
    never see a new file beside an old one for long, and never lose the old set to a failure.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    finish_staged(out)
    staging = out / STAGING
    staging.mkdir()
    try:
        yield staging
        (staging / STAGED).write_bytes(b"")
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    finish_staged(out)


def finish_staged(out: Path) -> None:
    """Move a complete staged set into ``out`` (roll forward); drop an incomplete one."""
    staging = out / STAGING
    if not staging.is_dir():
        return
    if (staging / STAGED).is_file():
        for item in sorted(staging.iterdir()):
            if item.name == STAGED:
                continue
            if item.is_dir() and (out / item.name).is_dir():  # a folder of the set replaces the old one whole
                shutil.rmtree(out / item.name)
            os.replace(item, out / item.name)
    shutil.rmtree(staging, ignore_errors=True)


def check_writable(folder: str | os.PathLike) -> Path:
    """Create ``folder`` and write (then delete) a probe there, so that a folder on a read-only disk
    or under a regular file fails before any work (OSError naming the path)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    fd, probe = tempfile.mkstemp(prefix=".probe-", dir=folder)
    os.close(fd)
    os.unlink(probe)
    return folder


def check_output_file(path: str | os.PathLike) -> Path:
    """Check, creating nothing, that ``path`` can be written at the end of a run: it is not a
    folder, and the nearest existing folder above it takes a file (a probe, deleted at once).

    Raises:
        OSError: naming the path or the folder that refuses it (a regular file where a folder
            belongs, a read-only disk, no permission).
    """
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(errno.EISDIR, "is a folder, not a file", str(path))
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, "a regular file stands where a folder belongs", str(folder))
    fd, probe = tempfile.mkstemp(prefix=".probe-", dir=folder)
    os.close(fd)
    os.unlink(probe)
    return path


def _umask() -> int:
    """The process's umask (read by setting it, then restoring it at once)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically; returns the final path."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def copy_file_atomic(src: str | os.PathLike, dst: str | os.PathLike) -> Path:
    """Copy ``src`` to ``dst`` atomically (a killed copy never leaves a truncated ``dst``)."""
    with atomic_path(dst) as tmp:
        shutil.copyfile(src, tmp)
    return Path(dst)


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Write ``obj`` as indented, key-sorted JSON, atomically."""
    text = json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n"
    return write_bytes_atomic(path, text.encode())


def read_json(path: str | os.PathLike) -> Any:
    """Read a JSON file; a file that is not JSON is a :class:`~t2mbench.core.errors.ConfigError`
    naming it and where the syntax breaks."""
    with open(path, encoding="utf-8") as f:
        try:
            return json.load(f)
        except json.JSONDecodeError as e:
            raise ConfigError(f"{path}: not valid JSON ({e.msg} at line {e.lineno}, column {e.colno})") from None
        except UnicodeDecodeError:
            raise ConfigError(f"{path}: not a UTF-8 text file") from None


def write_jsonl(path: str | os.PathLike, rows: Iterable[dict]) -> Path:
    """Write one JSON object per line (keys sorted), atomically."""
    lines = [json.dumps(r, sort_keys=True, default=_json_default) for r in rows]
    return write_bytes_atomic(path, ("\n".join(lines) + ("\n" if lines else "")).encode())


def read_jsonl(path: str | os.PathLike) -> list[dict]:
    """Read a JSONL file, skipping blank lines."""
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def _json_default(obj: Any) -> Any:
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "tolist"):  # numpy scalars and arrays
        return obj.tolist()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")
