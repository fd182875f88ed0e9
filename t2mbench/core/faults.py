"""Named pause points, so a test can kill a real process at an exact place (crash-safety tests).

Code that must survive a kill calls :func:`pause_point` with a name where a crash would hurt
(``generating``: after a denoising step; ``scoring``: generated audio written, scores not yet;
``store``: a store part written under its temporary name, not yet renamed). Unless the
environment variable ``T2MBENCH_PAUSE_AT`` is set this is one dictionary lookup.

``T2MBENCH_PAUSE_AT=NAME:N:FLAGFILE``: on the N-th visit (1-based) of point NAME this process
writes its pid to FLAGFILE and sleeps until it is killed. The test waits for FLAGFILE, then
sends SIGKILL, so the process dies exactly there, with no chance to clean up.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

ENV = "T2MBENCH_PAUSE_AT"
_visits: dict[str, int] = {}


def pause_point(name: str) -> None:
    """Pause here forever if ``T2MBENCH_PAUSE_AT`` names this point and visit (see the module doc)."""
    spec = os.environ.get(ENV)
    if not spec:
        return
    point, count, flag = spec.split(":", 2)
    if point != name:
        return
    _visits[name] = _visits.get(name, 0) + 1
    if _visits[name] != int(count):
        return
    Path(flag).write_text(str(os.getpid()))
    while True:  # until the test's SIGKILL
        time.sleep(1)
