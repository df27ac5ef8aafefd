"""osnet_monai.measurements.cells: the cell mask from the RI, nucleus labels (touching nuclei apart), cell regions."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from osnet_monai.measurements.cells import cell_mask_from_ri, label_cells, label_nuclei, split_touching

MEDIUM = 1.337
SPACING = (0.2, 0.2, 0.5)  # 0.02 um^3 per voxel


def _cell_with_nucleus(cell_z: tuple[int, int], nucleus_z: tuple[int, int], nucleus_ri: float):
    """A box cell (RI 1.365) holding a box nucleus; RI volume (40, 40, 12) and the cell box as a mask."""
    ri = np.full((40, 40, 12), MEDIUM)
    cell = np.zeros(ri.shape, dtype=bool)
    cell[10:30, 6:34, slice(*cell_z)] = True
    ri[cell] = 1.365
    ri[16:24, 14:26, slice(*nucleus_z)] = nucleus_ri
    return ri, cell


# (cell z range, nucleus z range, nucleus RI): the mask must be the cell box, nucleus included
CELL_CASES = [
    pytest.param((1, 11), (3, 8), 1.352, id="nucleus-above-threshold"),
    pytest.param((1, 11), (3, 8), 1.339, id="nucleus-below-threshold-is-a-hole"),
    # the nucleus reaches the z border: not enclosed in 3D, only within each xy section
    pytest.param((0, 10), (0, 5), 1.339, id="nucleus-on-the-coverslip"),
]


@pytest.mark.parametrize("cell_z,nucleus_z,nucleus_ri", CELL_CASES)
def test_cell_mask_is_the_cell_with_its_nucleus(cell_z, nucleus_z, nucleus_ri):
    ri, cell = _cell_with_nucleus(cell_z, nucleus_z, nucleus_ri)
    mask = cell_mask_from_ri(ri, MEDIUM, SPACING)
    assert mask.dtype == bool and mask.shape == ri.shape
    np.testing.assert_array_equal(mask, cell)


# min_volume_um3 against a 1-voxel speck (0.02 um^3) and a 2 x 2 x 2 blob (0.16 um^3) in the medium
SPECK_CASES = [
    pytest.param(0.01, (True, True), id="both-kept"),
    pytest.param(0.1, (False, True), id="speck-dropped"),
    pytest.param(50.0, (False, False), id="default-drops-both"),
]


@pytest.mark.parametrize("min_volume_um3,kept", SPECK_CASES)
def test_cell_mask_drops_components_under_min_volume(min_volume_um3, kept):
    ri, cell = _cell_with_nucleus((1, 11), (3, 8), 1.352)
    ri[35, 2, 0] = 1.40
    ri[2:4, 36:38, 9:11] = 1.40
    mask = cell_mask_from_ri(ri, MEDIUM, SPACING, min_volume_um3=min_volume_um3)
    assert (bool(mask[35, 2, 0]), bool(mask[2:4, 36:38, 9:11].all())) == kept
    assert mask[cell].all() == (min_volume_um3 <= cell.sum() * 0.02)


@pytest.mark.parametrize("smoothing_um", [0.2, 0.5])
def test_cell_mask_smoothing_moves_the_boundary_outwards(smoothing_um):
    ri, cell = _cell_with_nucleus((1, 11), (3, 8), 1.352)
    mask = cell_mask_from_ri(ri, MEDIUM, SPACING, margin=0.005, smoothing_um=smoothing_um)
    assert mask[cell].all() and mask.sum() > cell.sum()


def _blurred_cell(contrast: float) -> tuple[np.ndarray, np.ndarray]:
    """A box cell with a denser-than-medium nucleus, its edge blurred over microns as the missing
    cone does, RI contrast ``contrast``, noise 0.0005; RI (60, 60, 24) and the cell box."""
    cell = np.zeros((60, 60, 24), dtype=bool)
    cell[15:45, 12:48, 5:19] = True
    shape = cell.astype(float)
    shape[24:36, 22:38, 9:15] = 0.6
    blurred = ndimage.gaussian_filter(shape, (1.5, 1.5, 1.6))
    return MEDIUM + contrast * blurred + np.random.default_rng(0).normal(0, 0.0005, cell.shape), cell


@pytest.mark.parametrize("contrast", [0.01, 0.028, 0.06])
def test_default_margin_cuts_a_blurred_edge_where_the_cell_ends_at_any_contrast(contrast):
    """The default margin is a share of the field's own cell contrast: the cell's volume within 5%
    whatever the instrument's contrast scale, where a fixed margin near the medium takes in the blur
    (+30% at contrast 0.028, +55% at 0.06)."""
    ri, cell = _blurred_cell(contrast)
    volume = cell_mask_from_ri(ri, MEDIUM, SPACING, min_volume_um3=1.0).sum() / cell.sum()
    fixed = cell_mask_from_ri(ri, MEDIUM, SPACING, margin=0.005, min_volume_um3=1.0).sum() / cell.sum()
    assert abs(volume - 1) < 0.05, volume
    if contrast > 0.02:
        assert fixed > 1.25, fixed


def test_default_margin_of_a_field_without_cell_keeps_the_noise_out():
    ri = MEDIUM + np.random.default_rng(1).normal(0, 0.001, (40, 40, 10))
    assert not cell_mask_from_ri(ri, MEDIUM, SPACING, min_volume_um3=1.0).any()


CELL_MASK_ERRORS = [
    pytest.param(np.full((10, 10), 1.35), SPACING, id="2d-ri"),
    pytest.param(np.full((10, 10, 4), 1.35), (0.2, 0.2), id="two-spacings"),
    pytest.param(np.full((10, 10, 4), 1.35), (0.2, 0.0, 0.5), id="zero-spacing"),
]


@pytest.mark.parametrize("ri,spacing", CELL_MASK_ERRORS)
def test_cell_mask_refuses_bad_arguments(ri, spacing):
    with pytest.raises(ValueError):
        cell_mask_from_ri(ri, MEDIUM, spacing)


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


# min_volume_um3 against components of 0.25, 36 and 100 um^3: ids 1..n in raster order of what is kept
MIN_VOLUME_CASES = [
    pytest.param(0.1, [36.0, 0.25, 100.0], id="all"),
    pytest.param(10.0, [36.0, 100.0], id="speck-removed"),
    pytest.param(50.0, [100.0], id="only-the-large"),
    pytest.param(200.0, [], id="none"),
]


@pytest.mark.parametrize("min_volume_um3,volumes", MIN_VOLUME_CASES)
def test_label_nuclei_min_volume(min_volume_um3, volumes):
    m = np.zeros((30, 30, 6), dtype=bool)
    m[2:8, 2:8, 1:5] = True
    m[8, 8, 1] = True
    m[15:25, 15:25, 1:5] = True
    lab = label_nuclei(m, min_volume_um3=min_volume_um3, spacing_um=(0.5, 0.5, 1.0))
    assert np.bincount(lab.ravel())[1:].tolist() == [v / 0.25 for v in volumes]


# a 4 x 4 x 3 box and a 2 x 2 x 2 box touching it by a face, an edge or a corner
TOUCH = {"face": (slice(6, 8), slice(2, 4), slice(1, 3)), "edge": (slice(6, 8), slice(6, 8), slice(1, 3)),
         "corner": (slice(6, 8), slice(6, 8), slice(4, 6))}
CONNECTIVITY_CASES = [
    pytest.param("face", 1, 1, id="face-1"),
    pytest.param("edge", 1, 2, id="edge-1"),
    pytest.param("edge", 2, 1, id="edge-2"),
    pytest.param("corner", 2, 2, id="corner-2"),
    pytest.param("corner", 3, 1, id="corner-3"),
]


@pytest.mark.parametrize("touch,connectivity,n_nuclei", CONNECTIVITY_CASES)
def test_label_nuclei_connectivity(touch, connectivity, n_nuclei):
    m = np.zeros((10, 10, 8), dtype=bool)
    m[2:6, 2:6, 1:4] = True
    m[TOUCH[touch]] = True
    lab = label_nuclei(m, min_volume_um3=0.0, spacing_um=(1.0, 1.0, 1.0), connectivity=connectivity)
    assert int(lab.max()) == n_nuclei


LABEL_ERRORS = [
    pytest.param(np.ones((10, 10), dtype=bool), (1.0, 1.0, 1.0), id="2d-mask"),
    pytest.param(np.ones((10, 10, 2), dtype=bool), (1.0, -1.0, 1.0), id="negative-spacing"),
]


@pytest.mark.parametrize("mask,spacing", LABEL_ERRORS)
def test_label_nuclei_refuses_bad_arguments(mask, spacing):
    with pytest.raises(ValueError):
        label_nuclei(mask, 1.0, spacing)


# flattened nuclei (the z radius 60 % of the lateral one) on an anisotropic grid, pressed together
# by `overlap` of their radii: each keeps (nearly all of) its own voxels; a waist as wide as the
# nucleus (a dumbbell with overlap 0.7) stays one nucleus
TOUCH_CASES = [
    pytest.param((4.0, 4.0), 0.1, 2, id="equal-pressed"),
    pytest.param((4.5, 3.0), 0.15, 2, id="unequal-pressed"),
    pytest.param((4.0, 4.0), 0.7, 1, id="wide-waist"),
]


@pytest.mark.parametrize("radii,overlap,n_nuclei", TOUCH_CASES)
def test_label_nuclei_separates_touching_nuclei_at_their_neck(radii, overlap, n_nuclei):
    spacing = (0.2, 0.2, 0.5)
    shape = (110, 60, 24)
    d = (radii[0] + radii[1]) * (1 - overlap)
    centres = [(6.0, 6.0, 6.0), (6.0 + d, 6.0, 6.0)]
    grid = np.meshgrid(*[np.arange(n) * s for n, s in zip(shape, spacing)], indexing="ij")
    mask = np.zeros(shape, bool)
    for c, r in zip(centres, radii):
        mask |= ((grid[0] - c[0]) ** 2 + (grid[1] - c[1]) ** 2) / r**2 + (grid[2] - c[2]) ** 2 / (0.6 * r) ** 2 <= 1
    assert ndimage.label(mask)[1] == 1  # one connected component
    lab = label_nuclei(mask, 1.0, spacing)
    assert int(lab.max()) == n_nuclei
    np.testing.assert_array_equal(lab > 0, mask)
    if n_nuclei == 2:
        # the cut runs through the neck: each part is on its own side of it
        for i, (c, r) in enumerate(zip(centres, radii), start=1):
            part = np.argwhere(lab == lab[tuple(int(round(ci / s)) for ci, s in zip(c, spacing))]) * spacing
            expected = 4 / 3 * np.pi * r * r * 0.6 * r
            assert part.shape[0] * np.prod(spacing) == pytest.approx(expected, rel=0.12)
        assert int(label_nuclei(mask, 1.0, spacing, neck_ratio=0).max()) == 1  # connected components alone


def test_split_touching_keeps_a_small_part_with_its_neighbour():
    # a wide-necked bump is not a nucleus, and a narrow-necked one under min_volume_um3 joins its neighbour
    spacing = (1.0, 1.0, 1.0)
    mask = np.zeros((40, 20, 3), bool)
    yy, xx = np.mgrid[0:40, 0:20]
    mask[(xx - 10) ** 2 + (yy - 12) ** 2 <= 64] = True  # radius 8
    mask[(xx - 10) ** 2 + (yy - 23) ** 2 <= 9] = True  # radius 3, a narrow neck
    lab = ndimage.label(mask)[0]
    assert int(split_touching(lab, spacing).max()) == 2
    assert int(split_touching(lab, spacing, min_volume_um3=100.0).max()) == 1
    assert int(split_touching(lab, spacing, neck_ratio=0).max()) == 1


def _two_cells_one_component():
    """Two box cells joined by a thin lamella (one component of the cell mask), a nucleus in each."""
    cells = np.zeros((64, 20, 12), bool)
    cells[2:28, 2:18, 0:10] = True  # cell A: 26 x 16 x 10
    cells[36:62, 2:18, 0:8] = True  # cell B: 26 x 16 x 8
    cells[28:36, 2:18, 0:2] = True  # the thin junction: 8 x 16 x 2 voxels shared between them
    nuclei = np.zeros(cells.shape, np.int32)
    nuclei[10:20, 6:14, 2:7] = 4  # 10 x 8 x 5
    nuclei[44:52, 6:14, 2:6] = 9  # 8 x 8 x 4
    return cells, nuclei


def test_label_cells_gives_each_nucleus_its_own_cell():
    cells, nuclei = _two_cells_one_component()
    assert ndimage.label(cells)[1] == 1
    lab = label_cells(cells, nuclei, (1.0, 1.0, 1.0))
    assert sorted(np.unique(lab).tolist()) == [0, 4, 9]
    np.testing.assert_array_equal(lab > 0, cells)
    assert (lab[2:28] == 4)[cells[2:28]].all() and (lab[36:62] == 9)[cells[36:62]].all()
    # the junction is shared: 8 x 16 x 2 voxels between the two cells, split between them
    assert (lab == 4).sum() + (lab == 9).sum() == cells.sum()
    assert abs(int((lab[28:36] == 4).sum()) - int((lab[28:36] == 9).sum())) <= 2 * 16 * 2


def test_label_cells_leaves_cells_without_nucleus_and_refuses_bad_arguments():
    cells, nuclei = _two_cells_one_component()
    cells[0:2, 0:2, 0:2] = True  # touches nothing: no nucleus reaches it
    cells[2:28, 2:18, 0:10] &= False
    lonely = np.zeros(cells.shape, bool)
    lonely[5:8, 5:8, 5:8] = True
    lab = label_cells(cells | lonely, nuclei, (1.0, 1.0, 1.0))
    assert lab[0, 0, 0] == 0 and lab[6, 6, 6] == 0
    assert (lab == 4).sum() == (nuclei == 4).sum()  # a nucleus outside the mask is its own (nucleus-only) cell
    assert not label_cells(cells, np.zeros(cells.shape, np.int32), (1.0, 1.0, 1.0)).any()
    with pytest.raises(ValueError):
        label_cells(cells, nuclei[:, :, :5], (1.0, 1.0, 1.0))


def test_label_cells_of_fortran_ordered_arrays():
    # nibabel reads NIfTI data in Fortran order; the cells must not depend on the memory order
    cells, nuclei = _two_cells_one_component()
    np.testing.assert_array_equal(label_cells(np.asfortranarray(cells), np.asfortranarray(nuclei), (1.0, 1.0, 1.0)),
                                  label_cells(cells, nuclei, (1.0, 1.0, 1.0)))


def _label_cells_whole_field(mask, nuclei, spacing):
    """The reference: one distance transform and one watershed over the whole field, then the
    one-component rule (what label_cells computed before it worked component by component)."""
    from skimage.segmentation import watershed

    region = mask | (nuclei > 0)
    cells = watershed(-ndimage.distance_transform_edt(region, sampling=spacing), nuclei, mask=region)
    components, _ = ndimage.label(region)
    for nid in np.unique(nuclei[nuclei > 0]):
        comps, counts = np.unique(components[nuclei == nid], return_counts=True)
        cells[(cells == nid) & (components != comps[np.argmax(counts)])] = 0
    return cells


@pytest.mark.parametrize("seed", range(6))
def test_label_cells_component_by_component_equals_the_whole_field_watershed(seed):
    """Components reached by one nucleus are taken whole and only shared ones are flooded, each in its
    own box: the cells are those of one watershed over the whole field (up to voxels at tied
    distances, which either seed may take)."""
    rng = np.random.default_rng(seed)
    differing = total = 0
    for _ in range(20):
        shape = tuple(int(n) for n in rng.integers(8, 30, 3))
        mask = ndimage.gaussian_filter(rng.random(shape), 1.5) > rng.uniform(0.45, 0.55)
        nuclei = np.zeros(shape, np.int32)
        for _ in range(int(rng.integers(0, 6))):
            centre, r = [int(rng.integers(0, n)) for n in shape], int(rng.integers(1, 3))
            nuclei[tuple(slice(max(c - r, 0), c + r) for c in centre)] = int(rng.integers(1, 9))
        spacing = tuple(float(v) for v in rng.choice([0.1, 0.2, 0.3], 3))
        got = label_cells(mask, nuclei, spacing)
        differing += int((got != _label_cells_whole_field(mask, nuclei, spacing)).sum())
        total += got.size
    assert differing <= 1e-3 * total
