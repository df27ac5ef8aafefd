"""What third-party libraries say while one file is read, kept off the console.

numpy, nibabel, h5py, tifffile and MONAI report trouble in a file as Python warnings or log records
(tifffile: "invalid page offset", "ImageJ series metadata invalid or corrupted file"; nibabel:
"pixdim[1,2,3] should be positive", printed by its own handler; numpy: "overflow encountered"),
printed around the project's one line per file and naming no file. While a file is read they are
collected here instead: a refused file names the most severe of them inside its one-line
:class:`InputError`; an accepted file's are logged at DEBUG on ``osnet_monai.readers`` (a log
configured at DEBUG keeps them, the console stays silent).

Reading may run on a thread ahead of the network (``segment`` prefetches frames), so nothing here
swaps process-wide state for the duration of a read: a warnings hook and logger filters are
installed once and collect only what the reading thread says; other threads' warnings and records
pass through untouched.
"""

from __future__ import annotations

import logging
import os
import re
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

#: loggers of the libraries the readers call; what they log in a reading thread is collected
LIBRARY_LOGGERS: tuple[str, ...] = ("tifffile", "nibabel", "nibabel.global", "h5py", "monai.data")

logger = logging.getLogger("osnet_monai.readers")
_active = threading.local()
_install_lock = threading.Lock()
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


def _collecting() -> LibraryMessages | None:
    return getattr(_active, "messages", None)


class _CollectInReadingThread(logging.Filter):
    """A logger filter: in a thread reading a file, the record is collected and goes no further
    (not to the logger's own handlers, nor up to the root's); elsewhere it passes."""

    def filter(self, record: logging.LogRecord) -> bool:
        messages = _collecting()
        if messages is None:
            return True
        messages.add(record.name.split(".")[0], record.levelno, record.getMessage())
        return False


_FILTER = _CollectInReadingThread()


def _library_of(filename: str | None) -> str:
    """``"tifffile"`` for a warning raised in ``.../site-packages/tifffile/...``; numpy's floating-point
    warnings point at the caller's line, so they come out as the calling package."""
    parts = (filename or "").replace(os.sep, "/").split("/")
    for anchor in ("site-packages", "dist-packages"):
        if anchor in parts and parts.index(anchor) + 1 < len(parts):
            return parts[parts.index(anchor) + 1].removesuffix(".py")
    return "osnet_monai" if "osnet_monai" in parts else "python"


def _hook(shown_by: Callable) -> Callable:
    """A ``warnings.showwarning`` that collects in a reading thread and calls ``shown_by`` elsewhere.

    One hook per previous ``showwarning``: ``warnings.catch_warnings`` restores the one it found on
    exit, and that one must still show warnings where they went before.
    """

    def showwarning(message, category, filename, lineno, file=None, line=None) -> None:
        messages = _collecting()
        if messages is None:
            shown_by(message, category, filename, lineno, file, line)
            return
        messages.add(_library_of(filename), logging.WARNING, f"{category.__name__}: {message}")

    showwarning.osnet_readers_hook = True  # type: ignore[attr-defined]
    return showwarning


def _install() -> None:
    """Puts the hooks in place (again, when ``warnings.catch_warnings`` put another ``showwarning``)."""
    with _install_lock:
        if not getattr(warnings.showwarning, "osnet_readers_hook", False):
            warnings.showwarning = _hook(warnings.showwarning)
        prefixes = ("tifffile", "nibabel", "h5py", "monai.data")
        names = set(LIBRARY_LOGGERS) | {n for n in logging.root.manager.loggerDict if n.startswith(prefixes)}
        for name in names:
            lg = logging.getLogger(name)
            if _FILTER not in lg.filters:
                lg.addFilter(_FILTER)


def _fold(err: InputError, messages: LibraryMessages) -> InputError:
    said = messages.first()
    if said is None or said.split(": ", 1)[1][:60] in str(err):
        return err
    folded = InputError(_one_line(f"{err}; {said}", limit=600))
    folded.__cause__ = err.__cause__
    return folded


@contextmanager
def library_messages(path: str | os.PathLike | None) -> Iterator[LibraryMessages]:
    """Collects the libraries' warnings and log records while this thread reads ``path``.

    Re-entrant: an inner use (a reader called by :func:`~osnet_monai.readers.load_tomogram`) shares
    the outer one's messages, so a file's messages are folded or logged once.

    Raises:
        InputError: the body's, with the most severe library message appended when it does not
            already say it.
    """
    outer = _collecting()
    if outer is not None:
        yield outer
        return
    _install()
    messages = LibraryMessages()
    _active.messages = messages
    try:
        yield messages
    except InputError as err:
        raise _fold(err, messages) from err.__cause__
    finally:
        _active.messages = None
    for source, level, text in messages.records:
        logger.debug("%s: %s said (%s): %s", os.fspath(path) if path is not None else "<array>", source,
                     logging.getLevelName(level), text)


#: lines ITK's readers write to std::cerr (MetaIO, ITK's own warnings and errors)
_ITK_LINE = re.compile(
    r"^(Meta\w*\s?[:(]|M_\w+|MET_\w+|WARNING: In |ERROR: In |Description: |itk::|Uncompress failed"
    r"|.* required and not defined|.* failed on column|Incomplete file record)"
)
_stderr_lock = threading.Lock()


@contextmanager
def c_library_stderr(messages: LibraryMessages, source: str) -> Iterator[None]:
    """Collects what a C++ library (ITK) writes straight to file descriptor 2 during the block:
    MetaIO prints "data not read completely" and the like to ``std::cerr``, out of Python's reach.

    File descriptor 2 is the process's: another thread's output in the meantime (a progress bar,
    a logged line) is written back after the block, unchanged; only lines shaped like ITK's are
    kept back and collected, and every line when the block failed (the read takes milliseconds,
    and MetaIO has more messages than any list).
    """
    with _stderr_lock:
        sys.stderr.flush()
        with tempfile.TemporaryFile() as sink:
            saved = os.dup(2)
            os.dup2(sink.fileno(), 2)
            failed = True
            try:
                yield
                failed = False
            finally:
                sys.stderr.flush()
                os.dup2(saved, 2)
                os.close(saved)
                sink.seek(0)
                others = []
                for line in sink.read().decode("utf-8", "replace").splitlines(keepends=True):
                    if failed or _ITK_LINE.match(line):
                        messages.add(source, logging.WARNING, line)
                    else:
                        others.append(line)
                if others:
                    os.write(2, "".join(others).encode())


def quietly(path: str | os.PathLike | None, read: Callable[..., T]) -> Callable[..., T]:
    """``read`` wrapped in :func:`library_messages` for ``path``: for readers called later (a frame)."""

    def wrapped(*args, **kwargs) -> T:
        with library_messages(path):
            return read(*args, **kwargs)

    return wrapped
