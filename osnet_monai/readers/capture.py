"""What third-party libraries say while one file is read, kept off the console.

numpy, nibabel, h5py, tifffile and MONAI report trouble in a file as Python warnings or log records
(tifffile: "invalid page offset", "ImageJ series metadata invalid or corrupted file"; numpy:
"overflow encountered"), printed around the project's one line per file and naming no file. While
a file is read they are collected here instead: a refused file names the first of them inside its
one-line :class:`InputError`; an accepted file's are logged at DEBUG on ``osnet_monai.readers``
(a log configured at DEBUG keeps them, the console stays silent).
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
import threading
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TypeVar

from .errors import InputError, _one_line

__all__ = ["LIBRARY_LOGGERS", "LibraryMessages", "c_library_stderr", "library_messages", "quietly"]

#: loggers of the libraries the readers call; their records are collected while a file is read
LIBRARY_LOGGERS: tuple[str, ...] = ("tifffile", "nibabel", "nibabel.global", "h5py", "monai.data")

logger = logging.getLogger("osnet_monai.readers")
_active = threading.local()
T = TypeVar("T")


@dataclass
class LibraryMessages:
    """The messages collected while one file is read: ``(source, level, text)`` in the order said."""

    records: list[tuple[str, int, str]] = field(default_factory=list)

    def add(self, source: str, level: int, text: object) -> None:
        line = _one_line(text, limit=200)
        if line and all(line != r[2] for r in self.records):  # tifffile repeats itself per access
            self.records.append((source, level, line))

    def at_least(self, level: int, source: str | None = None) -> list[str]:
        """Texts said at ``level`` or above (by ``source``'s logger only, when given)."""
        return [t for s, lv, t in self.records if lv >= level and (source is None or s == source)]

    def first(self) -> str | None:
        """The most severe message (the first of them): what a refusal quotes."""
        if not self.records:
            return None
        source, _, text = max(self.records, key=lambda r: r[1])  # max keeps the first among equals
        return f"{source}: {text}"


class _Collect(logging.Handler):
    def __init__(self, messages: LibraryMessages) -> None:
        super().__init__(level=logging.DEBUG)
        self.messages = messages

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.add(record.name.split(".")[0], record.levelno, record.getMessage())


def _fold(err: InputError, messages: LibraryMessages) -> InputError:
    said = messages.first()
    if said is None or said.split(": ", 1)[1][:60] in str(err):
        return err
    folded = InputError(_one_line(f"{err}; {said}", limit=600))
    folded.__cause__ = err.__cause__
    return folded


@contextmanager
def library_messages(path: str | os.PathLike | None) -> Iterator[LibraryMessages]:
    """Collects the libraries' warnings and log records while ``path`` is read.

    Re-entrant: an inner use (a reader called by :func:`~osnet_monai.readers.load_tomogram`) shares
    the outer one's messages, so a file's messages are folded or logged once.

    Raises:
        InputError: the body's, with the most severe library message appended when it does not
            already say it.
    """
    outer = getattr(_active, "messages", None)
    if outer is not None:
        yield outer
        return
    messages = LibraryMessages()
    handler = _Collect(messages)
    loggers = [logging.getLogger(name) for name in LIBRARY_LOGGERS]
    saved = [(lg.handlers, lg.propagate) for lg in loggers]
    _active.messages = messages
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            for lg in loggers:  # their own handlers too: nibabel.global prints header fixes to stderr itself
                lg.handlers, lg.propagate = [handler], False
            try:
                yield messages
            except InputError as err:
                _add_warnings(messages, caught)
                raise _fold(err, messages) from err.__cause__
            finally:
                for lg, (handlers, flag) in zip(loggers, saved):
                    lg.handlers, lg.propagate = handlers, flag
            _add_warnings(messages, caught)
    finally:
        _active.messages = None
    for source, level, text in messages.records:
        logger.debug("%s: %s said (%s): %s", os.fspath(path) if path is not None else "<array>", source,
                     logging.getLevelName(level), text)


@contextmanager
def c_library_stderr(messages: LibraryMessages, source: str) -> Iterator[None]:
    """Collects what a C/C++ library writes straight to file descriptor 2 during the block (ITK's
    MetaIO and NRRD readers print "data not read completely" and the like to ``std::cerr``)."""
    sys.stderr.flush()
    with tempfile.TemporaryFile() as sink:
        saved = os.dup(2)
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            for line in sink.read().decode("utf-8", "replace").splitlines():
                messages.add(source, logging.WARNING, line)


def _add_warnings(messages: LibraryMessages, caught: list[warnings.WarningMessage]) -> None:
    for w in caught:
        messages.add(_library_of(w.filename), logging.WARNING, f"{w.category.__name__}: {w.message}")
    caught.clear()


def _library_of(filename: str | None) -> str:
    """``"tifffile"`` for a warning raised in ``.../site-packages/tifffile/...``; numpy's floating-point
    warnings point at the caller's line, so they come out as the calling package."""
    parts = (filename or "").replace(os.sep, "/").split("/")
    for anchor in ("site-packages", "dist-packages"):
        if anchor in parts and parts.index(anchor) + 1 < len(parts):
            return parts[parts.index(anchor) + 1].removesuffix(".py")
    return "osnet_monai" if "osnet_monai" in parts else "python"


def quietly(path: str | os.PathLike | None, read: Callable[..., T]) -> Callable[..., T]:
    """``read`` wrapped in :func:`library_messages` for ``path``: for readers called later (a frame)."""

    def wrapped(*args, **kwargs) -> T:
        with library_messages(path):
            return read(*args, **kwargs)

    return wrapped
