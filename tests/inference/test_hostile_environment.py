"""Issue 17 item 4: a full disk and a read-only output folder, on real (tmpfs) mounts.

Each case mounts a small tmpfs (root and the mount capability needed: elsewhere the tests skip with
the reason) and runs ``osnet-monai segment`` into it as a user would. The promise: a clear line per
problem naming the file, a non-zero exit, no traceback, and no output of a tomogram under a final
name unless all of that tomogram's outputs are there.
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

import pytest


def _mount_tmpfs(where: Path, size: str, read_only: bool = False) -> None:
    where.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip() or done.returncode}): needs root and CAP_SYS_ADMIN")
    if read_only:
        subprocess.run(["mount", "-o", "remount,ro", str(where)], check=True, capture_output=True)


@pytest.fixture
def small_mount(tmp_path):
    mounted: list[Path] = []

    def mount(size: str, read_only: bool = False) -> Path:
        where = tmp_path / f"mnt-{uuid.uuid4().hex[:8]}"
        _mount_tmpfs(where, size, read_only)
        mounted.append(where)
        return where

    yield mount
    for where in mounted:
        subprocess.run(["umount", "-l", str(where)], capture_output=True)


@pytest.fixture(scope="module")
def small_tomogram(tmp_path_factory) -> Path:
    from osnet_monai.phantoms import PRESETS, render_field, write_nifti

    field = render_field(PRESETS["hx1"].replace(name="hostile_small", field_shape=(96, 80, 24)), seed=0)
    return write_nifti(tmp_path_factory.mktemp("in") / "cell.nii.gz", field.image, (0.15, 0.15, 0.3),
                       medium_ri=PRESETS["hx1"].medium_ri)


def _segment(image: Path, out: Path, checkpoint: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "osnet_monai.cli", "segment", str(image), "-o", str(out),
                           "--model", str(checkpoint)], capture_output=True, text=True, timeout=600)


def test_a_full_disk_keeps_no_outputs_of_the_tomogram(small_tomogram, small_mount, untrained_checkpoint):
    """24 kB fit the label files but not the measurements and figures: the file is reported, its label
    files (complete by then) are removed again, nothing half-written stays."""
    out = small_mount("24k") / "out"
    done = _segment(small_tomogram, out, untrained_checkpoint)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    assert f"{small_tomogram}: outputs could not be written (OSError: [Errno 28] No space left on device)" in done.stderr
    left = sorted(p.name for p in out.iterdir()) if out.exists() else []
    assert not [name for name in left if name.startswith("cell")], left  # no output of the tomogram
    assert not [name for name in left if name.startswith(".")], left  # no temporaries


def test_a_read_only_output_folder_is_one_line_per_problem(small_tomogram, small_mount, untrained_checkpoint):
    out = small_mount("1m", read_only=True) / "out"
    done = _segment(small_tomogram, out, untrained_checkpoint)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    assert f"{small_tomogram}: outputs could not be written (OSError: [Errno 30] Read-only file system" in done.stderr
    assert f"{out / 'report.html'}: report not written (OSError: Read-only file system)" in done.stderr
    assert "1 of 1 input(s) failed" in done.stderr
    assert not out.exists()


@pytest.mark.parametrize("name", ["series.nii.gz", "series.TCF"])
def test_an_input_removed_while_being_read_is_one_line(tmp_path, name):
    """Frames are read one at a time: a series deleted after its first frame gives one line naming it
    and what happened, and the stream goes on (the writer then keeps none of its outputs)."""
    import os

    import numpy as np

    from osnet_monai.inference import TomogramStream
    from osnet_monai.phantoms import write_nifti, write_tcf

    series = (1.337 + 0.02 * np.random.default_rng(0).random((32, 32, 8, 4))).astype(np.float32)
    path = tmp_path / name
    if name.endswith(".TCF"):
        write_tcf(path, np.transpose(series, (3, 2, 1, 0)), (0.2, 0.2, 0.4), 60.0)
    else:
        write_nifti(path, series, (0.2, 0.2, 0.4), 60.0, 1.337)
    other = write_nifti(tmp_path / "other.nii.gz", series[..., 0], (0.2, 0.2, 0.4), None, 1.337)
    stream = TomogramStream([str(path), str(other)])
    items = iter(stream)
    first = next(items)
    os.remove(path)
    rest = list(items)
    assert first["frame"] == 0 and [item["path"] for item in rest] == [str(other)]
    assert stream.failures == {str(path): f"{path}: frame 1 cannot be read: the file was removed or moved while being read"}
