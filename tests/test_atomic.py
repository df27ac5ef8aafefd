"""atomic_output: a reader never sees half a file, and a failed write leaves the old file alone."""

from __future__ import annotations

import os

import pytest

from osnet_monai.atomic import atomic_output, temporary_sibling


def test_success_publishes_with_umask_permissions(tmp_path):
    target = tmp_path / "sub" / "table.csv"
    with atomic_output(target) as tmp:
        assert tmp.parent == target.parent and tmp.name.startswith(".") and not target.exists()
        tmp.write_text("a,b\n")
    assert target.read_text() == "a,b\n"
    umask = os.umask(0)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask
    assert [p.name for p in target.parent.iterdir()] == ["table.csv"]


@pytest.mark.parametrize("existing", [None, "old\n"])
def test_failure_keeps_previous_file_and_leaves_no_temporary(tmp_path, existing):
    target = tmp_path / "table.csv"
    if existing is not None:
        target.write_text(existing)
    with pytest.raises(RuntimeError), atomic_output(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("disk full")
    assert (target.read_text() if target.exists() else None) == existing
    assert [p.name for p in tmp_path.iterdir()] == ([] if existing is None else ["table.csv"])


def test_temporary_names_are_unique_siblings(tmp_path):
    names = {temporary_sibling(tmp_path / "x.nii.gz") for _ in range(50)}
    assert len(names) == 50 and all(n.parent == tmp_path for n in names)
