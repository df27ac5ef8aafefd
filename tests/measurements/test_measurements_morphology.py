"""osnet_monai.measurements.morphology: 3D volume, surface area, sphericity, dry mass, cell volume; 2D section measures."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import special

from osnet_monai.measurements.cells import cell_mask_from_ri
from osnet_monai.measurements.morphology import measure_nuclei, measure_sections_2d

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
    pytest.param((5.0, 4.0, 3.0), (0.1, 0.1, 0.2), id="ellipsoid"),
    pytest.param((3.0, 3.0, 3.0), (0.1, 0.1, 0.2), id="sphere"),
    pytest.param((6.0, 2.0, 2.0), (0.15, 0.15, 0.3), id="elongated"),
    pytest.param((4.0, 4.0, 4.0), (0.155, 0.155, 0.6), id="sphere-coarse-z"),  # a Tomocube-like z step
]


def _phantom(semi_axes, spacing, ri_value=1.357):
    center = tuple(ax + 1.03 for ax in semi_axes)  # off-grid centre
    shape = tuple(int(round((2 * ax + 2.1) / s)) for ax, s in zip(semi_axes, spacing))
    mask = _ellipsoid_mask(semi_axes, spacing, center, shape)
    labels = mask.astype(np.int32)
    ri = np.where(mask, ri_value, MEDIUM)
    return labels, ri, center


@pytest.mark.parametrize("semi_axes,spacing", SHAPES)
def test_exact_area_reference_agrees_with_thomsen(semi_axes, spacing):
    # the test's own reference: Thomsen's approximation is within ~1.1 %
    assert _ellipsoid_area(*semi_axes) == pytest.approx(_thomsen_area(*semi_axes), rel=0.011)


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


@pytest.mark.parametrize("alpha", [0.19, 0.38])
def test_dry_mass_uniform_ellipsoid(alpha):
    spacing = (0.1, 0.1, 0.2)
    labels, ri, _ = _phantom((5.0, 4.0, 3.0), spacing, ri_value=1.357)
    (row,) = measure_nuclei(labels, ri, spacing, MEDIUM, refractive_increment_ml_per_g=alpha)
    # (n - n_m) / alpha in pg/um^3 (1 mL/g = 1 um^3/pg)
    concentration = 0.02 / alpha
    assert row["mean_ri"] == pytest.approx(1.357)
    assert row["dry_mass_pg"] == pytest.approx(concentration * row["volume_um3"], rel=1e-9)
    assert row["dry_mass_pg"] == pytest.approx(concentration * 4 / 3 * math.pi * 60.0, rel=0.03)


# spacing, label dtype, RI dtype: a 4 x 6 x 3 box with id 9 and one denser voxel, values by hand
BOX_CASES = [
    pytest.param((1.0, 1.0, 1.0), np.int32, np.float64, id="unit-int32-float64"),
    pytest.param((0.155, 0.155, 0.6), np.uint16, np.float32, id="tomocube-uint16-float32"),
    pytest.param((0.1, 0.2, 0.3), np.int64, np.float32, id="anisotropic-int64-float32"),
]


@pytest.mark.parametrize("spacing,label_dtype,ri_dtype", BOX_CASES)
def test_box_by_hand_3d(spacing, label_dtype, ri_dtype):
    labels = np.zeros((12, 12, 6), dtype=label_dtype)
    labels[3:7, 2:8, 1:4] = 9
    ri = np.full(labels.shape, MEDIUM, dtype=ri_dtype)
    ri[labels == 9] = 1.356
    ri[4, 4, 2] = 1.376
    (row,) = measure_nuclei(labels, ri, spacing, MEDIUM, cell_mask_xyz=np.ones(labels.shape, bool))
    volume = 72 * math.prod(spacing)
    mean_ri = (71 * float(ri_dtype(1.356)) + float(ri_dtype(1.376))) / 72
    assert row["nucleus_id"] == 9 and isinstance(row["nucleus_id"], int)
    assert row["volume_um3"] == pytest.approx(volume, rel=1e-12)
    assert row["mean_ri"] == pytest.approx(mean_ri, rel=1e-12)
    assert row["dry_mass_pg"] == pytest.approx((mean_ri - MEDIUM) / 0.19 * volume, rel=1e-9)
    assert row["cell_volume_um3"] == pytest.approx(labels.size * math.prod(spacing), rel=1e-12)
    assert [row[f"centroid_{a}_um"] for a in "xyz"] == pytest.approx([4.5 * spacing[0], 4.5 * spacing[1], 2 * spacing[2]])
    assert all(type(v) in (int, float) for v in row.values())


@pytest.mark.parametrize("spacing,label_dtype,ri_dtype", BOX_CASES)
def test_box_by_hand_2d(spacing, label_dtype, ri_dtype):
    spacing = spacing[:2]
    labels = np.zeros((12, 12), dtype=label_dtype)
    labels[3:7, 2:8] = 9
    ri = np.full(labels.shape, MEDIUM, dtype=ri_dtype)
    ri[labels == 9] = 1.356
    ri[4, 4] = 1.38
    (row,) = measure_sections_2d(labels, ri, spacing, MEDIUM)
    area = 24 * spacing[0] * spacing[1]
    mean_ri = (23 * float(ri_dtype(1.356)) + float(ri_dtype(1.38))) / 24
    assert row["nucleus_id"] == 9
    assert row["area_um2"] == pytest.approx(area, rel=1e-12)
    assert row["mean_ri"] == pytest.approx(mean_ri, rel=1e-12)
    assert row["dry_mass_pg_per_um"] == pytest.approx((mean_ri - MEDIUM) / 0.19 * area, rel=1e-9)
    assert row["equivalent_diameter_um"] == pytest.approx(2 * math.sqrt(area / math.pi))
    assert [row["centroid_x_um"], row["centroid_y_um"]] == pytest.approx([4.5 * spacing[0], 4.5 * spacing[1]])


def _random_scene(ndim: int, seed: int):
    """Labels with gaps in the ids, touching blobs and one id in two pieces; float32 RI with noise."""
    rng = np.random.default_rng(seed)
    shape = (48, 40, 10)[:ndim]
    grid = np.meshgrid(*[np.arange(n) for n in shape], indexing="ij", sparse=True)
    labels = np.zeros(shape, dtype=np.int32)
    for nid in rng.permutation(np.arange(1, 9)) * 5:
        centre, radii = rng.uniform(3, np.array(shape) - 3), rng.uniform(1.5, 5, ndim)
        labels[sum(((g - c) / r) ** 2 for g, c, r in zip(grid, centre, radii)) <= 1] = nid
    labels[(0,) * ndim] = labels[(-1,) * ndim] = 77
    ri = (MEDIUM + 0.02 * (labels > 0) + rng.normal(0, 0.003, shape)).astype(np.float32)
    return labels, ri


def _brute_force(labels, ri, spacing):
    """The per-label loop the module replaced: volume or area, mean RI in float64, centroid in um."""
    out = {}
    for nid in np.unique(labels[labels > 0]):
        where = labels == nid
        coords = np.nonzero(where)
        out[int(nid)] = (where.sum() * math.prod(spacing), ri[where].astype(np.float64).mean(),
                         [c.mean() * s for c, s in zip(coords, spacing)])
    return out


@pytest.mark.parametrize("ndim,seed", [(3, 0), (3, 1), (2, 0), (2, 1)])
def test_region_table_matches_a_per_label_loop(ndim, seed):
    labels, ri = _random_scene(ndim, seed)
    spacing = (0.15, 0.2, 0.4)[:ndim]
    if ndim == 3:
        rows = measure_nuclei(labels, ri, spacing, MEDIUM, surface_smoothing_voxels=0)
        size_key, centroid_keys = "volume_um3", ("centroid_x_um", "centroid_y_um", "centroid_z_um")
    else:
        rows = measure_sections_2d(labels, ri, spacing, MEDIUM)
        size_key, centroid_keys = "area_um2", ("centroid_x_um", "centroid_y_um")
    expected = _brute_force(labels, ri, spacing)
    assert [r["nucleus_id"] for r in rows] == sorted(expected)
    for row in rows:
        size, mean_ri, centroid = expected[row["nucleus_id"]]
        assert row[size_key] == pytest.approx(size, rel=1e-12)
        assert row["mean_ri"] == pytest.approx(mean_ri, rel=1e-12)
        assert [row[k] for k in centroid_keys] == pytest.approx(centroid, rel=1e-12)


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
    expected = {1: (8 * 12 * 5) / (20 * 28 * 10), 2: (14 * 14 * 4) / (28 * 30 * 8)}
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
    assert math.isnan(lonely[3]["nucleus_to_cell_volume_ratio"]) and math.isnan(lonely[3]["cell_volume_um3"])
    assert lonely[1]["nucleus_to_cell_volume_ratio"] == pytest.approx(expected[1])


# one nucleus id in two pieces, in cell A (x < 20, 800 voxels) and cell B (x >= 30, 1000 voxels):
# it belongs to the cell holding more of it, the first cell on a tie
SPLIT_CASES = [
    pytest.param(8, 2, 800, id="mostly-in-A"),
    pytest.param(2, 8, 1000, id="mostly-in-B"),
    pytest.param(4, 4, 800, id="tie-first-cell"),
]


@pytest.mark.parametrize("voxels_in_a,voxels_in_b,cell_voxels", SPLIT_CASES)
def test_nucleus_in_two_cells_belongs_to_the_larger_share(voxels_in_a, voxels_in_b, cell_voxels):
    labels = np.zeros((50, 10, 10), dtype=np.int32)
    cell = np.zeros(labels.shape, dtype=bool)
    cell[0:20, 0:10, 0:4] = True
    cell[30:50, 0:10, 0:5] = True
    labels[5, 5, 0:voxels_in_a // 2] = 4
    labels[6, 5, 0:voxels_in_a // 2] = 4
    labels[35, 5, 0:voxels_in_b // 2] = 4
    labels[36, 5, 0:voxels_in_b // 2] = 4
    (row,) = measure_nuclei(labels, np.full(labels.shape, 1.35), (1.0, 1.0, 1.0), MEDIUM, cell_mask_xyz=cell)
    assert row["cell_volume_um3"] == cell_voxels  # the pieces lie inside the cells: no voxels added


def test_no_nuclei_no_rows():
    assert measure_nuclei(np.zeros((8, 8, 4), np.int32), np.full((8, 8, 4), 1.35), (1, 1, 1), MEDIUM) == []
    assert measure_sections_2d(np.zeros((8, 8), np.int32), np.full((8, 8), 1.35), (1, 1), MEDIUM) == []


LABELS3, RI3 = np.ones((6, 6, 3), np.int32), np.full((6, 6, 3), 1.35)
MEASURE_ERRORS = [
    pytest.param(measure_nuclei, LABELS3, RI3[:5], (1, 1, 1), {}, id="3d-shape-mismatch"),
    pytest.param(measure_nuclei, LABELS3[..., 0], RI3[..., 0], (1, 1, 1), {}, id="3d-given-2d"),
    pytest.param(measure_nuclei, LABELS3.astype(float), RI3, (1, 1, 1), {}, id="3d-float-labels"),
    pytest.param(measure_nuclei, -LABELS3, RI3, (1, 1, 1), {}, id="3d-negative-labels"),
    pytest.param(measure_nuclei, LABELS3, RI3, (1, 1), {}, id="3d-two-spacings"),
    pytest.param(measure_nuclei, LABELS3, RI3, (1, 1, 1), {"refractive_increment_ml_per_g": 0.0}, id="3d-zero-alpha"),
    pytest.param(measure_nuclei, LABELS3, RI3, (1, 1, 1), {"cell_mask_xyz": np.ones((6, 6, 2), bool)}, id="3d-cell-mask-shape"),
    pytest.param(measure_nuclei, LABELS3, RI3, (1, 1, 1), {"cell_labels_xyz": np.ones((6, 6, 2), np.int32)}, id="3d-cell-labels-shape"),
    pytest.param(measure_nuclei, LABELS3, RI3, (1, 1, 1), {"cell_labels_xyz": np.ones((6, 6, 3))}, id="3d-float-cell-labels"),
    pytest.param(measure_sections_2d, LABELS3, RI3, (1, 1), {}, id="2d-given-3d"),
    pytest.param(measure_sections_2d, LABELS3[..., 0], RI3[..., 0], (1, 0), {}, id="2d-zero-spacing"),
    pytest.param(measure_sections_2d, LABELS3[..., 0], RI3[..., 0], (1, 1), {"refractive_increment_ml_per_g": -1}, id="2d-negative-alpha"),
]


@pytest.mark.parametrize("func,labels,ri,spacing,kwargs", MEASURE_ERRORS)
def test_measurements_refuse_bad_arguments(func, labels, ri, spacing, kwargs):
    with pytest.raises(ValueError):
        func(labels, ri, spacing, MEDIUM, **kwargs)


def test_touching_cells_each_give_their_own_nucleus_to_cell_ratio():
    # two box cells joined by a thin lamella are one component of the cell mask; each nucleus divides
    # by its own cell (the junction split between them), not by the pair's volume
    spacing = (0.2, 0.2, 0.5)
    ri = np.full((64, 20, 12), MEDIUM)
    labels = np.zeros(ri.shape, np.int32)
    ri[2:28, 2:18, 0:10] = 1.365  # cell A: 26 x 16 x 10 = 4160 voxels
    ri[36:62, 2:18, 0:8] = 1.362  # cell B: 26 x 16 x 8 = 3328 voxels
    ri[28:36, 2:18, 0:2] = 1.360  # junction: 256 voxels
    labels[10:20, 6:14, 2:7] = 1  # 400 voxels
    labels[44:52, 6:14, 2:6] = 2  # 256 voxels
    ri[labels > 0] = 1.352
    rows = {r["nucleus_id"]: r for r in measure_nuclei(labels, ri, spacing, MEDIUM)}
    vox = math.prod(spacing)
    junction = 256 * vox
    for nid, own, nucleus in ((1, 4160 * vox, 400 * vox), (2, 3328 * vox, 256 * vox)):
        # the cell is its box plus up to the whole junction
        assert own <= rows[nid]["cell_volume_um3"] <= own + junction
        assert rows[nid]["nucleus_to_cell_volume_ratio"] == pytest.approx(nucleus / rows[nid]["cell_volume_um3"])
    assert rows[1]["cell_volume_um3"] + rows[2]["cell_volume_um3"] == pytest.approx((4160 + 3328) * vox + junction)
    # dry mass of the cell: its RI excess over the medium, summed
    cells = np.zeros(ri.shape, np.int32)
    cells[2:28, 2:18, 0:10] = 1
    cells[36:62, 2:18, 0:8] = 2
    cells[28:36, 2:18, 0:2] = 1
    given = {r["nucleus_id"]: r for r in measure_nuclei(labels, ri, spacing, MEDIUM, cell_labels_xyz=cells)}
    expected_mass = ((ri - MEDIUM) * (cells == 1)).sum() / 0.19 * vox
    assert given[1]["cell_dry_mass_pg"] == pytest.approx(expected_mass, rel=1e-9)
    assert given[1]["cell_volume_um3"] == pytest.approx((4160 + 256) * vox)
    assert given[2]["nucleus_to_cell_volume_ratio"] == pytest.approx(256 / 3328)
    # a nucleus whose id has no cell in the given labels has no cell measures
    cells[cells == 2] = 0
    missing = {r["nucleus_id"]: r for r in measure_nuclei(labels, ri, spacing, MEDIUM, cell_labels_xyz=cells)}
    assert math.isnan(missing[2]["cell_volume_um3"]) and math.isnan(missing[2]["cell_dry_mass_pg"])
