"""Worker processes that die with their parent.

A pool worker whose parent is SIGKILLed would otherwise be re-parented and keep running (a killed
``corpus build --workers 2`` left two renderers going for over a minute). Pool initialisers call
:func:`die_with_parent`: on Linux the kernel sends the worker SIGKILL when its parent dies
(``prctl(PR_SET_PDEATHSIG)``), and a worker whose parent died before that was set exits at once.
A child program started with ``subprocess`` (the upstream parity runners) gets the same through
``preexec_fn=``:func:`child_dies_with_parent` ``()`` (the setting survives ``exec``).
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
from collections.abc import Callable

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def die_with_parent(parent_pid: int) -> None:
    """Make this process die when ``parent_pid`` (the process that started it) dies.

    Linux only; elsewhere a no-op (macOS and Windows pools are spawned and end with their pipes).
    """
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    if os.getppid() != parent_pid:  # the parent died between fork and prctl
        os._exit(1)


def child_dies_with_parent() -> Callable[[], None] | None:
    """A ``preexec_fn`` for :mod:`subprocess` that makes the child program die with this process
    (None off Linux). libc is opened here, in the parent, so the forked child only calls it."""
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    parent = os.getpid()

    def preexec() -> None:
        prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:
            os._exit(1)

    return preexec
