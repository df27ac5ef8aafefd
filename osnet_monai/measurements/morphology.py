"""
Per-nucleus morphology and dry mass from 3D refractive-index (RI) tomograms and segmented nuclei, and
from single 2D sections.

All arrays are indexed ``[x, y, z]`` (suffix ``_xyz``) with voxel spacing ``(sx, sy, sz)`` in
micrometres. Note that Tomocube TCF files store ``(Z, Y, X)``: transpose before calling.

Dry mass
--------
The RI excess over the medium is proportional to the dry-mass concentration,
``C = (n - n_medium) / alpha`` with the refractive increment ``alpha`` ~ 0.19 mL/g for proteins and
nucleic acids. Units: 1 mL/g = 1 cm^3 / g = 1e12 um^3 / 1e12 pg = 1 um^3/pg, so ``alpha`` =
0.19 mL/g = 0.19 um^3/pg and ``C`` comes out in pg/um^3 (e.g. ``n - n_m`` = 0.019 gives
0.1 pg/um^3 = 100 mg/mL). The dry mass of a nucleus is therefore::

    dry_mass_pg = sum_over_voxels((n - n_medium) / alpha) * voxel_volume_um3
                = (mean_ri - n_medium) / alpha * volume_um3

Surface area and sphericity
---------------------------
Marching cubes run directly on a binary voxel mask follows the voxel staircase and overestimates
the area by 9-19 % (measured on spheres and ellipsoids at 0.1-0.6 um spacing), which would push
every sphericity far below 1. The mask is therefore smoothed with a Gaussian of
``surface_smoothing_voxels`` (1.5 voxel by default) and the isosurface is taken at the level that
keeps the voxel-count volume (so smoothing does not shrink small, curved objects). This brings the
area within ~1.5 % of the analytic value on ellipsoids with semi-axes of 1.5-6 um, with z spacing
up to 0.6 um. ``surface_smoothing_voxels=0`` gives plain marching cubes at level 0.5 on the
padded binary mask.

``sphericity = pi^(1/3) (6 V)^(2/3) / A`` (1 for a sphere), ``equivalent_diameter = (6 V / pi)^(1/3)``.
A sphere has the largest volume for its area, so sphericity is clamped to at most 1: objects of a few
voxels, whose smoothed surface comes out smaller than their voxel-count volume implies, would
otherwise exceed it (1.19 for a 2 x 2 x 2 cube, 2.8 for a single voxel).

2D sections
-----------
A 2D input (one x-y section) has no z extent: its z spacing is a placeholder, so volume, surface
area and sphericity would only restate that placeholder. :py:func:`measure_sections_2d` reports
instead the area, the perimeter (marching squares on the mask smoothed as above: within ~1 % of
``2 pi r`` on disks of radius 1-8 um at 0.15-0.2 um pixels), ``equivalent_diameter = 2 sqrt(A / pi)``,
``circularity = 4 pi A / P^2`` (1 for a disk, clamped to at most 1 for the same reason as
sphericity), the mean RI and the dry mass per micrometre of section thickness::

    dry_mass_pg_per_um = sum_over_pixels((n - n_medium) / alpha) * pixel_area_um2

in pg/um: the dry mass of a 1 um thick slab whose RI is that of the section throughout. It is not the
nucleus's dry mass, which needs the whole stack.

Counts, centroids and mean RI come from :py:func:`skimage.measure.regionprops_table` (with
``spacing``) and :py:func:`scipy.ndimage.mean`; the surface area and the perimeter stay hand-written
(see :py:func:`_surface_area`, :py:func:`_perimeter`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import ndimage
from skimage import measure

from osnet_monai.measurements._checks import check_labels, check_labels_and_ri, check_spacing
from osnet_monai.measurements.cells import cell_mask_from_ri, label_cells

__all__ = ["measure_nuclei", "measure_sections_2d"]


def _regions(labels: np.ndarray, ri: np.ndarray, spacing: tuple[float, ...]) -> dict[str, np.ndarray]:
    """Per label present, in id order: ``label``, ``area`` (um^3 in 3D, um^2 in 2D), ``centroid-k`` (um),
    ``slice`` (bounding box) and ``mean_ri``; each an array of length n_labels."""
    props = measure.regionprops_table(labels, properties=("label", "area", "centroid", "slice"), spacing=spacing)
    props["mean_ri"] = np.zeros(props["label"].size)
    if props["label"].size:
        # ndimage sums in float64 whatever the RI dtype (regionprops' intensity_mean sums in the
        # input's); only nucleus voxels are passed, a small part of a field of view
        inside = labels > 0
        props["mean_ri"][:] = ndimage.mean(ri[inside], labels[inside], props["label"])
    return props


def _smoothed_field(mask: np.ndarray, smoothing_voxels: float) -> tuple[np.ndarray, float]:
    """The padded mask, Gaussian-smoothed, and the iso level that keeps its voxel (pixel) count.

    2D or 3D; with ``smoothing_voxels=0`` the padded binary mask and level 0.5.
    """
    pad = int(math.ceil(3.0 * smoothing_voxels)) + 2
    field = np.pad(mask, pad).astype(np.float32)
    level = 0.5
    if smoothing_voxels > 0:
        field = ndimage.gaussian_filter(field, smoothing_voxels, truncate=3.0)
        # level that keeps the voxel count: between the n-th and (n+1)-th largest smoothed values
        n = int(mask.sum())
        flat = field.ravel()
        k = flat.size - n
        part = np.partition(flat, (k - 1, k))
        level = float(0.5 * (part[k - 1] + part[k]))
    return field, level


def _surface_area(mask: np.ndarray, spacing: tuple[float, ...], smoothing_voxels: float) -> float:
    """Isosurface area in um^2 of a cropped binary mask, shape (x, y, z) (see the module docstring).

    Hand-written because regionprops has no 3D surface area and plain marching cubes on the binary
    mask overestimates it by 9-19 %.
    """
    field, level = _smoothed_field(mask, smoothing_voxels)
    try:
        verts, faces, _, _ = measure.marching_cubes(field, level, spacing=spacing)
    except (ValueError, RuntimeError):  # degenerate object (e.g. one voxel after smoothing)
        return float("nan")
    return float(measure.mesh_surface_area(verts, faces))


def _perimeter(mask: np.ndarray, spacing: tuple[float, ...], smoothing_pixels: float) -> float:
    """Iso-contour length in um of a cropped 2D binary mask, shape (x, y), smoothed as for :py:func:`_surface_area`.

    Hand-written because regionprops' ``perimeter`` refuses anisotropic pixels and, like marching
    squares on the plain binary mask, overestimates the perimeter of a disk by 6-12 %; the smoothed
    contour at the area-keeping level is within ~1 %. Holes count, as their boundary is boundary of
    the nucleus.
    """
    field, level = _smoothed_field(mask, smoothing_pixels)
    scale = np.asarray(spacing, dtype=np.float64)
    length = 0.0
    for contour in measure.find_contours(field, level):  # closed: the field is padded
        steps = np.diff(contour * scale, axis=0)
        length += float(np.sqrt((steps**2).sum(axis=1)).sum())
    return length if length > 0 else float("nan")


def _cell_measures(
    ids: np.ndarray, cells: np.ndarray, cell_mask: np.ndarray | None, ri: np.ndarray, medium_ri: float, alpha: float, voxel_um3: float
) -> tuple[np.ndarray, np.ndarray]:
    """Volume (um^3) and dry mass (pg) of the cell of each nucleus in ``ids`` (cell id = nucleus id), each
    shape (len(ids),); nan for a nucleus without a cell, or whose cell holds no voxel of ``cell_mask``
    (the nucleus lies outside every cell)."""
    n = max(int(cells.max()), int(ids.max())) + 1
    counts = np.bincount(cells.ravel(), minlength=n)[ids].astype(np.float64)
    volumes = counts * voxel_um3
    inside = cells > 0  # only cell voxels are summed, in float64 whatever the RI dtype
    excess = ndimage.sum_labels(ri[inside].astype(np.float64), cells[inside], ids) - medium_ri * counts
    dry_mass = excess / alpha * voxel_um3
    empty = counts == 0
    if cell_mask is not None:
        empty |= np.bincount(cells[inside & cell_mask], minlength=n)[ids] == 0
    volumes[empty] = np.nan
    dry_mass[empty] = np.nan
    return volumes, dry_mass


def measure_nuclei(
    labels_xyz: np.ndarray,
    ri_xyz: np.ndarray,
    spacing_um: Sequence[float],
    medium_ri: float,
    cell_mask_xyz: np.ndarray | None = None,
    refractive_increment_ml_per_g: float = 0.19,
    surface_smoothing_voxels: float = 1.5,
    cell_labels_xyz: np.ndarray | None = None,
) -> list[dict[str, Any]]:
    """
    Morphology and dry mass of every nucleus and of its cell in one 3D frame.

    Args:
        labels_xyz: integer nucleus labels, shape (X, Y, Z), 0 background, one id per nucleus
            (from :py:func:`~osnet_monai.measurements.label_nuclei` /
            :py:func:`~osnet_monai.measurements.track_nuclei`).
        ri_xyz: RI volume, shape (X, Y, Z), dimensionless.
        spacing_um: voxel size (sx, sy, sz) in um.
        medium_ri: RI of the medium.
        cell_mask_xyz: boolean cell mask, shape (X, Y, Z); computed with
            :py:func:`~osnet_monai.measurements.cell_mask_from_ri` if None. The nuclei are added to
            it (a nucleus is part of its cell by definition), and
            :py:func:`~osnet_monai.measurements.label_cells` parts it into one cell per nucleus.
        refractive_increment_ml_per_g: RI increment alpha in mL/g (= um^3/pg).
        surface_smoothing_voxels: Gaussian smoothing of each mask before marching cubes, in voxels;
            0 for plain marching cubes on the binary mask.
        cell_labels_xyz: the cells as integer labels, shape (X, Y, Z), each cell with its nucleus's
            id (from :py:func:`~osnet_monai.measurements.label_cells`); when given, ``cell_mask_xyz``
            is not used.

    Returns:
        one dict per nucleus, sorted by ``nucleus_id``, with the keys of
        :py:data:`~osnet_monai.measurements.MEASUREMENT_COLUMNS` except ``frame`` and ``time_s``:
        volume in um^3, surface area in um^2, lengths and centroids in um, dry mass in pg
        (``parent_id``, the lineage, is the tracker's to add). ``cell_volume_um3`` and
        ``cell_dry_mass_pg`` are those of the nucleus's own cell, ``nucleus_to_cell_volume_ratio`` the
        nucleus volume over it; all three ``nan`` for a nucleus outside every cell.

    Examples:
        >>> lab = np.zeros((40, 40, 20), dtype=np.int32); lab[15:25, 15:25, 5:15] = 1
        >>> ri = np.full(lab.shape, 1.337); ri[10:30, 10:30, 3:17] = 1.36; ri[lab == 1] = 1.356
        >>> row = measure_nuclei(lab, ri, (0.5, 0.5, 0.5), 1.337)[0]
        >>> round(row["volume_um3"], 3), round(row["dry_mass_pg"], 3)
        (125.0, 12.5)
    """
    labels, ri = check_labels_and_ri(labels_xyz, ri_xyz, 3, refractive_increment_ml_per_g)
    spacing = check_spacing(spacing_um)
    props = _regions(labels, ri, spacing)
    if props["label"].size == 0:
        return []
    if cell_labels_xyz is not None:
        cells = check_labels(cell_labels_xyz, "cell_labels_xyz")
        if cells.shape != labels.shape:
            raise ValueError(f"cell_labels_xyz shape {cells.shape} differs from labels {labels.shape}.")
        cell_mask = None
    else:
        if cell_mask_xyz is None:
            cell_mask = cell_mask_from_ri(ri, medium_ri, spacing)
        else:
            cell_mask = np.asarray(cell_mask_xyz, dtype=bool)
            if cell_mask.shape != labels.shape:
                raise ValueError(f"cell_mask_xyz shape {cell_mask.shape} differs from labels {labels.shape}.")
        cells = label_cells(cell_mask, labels, spacing)
    cell_volumes, cell_masses = _cell_measures(
        props["label"], cells, cell_mask, ri, medium_ri, refractive_increment_ml_per_g, float(np.prod(spacing))
    )

    rows: list[dict[str, Any]] = []
    for i, nucleus_id in enumerate(props["label"].tolist()):
        volume = float(props["area"][i])
        mean_ri = float(props["mean_ri"][i])
        area = _surface_area(labels[props["slice"][i]] == nucleus_id, spacing, surface_smoothing_voxels)
        sphericity = float("nan")
        if area > 0:
            # at most 1 (the sphere); the smoothed surface of a few-voxel object comes out too small
            sphericity = min(math.pi ** (1.0 / 3.0) * (6.0 * volume) ** (2.0 / 3.0) / area, 1.0)
        cell_volume, cell_mass = float(cell_volumes[i]), float(cell_masses[i])
        rows.append(
            {
                "nucleus_id": nucleus_id,
                "volume_um3": volume,
                "surface_area_um2": area,
                "equivalent_diameter_um": (6.0 * volume / math.pi) ** (1.0 / 3.0),
                "sphericity": sphericity,
                "mean_ri": mean_ri,
                "dry_mass_pg": (mean_ri - medium_ri) / refractive_increment_ml_per_g * volume,
                "cell_volume_um3": cell_volume,
                "cell_dry_mass_pg": cell_mass,
                "nucleus_to_cell_volume_ratio": volume / cell_volume,
                "centroid_x_um": float(props["centroid-0"][i]),
                "centroid_y_um": float(props["centroid-1"][i]),
                "centroid_z_um": float(props["centroid-2"][i]),
            }
        )
    return rows


def measure_sections_2d(
    labels_xy: np.ndarray,
    ri_xy: np.ndarray,
    spacing_um: Sequence[float],
    medium_ri: float,
    refractive_increment_ml_per_g: float = 0.19,
    perimeter_smoothing_pixels: float = 1.5,
) -> list[dict[str, Any]]:
    """
    Morphology and dry mass per micrometre of thickness of every nucleus in one 2D section.

    For 2D inputs, whose z spacing is a placeholder (see the module docstring, "2D sections").

    Args:
        labels_xy: integer nucleus labels, shape (X, Y), 0 background, one id per nucleus.
        ri_xy: RI section, shape (X, Y), dimensionless.
        spacing_um: pixel size (sx, sy) in um.
        medium_ri: RI of the medium.
        refractive_increment_ml_per_g: RI increment alpha in mL/g (= um^3/pg).
        perimeter_smoothing_pixels: Gaussian smoothing of each mask before marching squares, in
            pixels; 0 for plain marching squares on the binary mask.

    Returns:
        one dict per nucleus, sorted by ``nucleus_id``, with the keys of
        :py:data:`~osnet_monai.measurements.MEASUREMENT_COLUMNS_2D` except ``frame`` and ``time_s``:
        area in um^2, lengths and centroids in um, dry mass per um of thickness in pg/um.

    Examples:
        >>> lab = np.zeros((40, 40), dtype=np.int32); lab[10:30, 10:30] = 1
        >>> ri = np.full(lab.shape, 1.337); ri[lab == 1] = 1.356
        >>> row = measure_sections_2d(lab, ri, (0.5, 0.5), 1.337)[0]
        >>> round(row["area_um2"], 3), round(row["dry_mass_pg_per_um"], 3)
        (100.0, 10.0)
    """
    labels, ri = check_labels_and_ri(labels_xy, ri_xy, 2, refractive_increment_ml_per_g)
    spacing = check_spacing(spacing_um, ndim=2)
    props = _regions(labels, ri, spacing)

    rows: list[dict[str, Any]] = []
    for i, nucleus_id in enumerate(props["label"].tolist()):
        area = float(props["area"][i])
        mean_ri = float(props["mean_ri"][i])
        perimeter = _perimeter(labels[props["slice"][i]] == nucleus_id, spacing, perimeter_smoothing_pixels)
        circularity = float("nan")
        if perimeter > 0:
            # at most 1 (the disk); the smoothed contour of a few-pixel object comes out too short
            circularity = min(4.0 * math.pi * area / perimeter**2, 1.0)
        rows.append(
            {
                "nucleus_id": nucleus_id,
                "area_um2": area,
                "perimeter_um": perimeter,
                "equivalent_diameter_um": 2.0 * math.sqrt(area / math.pi),
                "circularity": circularity,
                "mean_ri": mean_ri,
                "dry_mass_pg_per_um": (mean_ri - medium_ri) / refractive_increment_ml_per_g * area,
                "centroid_x_um": float(props["centroid-0"][i]),
                "centroid_y_um": float(props["centroid-1"][i]),
            }
        )
    return rows
