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
    come from the heap, where they can fragment it. Measured on a 16-frame 448 x 448 x 64 series
    (peak RSS after frame 2 -> after frame 16): fixed at 1 MB (the inference default) 1510 -> 1510 MB;
    glibc's dynamic threshold 1580 -> 1617 MB; fixed at 64 MB, above the 49 MB frame, 1705 -> 1951 MB.
    Higher thresholds are faster (activations reused from the heap instead of fresh mmaps);
    ``docs/benchmarks.md`` prices the choice. ``None`` leaves malloc alone; on a system without
    glibc this does nothing.

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
