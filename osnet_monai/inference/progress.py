"""One progress bar for a whole segmentation job: frames of all files, with a total and an ETA."""

from __future__ import annotations

import sys
from collections import Counter
from typing import IO

from monai.utils import min_version, optional_import

Events, _ = optional_import("ignite.engine", "0.4.11", min_version, "Events")

__all__ = ["JobProgress"]


class JobProgress:
    """A tqdm bar over every frame of every file: frames exported of the job's total, files done,
    elapsed time and ETA, e.g. ``segment: 40%|####  | 12/30 [00:31<00:47, 2.6s/frame, files 1/3]``.

    The total is :meth:`TomogramStream.expected_frames`: header counts up front, exact as files
    open. Frames count once exported (:attr:`TomogramWriter.on_frame`), so the bar ends with the
    last file written, not with the last network call. Log lines go above the bar while it is
    shown (``tqdm.contrib.logging``); on anything but a terminal there is no bar.

    List it before the :class:`TomogramWriter` in the evaluator's handlers: its handler for a
    failed run then closes the bar before the writer's re-raises the error.

    Args:
        stream: the run's :class:`osnet_monai.inference.TomogramStream`.
        writer: the run's :class:`osnet_monai.inference.TomogramWriter`.
        enabled: None (default): shown when ``file`` is a terminal; True or False force it.
        file: where the bar goes. Defaults to ``sys.stderr``.
    """

    def __init__(self, stream, writer, enabled: bool | None = None, file: IO[str] | None = None) -> None:
        self.stream = stream
        self.writer = writer
        self.enabled = enabled
        self.file = file
        self.bar = None
        self._redirect = None
        self._exported: Counter = Counter()

    def attach(self, engine) -> None:
        engine.add_event_handler(Events.STARTED, self.open)
        engine.add_event_handler(Events.COMPLETED, self.close)
        engine.add_event_handler(Events.EXCEPTION_RAISED, self.abandon)
        self.writer.on_frame.append(self.frame_exported)

    def open(self, engine=None) -> None:
        from tqdm import tqdm
        from tqdm.contrib.logging import logging_redirect_tqdm

        file = self.file or sys.stderr
        shown = self.enabled if self.enabled is not None else bool(getattr(file, "isatty", lambda: False)())
        self._exported.clear()
        self.bar = tqdm(total=self.stream.expected_frames() if shown else None, desc="segment", unit="frame",
                        file=file, disable=not shown, dynamic_ncols=True)
        if shown:
            self._redirect = logging_redirect_tqdm()
            self._redirect.__enter__()
        self._show_files()

    def _files_done(self) -> int:
        counts = self.stream.frame_counts
        return sum(1 for path in self.stream.inputs
                   if path in self.stream.failures or (path in counts and self._exported[path] >= counts[path]))

    def _show_files(self) -> None:
        self.bar.set_postfix_str(f"files {self._files_done()}/{len(self.stream.inputs)}", refresh=False)

    def frame_exported(self, item: dict, written: bool) -> None:
        """The writer's ``on_frame``: one more frame of ``item["path"]`` done."""
        if self.bar is None or self.bar.disable:
            return
        self._exported[str(item["path"])] += 1
        self.bar.total = self.stream.expected_frames()
        self._show_files()
        self.bar.update(1)

    def close(self, engine=None) -> None:
        """The end of the run: once the writer has exported every frame, the bar's last state stays."""
        try:
            self.writer.drain()
            if self.bar is not None and not self.bar.disable:
                self.bar.total = self.stream.expected_frames()
                self._show_files()
        finally:
            self.abandon()

    def abandon(self, engine=None, error: Exception | None = None) -> None:
        """Closes the bar and gives the console back (the writer's handler raises the error)."""
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        if self._redirect is not None:
            self._redirect.__exit__(None, None, None)
            self._redirect = None
