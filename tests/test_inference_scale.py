"""Streaming and sharding: 4D memory flat in the number of frames; torchrun ranks split files, same outputs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from osnet_monai.phantoms import PRESETS, render_field, write_nifti

from conftest import REPO_ROOT

SPACING = (0.15, 0.15, 0.3)

PEAK_RSS = """
import resource, sys
from osnet_monai.inference.cli import segment
status = segment([sys.argv[1]], sys.argv[2], ckpt_path=sys.argv[3], save_figures=False)
print("PEAK_KB", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
sys.exit(status)
"""




def peak_rss_mb(image: Path, out: Path, checkpoint: Path) -> float:
    result = subprocess.run(
        [sys.executable, "-c", PEAK_RSS, str(image), str(out), str(checkpoint)],
        capture_output=True, text=True, timeout=600, cwd=REPO_ROOT, env={**os.environ, "OMP_NUM_THREADS": "2"},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return int(result.stdout.split("PEAK_KB")[-1]) / 1024


@pytest.mark.slow
def test_4d_peak_memory_does_not_grow_with_frames(tmp_path, untrained_checkpoint):
    frame = render_field(PRESETS["hx1"].replace(name="m", field_shape=(256, 256, 40)), seed=1).image
    frame_mb = frame.nbytes / 2**20
    peaks = {}
    for frames in (2, 10):
        series = np.stack([np.roll(frame, 3 * t, axis=0) for t in range(frames)], axis=-1)
        image = write_nifti(tmp_path / f"series{frames}.nii.gz", series, SPACING, time_step_s=60.0)
        peaks[frames] = peak_rss_mb(image, tmp_path / f"out{frames}", untrained_checkpoint)
        assert nib.load(tmp_path / f"out{frames}" / f"series{frames}_nucleus.nii.gz").shape[-1] == frames
    # loading the series whole would add 8 more frames (and their derived copies) to the peak
    assert peaks[10] - peaks[2] < frame_mb, (peaks, frame_mb)


@pytest.mark.slow
def test_torchrun_shards_files_with_identical_outputs(tmp_path, untrained_checkpoint):
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(3):
        field = render_field(PRESETS["hx1"].replace(name="s", field_shape=(96, 80, 24)), seed=i)
        write_nifti(folder / f"cell{i}.nii.gz", field.image, SPACING)
    common = ["--config_file", "bundle/configs/inference.json", "--dataset_dir", str(folder),
              "--ckpt_path", str(untrained_checkpoint), "--save_figures", "False"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    single = subprocess.run([sys.executable, "-m", "monai.bundle", "run", *common, "--output_dir", str(tmp_path / "single")],
                            cwd=REPO_ROOT, capture_output=True, text=True, timeout=600, env=env)
    assert single.returncode == 0, single.stderr[-2000:]
    sharded = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "monai.bundle", "run",
         *common, "--output_dir", str(tmp_path / "sharded")],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=600, env=env,
    )
    assert sharded.returncode == 0, sharded.stderr[-2000:]
    names = sorted(p.name for p in (tmp_path / "single").iterdir())
    assert names == sorted(p.name for p in (tmp_path / "sharded").iterdir())
    assert len([n for n in names if n.endswith("_nucleus.nii.gz")]) == 3
    for name in names:
        a, b = tmp_path / "single" / name, tmp_path / "sharded" / name
        if name.endswith(".nii.gz"):
            np.testing.assert_array_equal(np.asarray(nib.load(a).dataobj), np.asarray(nib.load(b).dataobj))
        else:
            assert a.read_text() == b.read_text()
