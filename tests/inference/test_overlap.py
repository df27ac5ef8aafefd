"""Overlapped inference: reading ahead, exporting on a thread, the job's progress bar. The outputs
equal the serial path's, errors reach the caller, and frames in flight stay bounded."""

from __future__ import annotations

import csv
import io
import threading
import time

import nibabel as nib
import numpy as np
import pytest
import torch

from monai.data import MetaTensor

from osnet_monai.inference import BackgroundWorker, JobProgress, TomogramStream, TomogramWriter, prefetch
from osnet_monai.phantoms import PRESETS, render_field, write_nifti

SPACING = (0.15, 0.15, 0.3)


def test_prefetch_keeps_order_and_reads_one_item_ahead():
    made, taken = [], []

    def items():
        for i in range(6):
            made.append(i)
            yield i

    for item in prefetch(items(), depth=1):
        time.sleep(0.01)  # the producer has time to run ahead, if it could
        assert made[-1] <= item + 1  # never more than one item beyond the one in use
        taken.append(item)
    assert taken == list(range(6))


def test_prefetch_raises_the_producers_error_in_the_caller_and_stops_when_closed():
    def failing():
        yield 1
        raise KeyError("broken file")

    with pytest.raises(KeyError, match="broken file"):
        list(prefetch(failing(), depth=1))
    made = []

    def endless():
        for i in range(1000):
            made.append(i)
            yield i

    stream = prefetch(endless(), depth=2)
    assert [next(stream) for _ in range(3)] == [0, 1, 2]
    stream.close()
    assert len(made) <= 5 and not [t for t in threading.enumerate() if t.name == "osnet-prefetch"]


def test_background_worker_runs_in_order_and_raises_in_the_caller():
    seen = []

    def work(item):
        if item == 2:
            raise ValueError("frame 2")
        seen.append((item, threading.current_thread().name))

    worker = BackgroundWorker(work)
    worker.submit(0)
    worker.submit(1)
    worker.submit(2)
    with pytest.raises(ValueError, match="frame 2"):
        worker.close()
    assert seen == [(0, "osnet-export"), (1, "osnet-export")]


@pytest.fixture(scope="module")
def series(tmp_path_factory):
    """Two phantom files (3 frames, 1 frame) and their truth labels: path -> label (X, Y, Z, T)."""
    folder = tmp_path_factory.mktemp("series")
    made = {}
    for name, frames, seed in (("a", 3, 1), ("b", 1, 2)):
        field = render_field(PRESETS["hx1"].replace(name=name, field_shape=(64, 56, 16)), seed=seed, frames=frames)
        label = field.label if field.label.ndim == 4 else field.label[..., None]
        made[str(write_nifti(folder / f"{name}.nii.gz", field.image, SPACING, time_step_s=60.0, medium_ri=1.337))] = label
    return made


def _export(series, out, workers, failing=None, progress_file=None):
    """Feeds the stream's frames, with the truth as the mask, to a writer; ``failing``: a file whose
    postprocessing raises."""
    stream = TomogramStream(list(series) + [str(out.parent / "missing.nii.gz")], prefetch=workers)

    def postprocessing(item):
        if item["path"] == failing:
            raise RuntimeError("postprocessing broke")
        label = series[item["path"]][..., item["frame"]]
        return {**item, "pred": MetaTensor(torch.from_numpy(label[None].astype(np.float32)), affine=item["image"].affine)}

    writer = TomogramWriter(out, save_figures=True, stream=stream, postprocessing=postprocessing, workers=workers)
    progress = JobProgress(stream, writer, enabled=progress_file is not None, file=progress_file)
    writer.on_frame.append(progress.frame_exported)
    progress.open()
    for item in stream:
        writer.submit(item)
    progress.close()  # waits for the writer's thread
    writer.finish()
    return stream, writer


def test_export_thread_writes_what_the_serial_path_writes(series, tmp_path):
    serial_stream, _ = _export(series, tmp_path / "serial", workers=0)
    stream, writer = _export(series, tmp_path / "overlap", workers=1)
    names = sorted(p.name for p in (tmp_path / "serial").iterdir())
    assert names == sorted(p.name for p in (tmp_path / "overlap").iterdir())
    assert {"a_nucleus.nii.gz", "a_measurements.csv", "a_timecourse.png", "b_overlay.png"} <= set(names)
    for name in names:
        a, b = tmp_path / "serial" / name, tmp_path / "overlap" / name
        if name.endswith(".nii.gz"):
            np.testing.assert_array_equal(np.asarray(nib.load(a).dataobj), np.asarray(nib.load(b).dataobj))
        elif name.endswith(".csv"):
            assert a.read_text() == b.read_text() and len(list(csv.DictReader(io.StringIO(a.read_text())))) > 0
    assert writer.written == list(series)
    assert list(stream.failures) == list(serial_stream.failures) == [str(tmp_path / "missing.nii.gz")]


def test_a_file_failing_on_the_export_thread_is_refused_alone(series, tmp_path, caplog):
    bad = next(iter(series))
    stream, writer = _export(series, tmp_path / "out", workers=1, failing=bad)
    assert set(stream.failures) == {bad, str(tmp_path / "missing.nii.gz")}
    assert stream.failures[bad] == f"{bad}: outputs could not be written (RuntimeError: postprocessing broke)"
    assert [r.getMessage() for r in caplog.records if bad in r.getMessage()] == [stream.failures[bad]]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["b_cell.nii.gz", "b_measurements.csv", "b_nucleus.nii.gz", "b_overlay.png", "b_quality.json"]
    with pytest.raises(SystemExit, match="2 of 3 input"):
        stream.raise_if_failed()


def test_progress_bar_counts_every_frame_of_the_job(series, tmp_path):
    shown = io.StringIO()
    stream, _ = _export(series, tmp_path / "out", workers=1, progress_file=shown)
    last = shown.getvalue().replace("\r", "\n").strip().splitlines()[-1]
    # 3 + 1 frames written; the missing file counted as one frame until it was refused
    assert last.startswith("segment: 100%") and "4/4 [" in last and "files 3/3" in last, last
    assert "frame" in last
    quiet = io.StringIO()  # not a terminal: no bar
    bar = JobProgress(stream, TomogramWriter(tmp_path / "unused"), file=quiet)
    bar.open()
    bar.close()
    assert quiet.getvalue() == ""
