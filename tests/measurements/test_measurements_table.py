"""osnet_monai.measurements.table: column order and the atomic CSV writer."""

from __future__ import annotations

import csv
import os

import pytest

from osnet_monai.measurements.table import MEASUREMENT_COLUMNS, MEASUREMENT_COLUMNS_2D, measurements_to_csv

ROW_3D = {"frame": 0, "time_s": 0.0, "nucleus_id": 1, "volume_um3": 120.5, "dry_mass_pg": 1 / 3, "sphericity": 0.91}
ROW_2D = {"frame": 0, "time_s": 0.0, "nucleus_id": 1, "area_um2": 30.25, "dry_mass_pg_per_um": 2 / 3}


def _read(path):
    with open(path, newline="") as f:
        reader = csv.reader(f)
        return tuple(next(reader)), list(reader)


@pytest.mark.parametrize("columns", [MEASUREMENT_COLUMNS, MEASUREMENT_COLUMNS_2D], ids=["3d", "2d"])
def test_columns_start_with_frame_time_id_and_are_unique(columns):
    assert columns[:3] == ("frame", "time_s", "nucleus_id")
    assert len(set(columns)) == len(columns)


# rows, columns argument -> header written
HEADER_CASES = [
    pytest.param([ROW_3D], None, MEASUREMENT_COLUMNS, id="3d-row"),
    pytest.param([ROW_2D], None, MEASUREMENT_COLUMNS_2D, id="2d-row"),
    pytest.param([], None, MEASUREMENT_COLUMNS, id="no-rows-default"),
    pytest.param([], MEASUREMENT_COLUMNS_2D, MEASUREMENT_COLUMNS_2D, id="no-rows-2d"),
    pytest.param([ROW_2D], ("nucleus_id", "area_um2", "frame", "time_s", "dry_mass_pg_per_um"),
                 ("nucleus_id", "area_um2", "frame", "time_s", "dry_mass_pg_per_um"), id="explicit"),
]


@pytest.mark.parametrize("rows,columns,header", HEADER_CASES)
def test_csv_header(tmp_path, rows, columns, header):
    path = tmp_path / "m.csv"
    assert measurements_to_csv(rows, path, columns) == str(path)
    written, body = _read(path)
    assert written == header and len(body) == len(rows)


@pytest.mark.parametrize("row", [ROW_3D, ROW_2D], ids=["3d", "2d"])
def test_csv_values_round_trip_and_missing_keys_are_empty(tmp_path, row):
    path = tmp_path / "m.csv"
    measurements_to_csv([row, {"frame": 1, "nucleus_id": 2}], path)
    header, body = _read(path)
    first, second = dict(zip(header, body[0])), dict(zip(header, body[1]))
    for key, value in row.items():
        assert float(first[key]) == pytest.approx(value, rel=1e-15)
    assert second["nucleus_id"] == "2" and second["time_s"] == "" and set(second.values()) == {"1", "2", ""}


def test_csv_write_is_atomic(tmp_path):
    path = tmp_path / "nuclei.csv"
    measurements_to_csv([ROW_3D], path)
    before = path.read_bytes()

    # a bad row (unknown column) must leave the old file intact and no temporary file behind
    with pytest.raises(ValueError):
        measurements_to_csv([ROW_3D, {"frame": 2, "not_a_column": 1}], path)
    assert path.read_bytes() == before

    # an error raised while rows are produced: same guarantee, and no file at a new path
    def failing_rows():
        yield ROW_3D
        raise RuntimeError("segmentation failed")

    with pytest.raises(RuntimeError):
        measurements_to_csv(failing_rows(), tmp_path / "other.csv")
    assert not (tmp_path / "other.csv").exists()
    assert sorted(os.listdir(tmp_path)) == ["nuclei.csv"]
