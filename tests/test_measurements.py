from __future__ import annotations

import csv
import math
import os
import time

import numpy as np
import pytest
from scipy import special

from osnet_monai.measurements import (
    MEASUREMENT_COLUMNS,
    cell_mask_from_ri,
    label_nuclei,
    measure_nuclei,
    measurements_to_csv,
    track_nuclei,
)

MEDIUM = 1.337


def _ellipsoid_area(a: float, b: float, c: float) -> float:
    """Exact ellipsoid surface area (Legendre's elliptic-integral form)."""
    a, b, c = sorted((a, b, c), reverse=True)
    if math.isclose(a, c):
        return 4 * math.pi * a**2
    phi = math.acos(c / a)
    m = (a**2 * (b**2 - c**2)) / (b**2 * (a**2 - c**2))
    e, f = special.ellipeinc(phi, m), special.ellipkinc(phi, m)
    return 2 * math.pi * c**2 + 2 * math.pi * a * b / math.sin(phi) * (e * math.sin(phi) ** 2 + f * math.cos(phi) ** 2)


def _thomsen_area(a: float, b: float, c: float, p: float = 1.6075) -> float:
    return 4 * math.pi * (((a * b) ** p + (a * c) ** p + (b * c) ** p) / 3) ** (1 / p)


def _ellipsoid_mask(semi_axes, spacing, center, shape) -> np.ndarray:
    axes = [np.arange(n) * s - c for n, s, c in zip(shape, spacing, center)]
    x, y, z = np.meshgrid(*axes, indexing="ij", sparse=True)
    a, b, c = semi_axes
    return (x / a) ** 2 + (y / b) ** 2 + (z / c) ** 2 <= 1.0


def _sphericity(a, b, c):
    v = 4 / 3 * math.pi * a * b * c
    return math.pi ** (1 / 3) * (6 * v) ** (2 / 3) / _ellipsoid_area(a, b, c)


# semi-axes (um), spacing (um): a few shapes on anisotropic grids
SHAPES = [
    ((5.0, 4.0, 3.0), (0.1, 0.1, 0.2)),
    ((3.0, 3.0, 3.0), (0.1, 0.1, 0.2)),  # sphere
    ((6.0, 2.0, 2.0), (0.15, 0.15, 0.3)),  # elongated
    ((4.0, 4.0, 4.0), (0.155, 0.155, 0.6)),  # sphere at a coarse, Tomocube-like z step
]


def _phantom(semi_axes, spacing, ri_value=1.357):
    center = tuple(ax + 1.03 for ax in semi_axes)  # off-grid centre
    shape = tuple(int(round((2 * ax + 2.1) / s)) for ax, s in zip(semi_axes, spacing))
    mask = _ellipsoid_mask(semi_axes, spacing, center, shape)
    labels = mask.astype(np.int32)
    ri = np.where(mask, ri_value, MEDIUM)
    return labels, ri, center


def test_exact_area_reference_agrees_with_thomsen():
    # the test's own reference: Thomsen's approximation is within ~1.1 %
    for (a, b, c), _ in SHAPES:
        assert _ellipsoid_area(a, b, c) == pytest.approx(_thomsen_area(a, b, c), rel=0.011)


@pytest.mark.parametrize("semi_axes,spacing", SHAPES)
def test_ellipsoid_volume_area_sphericity(semi_axes, spacing):
    labels, ri, center = _phantom(semi_axes, spacing)
    (row,) = measure_nuclei(labels, ri, spacing, MEDIUM)
    a, b, c = semi_axes
    volume = 4 / 3 * math.pi * a * b * c
    assert row["nucleus_id"] == 1
    assert row["volume_um3"] == pytest.approx(volume, rel=0.03)
    assert row["surface_area_um2"] == pytest.approx(_ellipsoid_area(a, b, c), rel=0.03)
    assert row["equivalent_diameter_um"] == pytest.approx(2 * (a * b * c) ** (1 / 3), rel=0.01)
    assert row["sphericity"] == pytest.approx(_sphericity(a, b, c), abs=0.03)
    assert row["sphericity"] <= 1.01
    for key, c0 in zip(("centroid_x_um", "centroid_y_um", "centroid_z_um"), center):
        assert row[key] == pytest.approx(c0, abs=0.02)


