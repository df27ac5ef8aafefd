"""``segment`` killed with SIGKILL part-way, then ``segment --resume``: whole files only, the finished
input left alone, the rest segmented, no temporaries left."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import nibabel as nib
import numpy as np
import pytest

from osnet_monai.atomic import remove_stale_temporaries, temporary_sibling
from osnet_monai.inference import CompletedOutputs
from osnet_monai.phantoms import PRESETS, render_field, write_nifti

SPACING = (0.15, 0.15, 0.3)
NAMES = ("a", "b", "c")


def _segment(inputs, out, checkpoint, *extra):
    return [sys.executable, "-m", "osnet_monai.cli", "segment", str(inputs), "-o", str(out),
            "--model", str(checkpoint), "--threshold", "0.3", *extra]


@pytest.mark.slow
def test_killed_segment_resumes_without_redoing_finished_inputs(tmp_path, untrained_checkpoint):
    inputs, out = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    for seed, name in enumerate(NAMES):
        frames = [render_field(PRESETS["hx1"].replace(name="s", field_shape=(96, 80, 24)), seed=seed + k).image for k in range(3)]
        write_nifti(inputs / f"{name}.nii.gz", np.stack(frames, -1), SPACING, time_step_s=30.0, medium_ri=PRESETS["hx1"].medium_ri)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    run = subprocess.Popen(_segment(inputs, out, untrained_checkpoint), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 300
        while not (out / "a_quality.json").exists() and run.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert (out / "a_quality.json").exists(), "the first input was not finished within 300 s"
        time.sleep(0.5)  # into the second input
        run.send_signal(signal.SIGKILL)
    finally:
        run.kill()
        run.wait(timeout=60)
    assert run.returncode == -signal.SIGKILL
    # what has its final name is whole: every label file holds all 3 frames
    for path in out.glob("*.nii.gz"):
        assert np.asarray(nib.load(path).dataobj).shape[-1] == 3, path.name
    assert CompletedOutputs(out)(str(inputs / "a.nii.gz"))
    assert not CompletedOutputs(out)(str(inputs / "c.nii.gz"))
    finished = (out / "a_nucleus.nii.gz").stat().st_mtime_ns

    again = subprocess.run(_segment(inputs, out, untrained_checkpoint, "--resume"), env=env, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-2000:]
    lines = [line for line in again.stderr.replace("\r", "\n").splitlines() if line.strip() and "%|" not in line]
    assert lines[0] == f"{inputs / 'a.nii.gz'}: outputs already complete, not segmented again (resume)", lines
    assert (out / "a_nucleus.nii.gz").stat().st_mtime_ns == finished
    assert all(CompletedOutputs(out)(str(inputs / f"{name}.nii.gz")) for name in NAMES)
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]  # the killed run's temporaries are gone


def test_stale_temporaries_of_dead_processes_only_are_removed(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = int(dead.stdout)
    stale = tmp_path / f".a_nucleus.nii.gz.{pid}.0123abcd.tmp"
    stale.write_bytes(b"half")
    mine = temporary_sibling(tmp_path / "a_cell.nii.gz")
    mine.write_bytes(b"being written")
    other = tmp_path / f".b_nucleus.nii.gz.{pid}.0123abcd.tmp"
    other.write_bytes(b"half")
    removed = remove_stale_temporaries(tmp_path, lambda final: final.startswith("a_"))
    assert removed == [stale] and mine.exists() and other.exists()


def test_complete_outputs_need_the_settings_files_and_the_same_input(tmp_path):
    import json

    out = tmp_path / "out"
    out.mkdir()
    for suffix in ("_nucleus.nii.gz", "_cell.nii.gz", "_measurements.csv", "_overlay.png"):
        (out / f"x{suffix}").write_bytes(b"")
    (out / "x_quality.json").write_text(json.dumps({"path": str(tmp_path / "x.nii.gz"), "n_frames": 1}))
    assert CompletedOutputs(out)(str(tmp_path / "x.nii.gz"))
    assert not CompletedOutputs(out)(str(tmp_path / "elsewhere" / "x.nii.gz"))  # another input of that name
    assert not CompletedOutputs(out, save_prob=True)(str(tmp_path / "x.nii.gz"))
    assert not CompletedOutputs(out, output_format="ome-zarr")(str(tmp_path / "x.nii.gz"))
    assert CompletedOutputs(out, save_figures=False)(str(tmp_path / "x.nii.gz"))
    (out / "x_quality.json").write_text("{trunc")
    assert not CompletedOutputs(out)(str(tmp_path / "x.nii.gz"))


def _outputs(folder) -> dict[str, object]:
    """Every file of an output folder by name: label arrays, text of tables and tracks."""
    found = {}
    for path in sorted(folder.iterdir()):
        if path.name.endswith(".nii.gz"):
            found[path.name] = np.asarray(nib.load(path).dataobj)
        elif path.suffix in (".csv",):
            found[path.name] = path.read_text()
        else:
            found[path.name] = None  # present (run.json, report.html, quality: they record times and paths)
    return found


@pytest.mark.slow
def test_two_segment_processes_on_one_output_folder_write_whole_files(tmp_path, untrained_checkpoint):
    """Two users start ``segment`` on the same inputs into the same folder at once: both finish, and
    every output is a whole file equal to what one run alone writes (atomic renames, per-process
    temporaries); nothing half-written stays behind."""
    inputs = tmp_path / "in"
    inputs.mkdir()
    for seed, name in enumerate(NAMES):
        frames = [render_field(PRESETS["hx1"].replace(name="s", field_shape=(96, 80, 24)), seed=seed + k).image for k in range(2)]
        write_nifti(inputs / f"{name}.nii.gz", np.stack(frames, -1), SPACING, time_step_s=30.0, medium_ri=PRESETS["hx1"].medium_ri)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    alone = subprocess.run(_segment(inputs, tmp_path / "alone", untrained_checkpoint, "--no-figures"), env=env,
                           capture_output=True, text=True, timeout=600)
    assert alone.returncode == 0, alone.stderr[-2000:]
    shared = tmp_path / "shared"
    runs = [subprocess.Popen(_segment(inputs, shared, untrained_checkpoint, "--no-figures"), env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    for run in runs:
        _, err = run.communicate(timeout=600)
        assert run.returncode == 0, err[-2000:]
    expected, got = _outputs(tmp_path / "alone"), _outputs(shared)
    assert sorted(got) == sorted(expected)  # no temporaries (hidden names) left, nothing missing
    for name, value in expected.items():
        if isinstance(value, np.ndarray):
            np.testing.assert_array_equal(got[name], value, err_msg=name)
        elif value is not None:
            assert got[name] == value, name
