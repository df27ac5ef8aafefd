"""Streaming and sharding: 4D memory flat in the number of frames; torchrun ranks split files, same outputs."""

from __future__ import annotations

import os
import subprocess
import sys

import nibabel as nib
import numpy as np
import pytest

from osnet_monai.phantoms import PRESETS, render_field, write_nifti

from helpers import REPO_ROOT

SPACING = (0.15, 0.15, 0.3)

def test_4d_series_streams_with_a_fixed_number_of_frames_in_flight(tmp_path, untrained_checkpoint, monkeypatch):
    """Bounded memory by construction: serially frame t+1 is read only after frame t is written;
    overlapped (inference.json's default: reading one frame ahead, exporting on a thread) at most
    three frames are between read and written, however long the series, and the outputs are the
    same (peak RSS against frame count: scripts/benchmark.py)."""
    from osnet_monai.inference import stream as stream_module
    from osnet_monai.inference import writer as writer_module
    from osnet_monai.inference.cli import segment

    events = []
    open_frames = stream_module.open_frames

    def logging_open_frames(path, *args, **kwargs):
        source = open_frames(path, *args, **kwargs)
        read = source.read

        def logged_read(t):
            events.append(("read", t))
            return read(t)

        source.read = logged_read
        return source

    write_frame = writer_module.TomogramWriter.write_frame

    def logged_write(self, item):
        write_frame(self, item)
        events.append(("written", int(item["frame"])))

    monkeypatch.setattr(stream_module, "open_frames", logging_open_frames)
    monkeypatch.setattr(writer_module.TomogramWriter, "write_frame", logged_write)
    field = render_field(PRESETS["hx1"].replace(name="m", field_shape=(96, 80, 24)), seed=1, frames=6)
    image = write_nifti(tmp_path / "series.nii.gz", field.image, SPACING, time_step_s=60.0)
    common = dict(ckpt_path=str(untrained_checkpoint), save_figures=False)
    assert segment([str(image)], tmp_path / "serial", export_workers=0, prefetch_frames=0, **common) == 0
    assert events == [(kind, t) for t in range(6) for kind in ("read", "written")]
    events.clear()
    assert segment([str(image)], tmp_path / "overlap", **common) == 0
    assert [e for e in events if e[0] == "written"] == [("written", t) for t in range(6)]
    in_flight = np.cumsum([1 if kind == "read" else -1 for kind, _ in events])
    assert in_flight.max() <= 3 and in_flight[-1] == 0
    assert in_flight.max() > 1  # reading ran ahead of writing: the stages did overlap
    serial, overlapped = (np.asarray(nib.load(tmp_path / out / "series_nucleus.nii.gz").dataobj) for out in ("serial", "overlap"))
    assert serial.shape == field.image.shape
    np.testing.assert_array_equal(serial, overlapped)
    assert (tmp_path / "serial" / "series_measurements.csv").read_text() == (tmp_path / "overlap" / "series_measurements.csv").read_text()


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
    # a sharded run leaves the report to one command afterwards: no rank knows when the others finish
    assert not (tmp_path / "sharded" / "report.html").exists()
    names = sorted(p.name for p in (tmp_path / "single").iterdir() if p.name not in ("report.html", "run.json"))
    assert names == sorted(p.name for p in (tmp_path / "sharded").iterdir())
    assert len([n for n in names if n.endswith("_nucleus.nii.gz")]) == 3
    for name in names:
        a, b = tmp_path / "single" / name, tmp_path / "sharded" / name
        if name.endswith(".nii.gz"):
            np.testing.assert_array_equal(np.asarray(nib.load(a).dataobj), np.asarray(nib.load(b).dataobj))
        else:
            assert a.read_text() == b.read_text()