def test_sphericity_orders_shapes():
    sphere = measure_nuclei(*_phantom((3.0, 3.0, 3.0), (0.1, 0.1, 0.2))[:2], (0.1, 0.1, 0.2), MEDIUM)[0]
    long = measure_nuclei(*_phantom((6.0, 2.0, 2.0), (0.15, 0.15, 0.3))[:2], (0.15, 0.15, 0.3), MEDIUM)[0]
    assert sphere["sphericity"] == pytest.approx(1.0, abs=0.02)
    assert long["sphericity"] < 0.9 < sphere["sphericity"]


@pytest.mark.parametrize("spacing", [(1.0, 1.0, 1.0), (0.15, 0.15, 0.6)])
def test_sphericity_of_tiny_objects_is_at_most_one(spacing):
    # a few voxels' smoothed surface is smaller than a sphere of their volume (unclamped: 1.19 and 2.8)
    labels = np.zeros((16, 16, 16), dtype=np.int32)
    labels[3:5, 3:5, 3:5] = 1  # a 2 x 2 x 2 cube
    labels[10, 10, 10] = 2  # a single voxel
    rows = measure_nuclei(labels, np.full(labels.shape, 1.36), spacing, MEDIUM, cell_mask_xyz=np.ones(labels.shape, bool))
    assert [r["nucleus_id"] for r in rows] == [1, 2]
    assert all(0 < r["sphericity"] <= 1.0 for r in rows)


def test_plain_marching_cubes_overestimates_area():
    # why the default smooths: the voxel staircase inflates the area
    labels, ri, _ = _phantom((3.0, 3.0, 3.0), (0.1, 0.1, 0.2))
    raw = measure_nuclei(labels, ri, (0.1, 0.1, 0.2), MEDIUM, surface_smoothing_voxels=0)[0]
    assert raw["surface_area_um2"] > 1.05 * 4 * math.pi * 9


def test_dry_mass_uniform_ellipsoid():
    spacing = (0.1, 0.1, 0.2)
    semi = (5.0, 4.0, 3.0)
    labels, ri, _ = _phantom(semi, spacing, ri_value=1.357)
    (row,) = measure_nuclei(labels, ri, spacing, MEDIUM, refractive_increment_ml_per_g=0.19)
    # (n - n_m) / alpha = 0.02 / 0.19 pg/um^3 (0.19 mL/g = 0.19 um^3/pg)
    concentration = 0.02 / 0.19
    assert row["mean_ri"] == pytest.approx(1.357)
    assert row["dry_mass_pg"] == pytest.approx(concentration * row["volume_um3"], rel=1e-9)
    assert row["dry_mass_pg"] == pytest.approx(concentration * 4 / 3 * math.pi * 60.0, rel=0.03)
    # doubling the increment halves the mass
    other = measure_nuclei(labels, ri, spacing, MEDIUM, refractive_increment_ml_per_g=0.38)[0]
    assert other["dry_mass_pg"] == pytest.approx(row["dry_mass_pg"] / 2, rel=1e-9)


def _two_cells():
    """Two box cells of different size, each with one box nucleus less dense than the cytoplasm."""
    shape = (60, 40, 12)
    spacing = (0.2, 0.2, 0.5)
    ri = np.full(shape, MEDIUM)
    labels = np.zeros(shape, dtype=np.int32)
    ri[2:22, 2:30, 1:11] = 1.365  # cell A: 20 x 28 x 10 voxels
    ri[30:58, 5:35, 2:10] = 1.362  # cell B: 28 x 30 x 8 voxels
    labels[6:14, 8:20, 3:8] = 1  # 8 x 12 x 5
    labels[36:50, 12:26, 4:8] = 2  # 14 x 14 x 4
    ri[labels == 1] = 1.352
    ri[labels == 2] = 1.339  # below the cell threshold: counted through hole filling
    vox = np.prod(spacing)
    expected = {
        1: (8 * 12 * 5) / (20 * 28 * 10),
        2: (14 * 14 * 4) / (28 * 30 * 8),
    }
    cell_vol = {1: 20 * 28 * 10 * vox, 2: 28 * 30 * 8 * vox}
    return labels, ri, spacing, expected, cell_vol


