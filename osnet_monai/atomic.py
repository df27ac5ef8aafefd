"""Writing files so that nobody ever sees half of one: a temporary name, renamed when complete."""

from __future__ import annotations

import os
import re
import shutil
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["temporary_sibling", "publish", "publish_tree", "atomic_output", "remove_stale_temporaries"]

_TEMPORARY = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)\.[0-9a-f]{8}\.tmp$")


def temporary_sibling(path: str | os.PathLike) -> Path:
    """A hidden, unique name in ``path``'s folder (created if missing); same file system, so the
    final rename is atomic."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")


def publish(tmp: str | os.PathLike, path: str | os.PathLike) -> Path:
    """Gives ``tmp`` the usual permissions (umask) and renames it onto ``path``."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    os.replace(tmp, path)
    return Path(path)


def publish_tree(tmp: str | os.PathLike, path: str | os.PathLike) -> Path:
    """Renames the folder ``tmp`` onto ``path`` (a store such as ``NAME.ome.zarr``), replacing a
    previous ``path``: the old one goes first, so readers see the old folder, none, or the new one."""
    path = Path(path)
    if path.exists():
        old = temporary_sibling(path)
        os.replace(path, old)
        shutil.rmtree(old)
    os.replace(tmp, path)
    return path


@contextmanager
def atomic_output(path: str | os.PathLike) -> Iterator[Path]:
    """Yields a temporary path to write; on success it becomes ``path``, on any error it is removed
    and a previous ``path`` is left untouched.

    Examples::

        with atomic_output("nuclei.csv") as tmp:
            tmp.write_text("...")
    """
    tmp = temporary_sibling(path)
    try:
        yield tmp
        publish(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def remove_stale_temporaries(folder: str | os.PathLike, belongs: Callable[[str], bool]) -> list[Path]:
    """Removes the temporaries (:func:`temporary_sibling`) in ``folder`` whose final name satisfies
    ``belongs`` and whose writing process is gone (killed part-way); returns what was removed.
    Processes are looked up on this machine: two machines writing one shared folder are not told apart."""
    removed = []
    folder = Path(folder)
    if not folder.is_dir():
        return removed
    for entry in folder.iterdir():
        match = _TEMPORARY.match(entry.name)
        if match and belongs(match["name"]) and int(match["pid"]) != os.getpid() and not _alive(int(match["pid"])):
            if entry.is_dir():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
            removed.append(entry)
    return removed
