"""osnet_monai.measurements as a package: its public names, and one frame through label, measure, track and CSV.

Each module has its own tests: test_measurements_{cells,morphology,tracking,table}.py.
"""

from __future__ import annotations

import csv

import numpy as np
import pytest

import osnet_monai.measurements as measurements
from osnet_monai.measurements import (
    MEASUREMENT_COLUMNS,
    MEASUREMENT_COLUMNS_2D,
    label_nuclei,
    measure_nuclei,
    measure_sections_2d,
    measurements_to_csv,
    track_nuclei,
)

MEDIUM = 1.337

# every public name and the module that defines it; importers (writer, benchmark) use the package
PUBLIC = [
    ("MEASUREMENT_COLUMNS", "table"),
    ("MEASUREMENT_COLUMNS_2D", "table"),
    ("TRACK_COLUMNS", "table"),
    ("NucleusTracker", "tracking"),
    ("cell_mask_from_ri", "cells"),
    ("label_cells", "cells"),
    ("label_nuclei", "cells"),
    ("measure_nuclei", "morphology"),
    ("measure_sections_2d", "morphology"),
    ("split_touching", "cells"),
    ("track_nuclei", "tracking"),
    ("tracks_from_labels", "tracking"),
    ("measurements_to_csv", "table"),
    ("tracks_to_csv", "table"),
]


def test_public_names_are_exactly_the_documented_ones():
    assert sorted(measurements.__all__) == sorted(name for name, _ in PUBLIC)


@pytest.mark.parametrize("name,module", PUBLIC)
def test_public_name_is_re_exported_from_its_module(name, module):
    assert getattr(measurements, name) is getattr(getattr(measurements, module), name)
    assert name in getattr(measurements, module).__all__


def _rows_3d():
    labels = np.zeros((20, 20, 8), dtype=np.int32)
    labels[4:10, 4:10, 2:6] = 1
    return measure_nuclei(labels, np.full(labels.shape, 1.35), (0.2, 0.2, 0.4), MEDIUM, cell_mask_xyz=labels > 0)


def _rows_2d():
    labels = np.zeros((20, 20), dtype=np.int32)
    labels[4:10, 4:10] = 1
    return measure_sections_2d(labels, np.full(labels.shape, 1.35), (0.2, 0.2), MEDIUM)


@pytest.mark.parametrize("rows,columns", [(_rows_3d, MEASUREMENT_COLUMNS), (_rows_2d, MEASUREMENT_COLUMNS_2D)], ids=["3d", "2d"])
def test_measured_rows_fill_every_column_but_frame_time_and_lineage(rows, columns):
    (row,) = rows()
    assert list(row) == [c for c in columns if c not in ("frame", "time_s", "parent_id")]


def test_tracking_and_measuring_a_full_frame(tmp_path):
    """A full 448 x 448 x 64 frame end to end (speed is measured in scripts/benchmark.py, not here)."""
    spacing = (0.155, 0.155, 0.3)
    shape = (448, 448, 64)
    x, y, z = np.meshgrid(*[np.arange(n) * s for n, s in zip(shape, spacing)], indexing="ij", sparse=True)
    ri = np.full(shape, MEDIUM, dtype=np.float32)
    nuclei = np.zeros(shape, dtype=bool)
    for cx, cy in ((15, 15), (50, 20), (20, 50), (50, 52)):
        ri[((x - cx) / 10) ** 2 + ((y - cy) / 10) ** 2 + ((z - 9) / 6) ** 2 <= 1] = 1.36
        n = ((x - cx) / 5) ** 2 + ((y - cy) / 4) ** 2 + ((z - 9) / 3) ** 2 <= 1
        ri[n] = 1.355
        nuclei |= n
    labels = label_nuclei(nuclei, 10.0, spacing)
    rows = measure_nuclei(labels, ri, spacing, MEDIUM)
    tracked = track_nuclei(labels, np.roll(labels, 5, axis=0), spacing)
    assert len(rows) == 4
    assert all(r["nucleus_to_cell_volume_ratio"] == pytest.approx(60 / 600, rel=0.03) for r in rows)
    assert sorted(np.unique(tracked).tolist()) == [0, 1, 2, 3, 4]
    assert np.array_equal(tracked, np.roll(labels, 5, axis=0))  # each nucleus keeps its id
    path = measurements_to_csv([{"frame": 0, "time_s": 0.0, **r} for r in rows], tmp_path / "nuclei.csv")
    with open(path, newline="") as f:
        assert [int(r["nucleus_id"]) for r in csv.DictReader(f)] == [1, 2, 3, 4]