def test_nucleus_to_cell_ratio_two_cells():
    labels, ri, spacing, expected, cell_vol = _two_cells()
    rows = {r["nucleus_id"]: r for r in measure_nuclei(labels, ri, spacing, MEDIUM)}
    assert sorted(rows) == [1, 2]
    for nid in (1, 2):
        assert rows[nid]["nucleus_to_cell_volume_ratio"] == pytest.approx(expected[nid], rel=1e-9)
        assert rows[nid]["cell_volume_um3"] == pytest.approx(cell_vol[nid], rel=1e-9)
    # an explicit mask gives the same; a nucleus outside every cell gets nan
    mask = cell_mask_from_ri(ri, MEDIUM, spacing)
    again = measure_nuclei(labels, ri, spacing, MEDIUM, cell_mask_xyz=mask)
    assert [r["nucleus_to_cell_volume_ratio"] for r in again] == pytest.approx([expected[1], expected[2]])
    labels[24:28, 2:6, 2:6] = 3
    lonely = {r["nucleus_id"]: r for r in measure_nuclei(labels, ri, spacing, MEDIUM)}
    assert math.isnan(lonely[3]["nucleus_to_cell_volume_ratio"])
    assert lonely[1]["nucleus_to_cell_volume_ratio"] == pytest.approx(expected[1])


def test_cell_mask_fills_low_ri_nucleus_and_drops_specks():
    labels, ri, spacing, _, _ = _two_cells()
    ri[55, 38, 0] = 1.40  # a one-voxel speck in the medium
    mask = cell_mask_from_ri(ri, MEDIUM, spacing)
    assert mask[labels == 2].all()  # the nucleus below threshold is inside the cell mask
    assert not mask[55, 38, 0]
    assert mask.sum() == 20 * 28 * 10 + 28 * 30 * 8


def test_label_nuclei_removes_small_and_numbers_sequentially():
    m = np.zeros((30, 30, 6), dtype=bool)
    m[2:8, 2:8, 1:5] = True  # 144 voxels
    m[8, 8, 1] = True  # touches only diagonally: separate with face connectivity, 1 voxel
    m[15:25, 15:25, 1:5] = True  # 400 voxels
    spacing = (0.5, 0.5, 1.0)  # 0.25 um^3 per voxel
    lab = label_nuclei(m, min_volume_um3=10.0, spacing_um=spacing)
    assert lab.dtype == np.int32
    assert sorted(np.unique(lab).tolist()) == [0, 1, 2]
    assert (lab == 1).sum() == 144 and (lab == 2).sum() == 400
    assert lab[8, 8, 1] == 0
    lab26 = label_nuclei(m, min_volume_um3=10.0, spacing_um=spacing, connectivity=3)
    assert lab26[8, 8, 1] == lab26[3, 3, 2]


def _blob_labels(shape, centers_ids, half=4):
    lab = np.zeros(shape, dtype=np.int32)
    for (x, y), nid in centers_ids:
        lab[x - half : x + half, y - half : y + half, 1:4] = nid
    return lab


def test_tracking_keeps_ids_when_nuclei_move_and_swap_order():
    shape = (60, 60, 5)
    prev = _blob_labels(shape, [((10, 10), 5), ((14, 40), 9), ((45, 25), 2)])
    # nuclei move by 2-4 voxels; raster order changes: the nucleus with id 9 is now first in x
    moved = np.zeros(shape, dtype=bool)
    for x, y in ((13, 12), (11, 43), (47, 22)):
        moved[x - 4 : x + 4, y - 4 : y + 4, 1:4] = True
    cur = label_nuclei(moved, min_volume_um3=1.0, spacing_um=(1, 1, 1))
    assert cur[11, 43, 2] == 1 and cur[13, 12, 2] == 2  # labelling order differs from the ids
    tracked = track_nuclei(prev, cur)
    assert tracked[13, 12, 2] == 5 and tracked[11, 43, 2] == 9 and tracked[47, 22, 2] == 2
    assert np.array_equal(tracked > 0, cur > 0)  # same voxels, only ids change


