"""Writing files so that nobody ever sees half of one: a temporary name, renamed when complete."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["temporary_sibling", "publish", "publish_tree", "atomic_output"]


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
