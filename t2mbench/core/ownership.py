"""Which command owns an output folder, so that no command silently overwrites another's.

A command that writes a folder first :func:`claim` s it: the folder's ``.t2mbench-owner.json``
records the command and the settings that define its outputs. The same command with the same
settings resumes there; another command, the same command with other settings, or a non-empty
folder no command owns is refused with one line naming the folder and its owner, unless the
user passes ``--overwrite``. The claim is also the first write, so a read-only or missing
parent is found before any work starts.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from t2mbench.core.errors import T2MBenchError
from t2mbench.core.files import read_json, write_json

OWNER_FILE = ".t2mbench-owner.json"


class OwnershipError(T2MBenchError):
    """The output folder belongs to another command or to other settings."""


def _normal(settings: Mapping[str, Any]) -> dict[str, Any]:
    """Settings as their JSON round trip (paths and tuples become text and lists)."""
    return json.loads(json.dumps(dict(settings), sort_keys=True, default=str))


@contextlib.contextmanager
def owning(folder: str | os.PathLike, command: str, settings: Mapping[str, Any], *,
           overwrite: bool = False, option: str = "--out") -> Iterator[Path]:  # fmt: skip
    """:func:`claim` ``folder`` (named by the command's ``option``) for the body's work; if the body fails before
    writing anything there, the claim is withdrawn (a run refused for a bad setting does not keep the folder, so
    the corrected command is not refused for "other settings")."""
    folder = Path(folder)
    fresh = not folder.exists() or (folder.is_dir() and not any(folder.iterdir()))
    claim(folder, command, settings, overwrite=overwrite, option=option)
    try:
        yield folder
    except BaseException:
        if fresh and [p.name for p in folder.iterdir()] == [OWNER_FILE]:
            (folder / OWNER_FILE).unlink()
            folder.rmdir()
        raise


def claim(folder: str | os.PathLike, command: str, settings: Mapping[str, Any], *, overwrite: bool = False,
          option: str = "--out") -> Path:  # fmt: skip
    """Make ``command`` with ``settings`` the owner of ``folder`` (created if needed); ``option`` is the command-line
    option that named the folder, which a refusal tells the user to change.

    Raises:
        OwnershipError: owned by another command or other settings, or not empty and unowned,
            without ``overwrite``.
        OSError: the folder cannot be created or written (read-only, under a regular file).
    """
    folder = Path(folder)
    record = {"command": command, "settings": _normal(settings)}
    owner = folder / OWNER_FILE
    again = f"choose another {option}, or pass --overwrite to let `t2mbench {command}` take it over"
    if owner.is_file() and not overwrite:
        try:
            held = read_json(owner)
        except (OSError, ValueError):
            held = {}
        if held == record:
            return folder
        if held.get("command") != command:
            raise OwnershipError(f"{folder} belongs to `t2mbench {held.get('command', '?')}`; {again}")
        theirs = held.get("settings", {})
        differ = sorted(k for k in set(theirs) | set(record["settings"]) if theirs.get(k) != record["settings"].get(k))
        shown = ", ".join(f"{k}={theirs.get(k)!r} here, {record['settings'].get(k)!r} now" for k in differ[:3])
        raise OwnershipError(f"{folder} holds a `t2mbench {command}` run with other settings ({shown}); {again}")
    if not owner.is_file() and folder.is_dir() and any(folder.iterdir()) and not overwrite:
        raise OwnershipError(f"{folder} is not empty and no t2mbench command owns it; {again}")
    if folder.exists() and not folder.is_dir():
        raise OwnershipError(f"{folder} is a file, not a folder; choose another {option}")
    write_json(owner, record)
    return folder
