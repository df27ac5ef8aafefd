"""The one exception type that the readers and input checks raise for a user's bad file."""

from __future__ import annotations

import os

__all__ = ["InputError", "input_error"]


class InputError(ValueError):
    """A user's input file cannot be used; the message is one line that names the file and the problem.

    It subclasses ``ValueError`` so callers that already catch ``ValueError`` keep working.
    """


def _one_line(text: object, limit: int = 300) -> str:
    """Collapse an arbitrary (possibly multi-line, very long) message into one short line."""
    lines = [ln.strip() for ln in str(text).splitlines() if ln.strip()]
    line = lines[0] if lines else ""
    return line if len(line) <= limit else line[: limit - 3] + "..."


def input_error(path: str | os.PathLike | None, problem: str, cause: BaseException | None = None) -> InputError:
    """Build an :class:`InputError` reading ``"<path>: <problem>[ (<cause>)]"`` on a single line.

    Args:
        path: the user's file; ``None`` when the data did not come from a file.
        problem: what is wrong, phrased for the user.
        cause: the underlying library exception, summarised as ``Type: first line``.
    """
    where = os.fspath(path) if path is not None else "<array>"
    msg = f"{where}: {problem}"
    if cause is not None:
        msg += f" ({type(cause).__name__}: {_one_line(cause)})"
    return InputError(_one_line(msg, limit=600))