def test_tracking_centroid_fallback_new_ids_and_splits():
    shape = (80, 60, 5)
    prev = _blob_labels(shape, [((10, 10), 3), ((40, 30), 7)])
    cur = _blob_labels(
        shape,
        [
            ((10, 20), 1),  # nucleus 3 jumped 10 voxels: no overlap, nearest centroid
            ((70, 50), 2),  # far from everything: new nucleus
        ],
    )
    cur[37:41, 26:34, 1:4] = 4  # nucleus 7 split in two; larger overlap keeps the id
    cur[41:44, 26:34, 1:4] = 5
    tracked = track_nuclei(prev, cur, spacing_um=(0.5, 0.5, 1.0), max_distance_um=8.0)
    assert tracked[10, 20, 2] == 3
    assert tracked[38, 30, 2] == 7
    new_ids = {int(tracked[70, 50, 2]), int(tracked[42, 30, 2])}
    assert new_ids == {8, 9}  # above every previous id, none reused
    # a running counter keeps disappeared ids retired; too tight a distance makes the jump a new nucleus
    strict = track_nuclei(prev, cur, spacing_um=(0.5, 0.5, 1.0), max_distance_um=2.0, next_id=20)
    assert strict[10, 20, 2] >= 20 and strict[38, 30, 2] == 7


def test_tracking_and_measuring_a_full_frame_is_fast():
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
    t0 = time.perf_counter()
    rows = measure_nuclei(labels, ri, spacing, MEDIUM)
    t1 = time.perf_counter()
    tracked = track_nuclei(labels, np.roll(labels, 5, axis=0), spacing)
    t2 = time.perf_counter()
    assert len(rows) == 4
    assert all(r["nucleus_to_cell_volume_ratio"] == pytest.approx(60 / 600, rel=0.03) for r in rows)
    assert sorted(np.unique(tracked).tolist()) == [0, 1, 2, 3, 4]
    assert t1 - t0 < 3.0 and t2 - t1 < 1.0  # generous bounds for a busy 2-core machine


def test_csv_columns_values_and_atomic_write(tmp_path):
    labels, ri, spacing, _, _ = _two_cells()
    rows = [{"frame": 0, "time_s": 0.0, **r} for r in measure_nuclei(labels, ri, spacing, MEDIUM)]
    rows.append({"frame": 1, "nucleus_id": 1, "volume_um3": 1.5})  # missing keys: written empty
    path = tmp_path / "nuclei.csv"
    assert measurements_to_csv(rows, path) == str(path)
    with open(path, newline="") as f:
        reader = csv.reader(f)
        header = next(reader)
        body = list(reader)
    assert tuple(header) == MEASUREMENT_COLUMNS
    assert len(body) == 3
    first = dict(zip(header, body[0]))
    assert float(first["dry_mass_pg"]) == pytest.approx(rows[0]["dry_mass_pg"], rel=1e-12)
    assert dict(zip(header, body[2]))["sphericity"] == ""
    before = path.read_bytes()

    # a bad row (unknown column) must leave the old file intact and no temporary file behind
    with pytest.raises(ValueError):
        measurements_to_csv([rows[0], {"frame": 2, "not_a_column": 1}], path)
    assert path.read_bytes() == before

    # an error raised while rows are produced: same guarantee, and no file at a new path
    def failing_rows():
        yield rows[0]
        raise RuntimeError("segmentation failed")

    with pytest.raises(RuntimeError):
        measurements_to_csv(failing_rows(), tmp_path / "other.csv")
    assert not (tmp_path / "other.csv").exists()
    assert sorted(os.listdir(tmp_path)) == ["nuclei.csv"]
