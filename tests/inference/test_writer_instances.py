"""The writer's instances and lineage: a division series' truth fed through it as a perfect
prediction gives one id per nucleus, one cell per nucleus, and the division in NAME_tracks.csv."""

from __future__ import annotations

import csv

import nibabel as nib
import numpy as np
import pytest
import torch
from monai.data import MetaTensor

from osnet_monai.inference import TomogramStream, TomogramWriter
from osnet_monai.measurements import TRACK_COLUMNS
from osnet_monai.phantoms import write_nifti
from osnet_monai.phantoms.mitosis import render_division_series


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """A 4-frame division series (seed 0), its nucleus truth written as the model's prediction."""
    tmp = tmp_path_factory.mktemp("division")
    series = render_division_series(seed=0, frames=4)
    acq = series.acquisition
    path = write_nifti(tmp / "division.nii.gz", series.image, acq.voxel_size_um, time_step_s=acq.time_step_s, medium_ri=acq.medium_ri)
    writer = TomogramWriter(tmp / "out", save_figures=True)
    for item in TomogramStream([path]):
        truth = series.label[..., item["frame"]][None].astype(np.float32)
        item["pred"] = MetaTensor(torch.from_numpy(truth), affine=item["image"].affine)
        writer.write_frame(item)
    return series, tmp / "out"


def test_tracks_file_records_divisions_where_the_truth_has_them(written):
    series, out = written
    with open(out / "division_tracks.csv", newline="") as f:
        rows = list(csv.reader(f))
    assert tuple(rows[0]) == TRACK_COLUMNS
    tracks = [tuple(int(v) for v in row) for row in rows[1:]]
    truth_daughters = [t for t in series.tracks if t[3]]
    found_daughters = [t for t in tracks if t[3]]
    # seed 0 has two divisions; two daughters of different mothers touch in frame 2 and merge, so one
    # division is found (division F1 over many series: scripts/tracking_eval.py, docs/tracking.md)
    assert truth_daughters and len(found_daughters) >= 2
    # every found daughter starts where a truth daughter starts, and its mother ends the frame before
    ends = {t[0]: t[2] for t in tracks}
    for track_id, first, _, parent in found_daughters:
        assert first in {t[1] for t in truth_daughters}
        assert ends[parent] == first - 1


def test_measurements_carry_track_and_parent_ids_present_in_the_masks(written):
    _, out = written
    nuclei = np.asarray(nib.load(out / "division_nucleus.nii.gz").dataobj)
    cells = np.asarray(nib.load(out / "division_cell.nii.gz").dataobj)
    with open(out / "division_measurements.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    for row in rows:
        t, i = int(row["frame"]), int(row["nucleus_id"])
        assert (nuclei[..., t] == i).any() and (cells[..., t] == i).any()
        assert float(row["nucleus_to_cell_volume_ratio"]) < 1.0
    parents = {int(r["nucleus_id"]): int(r["parent_id"]) for r in rows}
    assert any(parents.values())
    assert (out / "division_timecourse.png").stat().st_size > 0
