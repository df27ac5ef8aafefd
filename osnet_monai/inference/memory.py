"""Keeping a long time-lapse's peak memory flat: glibc's dynamic mmap threshold, fixed."""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

__all__ = ["fix_malloc_mmap_threshold"]

M_MMAP_THRESHOLD = -3  # glibc mallopt parameter

logger = logging.getLogger(__name__)


def fix_malloc_mmap_threshold(nbytes: int | None = 1 << 20) -> bool:
    """Serves allocations of ``nbytes`` and more with mmap, returned to the system when freed.

    glibc raises its mmap threshold each time a large block is freed, so frame-sized arrays then
    come from the heap, which fragments: measured here, peak RSS of a 4D series grew by one frame
    for every few frames (1010 MB at 2 frames, 1243 MB at 6). A fixed threshold stops that; at
    1 MB (the inference default) peak RSS stayed flat (913 MB at 2 frames, 912 MB at 6). Higher
    values are faster (activations reused from the heap instead of fresh mmaps: an 8-frame
    448 x 448 x 64 series in 32 s at 64 MB against 46 s at 1 MB) but let memory grow again
    (1711, 2136, 3454 MB at 2, 8, 16 frames at 64 MB); ``docs/benchmarks.md`` prices the choice.
    ``None`` leaves malloc alone; on a system without glibc this does nothing.

    Returns:
        whether the threshold was set.
    """
    if nbytes is None:
        return False
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        ok = bool(libc.mallopt(M_MMAP_THRESHOLD, int(nbytes)))
    except (OSError, AttributeError, TypeError):
        ok = False
    if not ok:
        logger.debug("mallopt(M_MMAP_THRESHOLD) is not available; malloc left as it is.")
    return ok
