"""glibc malloc settings for tensor-sized allocations (Linux; a no-op elsewhere).

glibc serves every allocation above its mmap threshold (128 KiB at start, at most 32 MiB as it
adapts) with a fresh ``mmap`` and returns it with ``munmap`` when freed, so each new activation
tensor of that size is paid again in page faults. PyTorch's CPU tensors come from ``malloc``,
so keeping freed blocks in the heap lets later tensors of the same size reuse them, with fewer
page faults (tests/core/test_allocator.py) and faster passes over activation-sized tensors
(docs/timing_history.md). The cost: a process keeps its peak heap resident until it exits.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

# mallopt(3) parameter numbers (glibc's malloc.h)
M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD = -1, -2, -3
MMAP_THRESHOLD = 1 << 30  # serve allocations up to 1 GiB from the heap
TRIM_THRESHOLD = (1 << 31) - 1  # return freed heap top to the OS only past 2 GiB (mallopt takes a C int)
TOP_PAD = 256 << 20  # grow the heap 256 MiB at a time


def tune_allocator() -> bool:
    """Apply the settings above through ``mallopt``; True when glibc accepted all three."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl and other libcs have no mallopt
        return False
    settings = ((M_MMAP_THRESHOLD, MMAP_THRESHOLD), (M_TRIM_THRESHOLD, TRIM_THRESHOLD), (M_TOP_PAD, TOP_PAD))
    return all(mallopt(param, value) == 1 for param, value in settings)
