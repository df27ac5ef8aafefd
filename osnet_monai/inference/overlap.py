"""Overlapping inference's stages on threads: reading ahead of the network, exporting behind it.

The network releases Python's lock while it computes, and so do reading (zlib), numpy and most of
scipy: a thread on each side keeps the network fed and lets post-processing, measuring and
writing run while the next frame is segmented, as nnU-Net exports cases while predicting the
next. Both hand over one item at a time, so memory stays a fixed number of frames however long
the series; both hand errors back to the caller's thread, where they are raised.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any

__all__ = ["BackgroundWorker", "prefetch"]

_END = object()


class _Raised:
    def __init__(self, error: BaseException) -> None:
        self.error = error


def prefetch(items: Iterable, depth: int = 1, name: str = "osnet-prefetch") -> Iterator:
    """Yields ``items`` in order, produced ``depth`` items ahead on a thread (0: in the caller's thread).

    The producer starts item k + depth only once the caller has taken item k, so at most ``depth``
    items exist beyond the one in use. An exception in the producer is raised in the caller when it
    reaches it; closing this generator early stops the producer after the item it is making.

    Examples:
        >>> list(prefetch(range(5), depth=1))
        [0, 1, 2, 3, 4]
    """
    if depth < 0:
        raise ValueError(f"depth must be >= 0, got {depth}.")
    if depth == 0:
        yield from items
        return
    handoff: queue.SimpleQueue = queue.SimpleQueue()
    free = threading.Semaphore(depth)
    stop = threading.Event()

    def produce() -> None:
        source = iter(items)
        try:
            while True:
                free.acquire()
                if stop.is_set():
                    return
                item = next(source, _END)
                handoff.put(item)
                if item is _END:
                    return
        except BaseException as err:  # noqa: BLE001 - handed to the caller's thread
            handoff.put(_Raised(err))
        finally:
            close = getattr(source, "close", None)
            if close is not None:
                close()

    producer = threading.Thread(target=produce, name=name, daemon=True)
    producer.start()
    try:
        while True:
            item = handoff.get()
            free.release()  # the next one is made while the caller uses this one
            if item is _END:
                return
            if isinstance(item, _Raised):
                raise item.error
            yield item
    finally:
        stop.set()
        free.release()  # a producer waiting for room sees the stop
        producer.join()


class BackgroundWorker:
    """Runs ``fn(item)`` for each submitted item on one thread, in submission order.

    :meth:`submit` returns once the thread is free to start on the item, so one item is worked
    on while the caller prepares the next, and no more. An exception in ``fn`` is raised in the
    caller at its next :meth:`submit` or at :meth:`close`; items already handed over by then are
    dropped.

    Args:
        fn: the work for one item.
        name: the thread's name.

    Examples:
        >>> done = []
        >>> worker = BackgroundWorker(done.append)
        >>> for i in range(3):
        ...     worker.submit(i)
        >>> worker.close()
        >>> done
        [0, 1, 2]
    """

    def __init__(self, fn: Callable[[Any], None], name: str = "osnet-export") -> None:
        self._fn = fn
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._free = threading.Semaphore(1)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _END:
                return
            try:
                if self._error is None:
                    self._fn(item)
            except BaseException as err:  # noqa: BLE001 - handed to the caller's thread
                self._error = err
            finally:
                self._free.release()

    def _raise(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def submit(self, item: Any) -> None:
        """Hands ``item`` to the thread once it has finished the previous one."""
        self._free.acquire()
        try:
            self._raise()
        except BaseException:
            self._free.release()
            raise
        self._queue.put(item)

    def close(self) -> None:
        """Waits for the submitted items, ends the thread and raises an error it met."""
        if self._thread.is_alive():
            self._queue.put(_END)
            self._thread.join()
        self._raise()
