"""
Masks and labels: the cell mask from the RI, one integer id per nucleus, one region per cell.

Arrays are indexed ``[x, y, z]`` with voxel spacing ``(sx, sy, sz)`` in um.

Touching nuclei
---------------
A mask from a segmentation network has no boundary between nuclei that touch: their voxels form one
connected component. :py:func:`label_nuclei` separates them where the component narrows to a neck:
a watershed of the distance transform (computed with the voxel size as sampling, so an anisotropic
z step does not distort it) from its maxima, after which two adjacent regions stay apart only when the
distance at their shared boundary (the neck's half-width) is below ``neck_ratio`` times the smaller of
their two peaks (their half-widths). Scale-free: a nucleus of any size pressed against another is cut
at the same relative narrowing, while a kidney or lobed nucleus, whose waist is wide, stays whole.
On the nucleus truth of 80 fields rendered by the four styles (seed 77, 20 each; 309 nuclei of at least
20 um^3, beam and organic fields with touching nuclei), instance F1 at IoU 0.5 was 0.912 for connected
components, 0.960 with ``neck_ratio`` 0.7, 0.975 with 0.8 (the default) and 0.969 with 0.9 (kidney and
lobed nuclei start to split); ``scripts/tracking_eval.py --neck-sweep`` regenerates these numbers.

Cells
-----
:py:func:`label_cells` gives every nucleus its cell: a seeded watershed of the cell mask, the nuclei as
seeds, on the mask's distance transform, so that two touching cells part along the thin cytoplasm
where they meet. Each cell is one connected piece of the mask (a nucleus split over two components
takes the one holding most of it), and cell voxels out of reach of every nucleus stay 0.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage

from skimage.morphology import h_maxima
from skimage.segmentation import watershed

from osnet_monai.measurements._checks import check_labels, check_spacing
from osnet_monai.transforms.intensity import robust_contrast_scale

__all__ = ["cell_mask_from_ri", "cell_margin", "label_nuclei", "label_cells", "split_touching"]

#: :py:func:`cell_margin`'s share of the field's bright cell contrast (95th percentile of the voxels
#: clearly above the medium). With true nuclei on style-randomised division series (4 frames each),
#: the share of nuclei x frames whose N/C ratio came within 10% of the truth, chosen on seeds
#: 700-705 and 710-715: 0.45 gave 48% and 50% (0.35: 48% and 12%; 0.55: 49% on 710-715; fixed
#: margin 0.01: 42% and 33%; 0.005, the old default, cells too large: 4% and 1%); held out, seeds
#: 720-725: 0.45 57% (median error 0.093), fixed 0.01 50%, fixed 0.005 3%.
RELATIVE_MARGIN = 0.45
#: the margin of a field without cell (nothing clearly above the medium), and of the old default
FIXED_MARGIN = 0.005

#: default ``neck_ratio`` of :py:func:`label_nuclei` (see the module docstring, "Touching nuclei")
NECK_RATIO = 0.8
#: depth (um) a distance maximum must have to seed a region before the neck test merges regions
_SEED_DEPTH_UM = 0.05


def _keep_large(labels: np.ndarray, voxel_um3: float, min_volume_um3: float) -> np.ndarray:
    """Per label id, whether its component reaches ``min_volume_um3``; shape (labels.max() + 1,), id 0 False."""
    # counted over the labelled voxels only: bincount of the whole volume casts it to int64 first
    n = int(labels.max(initial=0))
    keep = np.bincount(labels[labels > 0], minlength=n + 1) * voxel_um3 >= min_volume_um3
    keep[0] = False
    return keep


def cell_mask_from_ri(
    ri_xyz: np.ndarray,
    medium_ri: float,
    spacing_um: Sequence[float],
    margin: float | None = None,
    smoothing_um: float = 0.0,
    min_volume_um3: float = 50.0,
) -> np.ndarray:
    """
    Cell mask from RI: RI above the medium (optionally smoothed), holes filled, small specks removed.

    Cells are denser than the medium while the medium is flat, so a threshold just above
    ``medium_ri`` finds the cells. Voxel noise is handled without blurring: specks in the medium fall
    under ``min_volume_um3`` and dropouts inside the cell are holes that get filled. The nucleus
    is often less dense than the cytoplasm; enclosed holes are filled section by section in the xy
    plane, so a nucleus below the threshold still counts as cell, also for cells lying on the
    volume's z border (the coverslip).

    Args:
        ri_xyz: RI volume, shape (X, Y, Z), dimensionless.
        medium_ri: RI of the culture medium (about 1.337).
        spacing_um: voxel size (sx, sy, sz) in um.
        margin: RI above the medium that counts as cell; None (default): :py:func:`cell_margin`, a
            share of the field's own cell contrast, so an instrument whose contrast is scaled finds
            the same cells.
        smoothing_um: Gaussian standard deviation in um (per axis converted to voxels); 0 (default)
            disables. With a threshold near the medium, smoothing moves the boundary outwards (the
            smoothed step crosses ``margin`` early): on a 20 um phantom cell with RI noise 0.001-0.003,
            no smoothing gave the volume within 0.5 %, 0.15 um +3 %, 0.3 um +9 %.
        min_volume_um3: connected components smaller than this volume (um^3) are dropped.

    Returns:
        boolean mask, shape (X, Y, Z).

    Examples:
        >>> ri = np.full((40, 40, 10), 1.337, dtype=np.float32)
        >>> ri[10:30, 10:30, 2:8] = 1.36
        >>> int(cell_mask_from_ri(ri, 1.337, (0.2, 0.2, 0.4), min_volume_um3=1.0).sum())
        2400
    """
    ri = np.asarray(ri_xyz, dtype=np.float32)
    if ri.ndim != 3:
        raise ValueError(f"ri_xyz must be 3D (X, Y, Z), got shape {ri.shape}.")
    spacing = check_spacing(spacing_um)
    if smoothing_um > 0:
        ri = ndimage.gaussian_filter(ri, [smoothing_um / s for s in spacing], truncate=3.0)
    if margin is None:
        margin = cell_margin(ri - medium_ri)
    mask = ri > (medium_ri + margin)
    # xy-only connectivity: background regions enclosed within a section are holes; labelled one
    # section at a time, so the labels are a section's and not a whole volume's int32
    in_plane = ndimage.generate_binary_structure(2, 1)
    for z in range(mask.shape[2]):
        bg, n_bg = ndimage.label(~mask[:, :, z], structure=in_plane)
        touches_border = np.zeros(n_bg + 1, dtype=bool)
        for edge in (bg[0], bg[-1], bg[:, 0], bg[:, -1]):
            touches_border[edge] = True
        mask[:, :, z] |= ~touches_border[bg]
    cells, _ = ndimage.label(mask)
    return _keep_large(cells, float(np.prod(spacing)), min_volume_um3)[cells]


def cell_margin(contrast: np.ndarray, share: float = RELATIVE_MARGIN, noise_multiple: float = 4.0) -> float:
    """
    The RI above the medium where a field's cells begin: ``share`` of the 95th percentile of the
    contrast of voxels ``noise_multiple`` background noise SDs above the medium. The missing cone
    blurs a cell's edge over microns, so a threshold just above the medium (0.005) takes in the blur
    and makes cells 18-31% too large; one in proportion to the field's own cell contrast cuts the
    edge at the same place whatever the instrument's contrast scale.

    Args:
        contrast: RI minus the medium's, any shape.
        share: fraction of the bright cell contrast. Defaults to :data:`RELATIVE_MARGIN`.
        noise_multiple: voxels this many noise SDs above the medium count as cell.

    Returns:
        the margin; :data:`FIXED_MARGIN` for a field without cell.

    Examples:
        >>> c = np.zeros((40, 40, 10), dtype=np.float32); c[10:30, 10:30, 2:8] = 0.02
        >>> round(cell_margin(c), 4), round(cell_margin(2 * c) / cell_margin(c), 3)
        (0.009, 2.0)
    """
    bright = robust_contrast_scale(contrast, fallback=float("nan"), noise_multiple=noise_multiple, percentile=95.0)
    return FIXED_MARGIN if np.isnan(bright) else float(share * bright)


def _raster_order(labels: np.ndarray) -> np.ndarray:
    """Ids renumbered 1..n in the raster order of each region's first voxel (as ``ndimage.label`` numbers)."""
    # each region's first voxel from within its bounding box: a whole-volume np.unique would sort
    # a copy of the volume and index it in int64, several times the labels' memory
    ids, first = [], []
    for i, box in enumerate(ndimage.find_objects(labels), start=1):
        if box is None:
            continue
        local = np.unravel_index(int(np.argmax(labels[box] == i)), tuple(b.stop - b.start for b in box))
        ids.append(i)
        first.append(np.ravel_multi_index(tuple(b.start + k for b, k in zip(box, local)), labels.shape))
    lut = np.zeros(int(labels.max(initial=0)) + 1, dtype=np.int32)
    lut[np.asarray(ids, dtype=np.intp)[np.argsort(first)]] = np.arange(1, len(ids) + 1, dtype=np.int32)
    return lut[labels]


def _shifted_pairs(shape: tuple[int, ...], connectivity: int):
    """Slices ``(here, there)`` pairing every voxel with each neighbour of one half of the neighbourhood."""
    offsets = np.argwhere(ndimage.generate_binary_structure(len(shape), connectivity)) - 1
    for off in offsets:
        nonzero = off[off != 0]
        if nonzero.size == 0 or nonzero[0] < 0:  # keep one of each +-offset pair
            continue
        here = tuple(slice(0, n - o) if o >= 0 else slice(-o, n) for n, o in zip(shape, off))
        there = tuple(slice(o, n) if o >= 0 else slice(0, n + o) for n, o in zip(shape, off))
        yield here, there


def _boundary_saddles(regions: np.ndarray, dist: np.ndarray, connectivity: int) -> dict[tuple[int, int], float]:
    """For each pair of adjacent regions ``(a, b)``, a < b: the largest distance value on their shared boundary."""
    saddles: dict[tuple[int, int], float] = {}
    n = int(regions.max()) + 1
    for here, there in _shifted_pairs(regions.shape, connectivity):
        left, right = regions[here], regions[there]
        touch = (left != right) & (left > 0) & (right > 0)
        if not touch.any():
            continue
        a, b = np.minimum(left[touch], right[touch]), np.maximum(left[touch], right[touch])
        value = np.minimum(dist[here][touch], dist[there][touch])
        keys, inverse = np.unique(a.astype(np.int64) * n + b, return_inverse=True)
        best = np.zeros(keys.size)
        np.maximum.at(best, inverse, value)
        for key, v in zip(keys.tolist(), best.tolist()):
            pair = divmod(key, n)
            saddles[pair] = max(saddles.get(pair, 0.0), v)
    return saddles


def _merge_wide_necks(
    regions: np.ndarray, dist: np.ndarray, neck_ratio: float, min_voxels: float, connectivity: int
) -> np.ndarray:
    """Merges adjacent regions whose neck is wide (saddle >= ratio x smaller peak) or one of which is under
    ``min_voxels``; the pair with the widest relative neck first, until no pair qualifies."""
    n = int(regions.max())
    if n <= 1:
        return regions
    peak = np.zeros(n + 1)
    np.maximum.at(peak, regions.ravel(), dist.ravel())
    size = np.bincount(regions.ravel(), minlength=n + 1).astype(np.float64)
    saddles = _boundary_saddles(regions, dist, connectivity)
    lut = np.arange(n + 1)
    while saddles:
        def score(pair):
            a, b = pair
            small = min(size[a], size[b]) < min_voxels
            return (small, saddles[pair] / max(min(peak[a], peak[b]), 1e-12))
        pair = max(saddles, key=score)
        small, ratio = score(pair)
        if not small and ratio < neck_ratio:
            break
        a, b = pair
        lut[lut == b] = a
        peak[a], size[a] = max(peak[a], peak[b]), size[a] + size[b]
        merged: dict[tuple[int, int], float] = {}
        for (x, y), v in saddles.items():
            x, y = (a if x == b else x), (a if y == b else y)
            if x != y:
                key = (min(x, y), max(x, y))
                merged[key] = max(merged.get(key, 0.0), v)
        saddles = merged
    return lut[regions]


def split_touching(
    labels_xyz: np.ndarray,
    spacing_um: Sequence[float],
    neck_ratio: float = NECK_RATIO,
    min_volume_um3: float = 0.0,
    connectivity: int = 1,
) -> np.ndarray:
    """
    Splits each labelled object where it narrows to a neck (see the module docstring, "Touching nuclei").

    Args:
        labels_xyz: integer labels, shape (X, Y, Z) (or (X, Y)), 0 background; each id is split on its own.
        spacing_um: voxel size in um, one value per axis.
        neck_ratio: two regions stay apart when their neck's half-width is below this share of the
            smaller region's half-width; 1 or more never merges seeds, 0 keeps every object whole.
        min_volume_um3: a part smaller than this (um^3; um^2 in 2D) joins the neighbour it shares the
            widest neck with.
        connectivity: the neighbourhood the labels were made with (1 faces, up to ``ndim``); parts
            joined only through an edge or a corner are adjacent when it includes them.

    Returns:
        int32 labels, same shape, the parts numbered 1..n in raster order.

    Examples:
        >>> m = np.zeros((24, 12, 3), dtype=np.int32)
        >>> yy, xx = np.mgrid[0:24, 0:12]
        >>> for cx in (6, 17):
        ...     m[(xx - 6) ** 2 + (yy - cx) ** 2 <= 25] = 1
        >>> int(split_touching(m, (1.0, 1.0, 1.0)).max()), int(split_touching(m, (1.0, 1.0, 1.0), neck_ratio=0).max())
        (2, 1)
    """
    labels = check_labels(labels_xyz, "labels_xyz")
    spacing = check_spacing(spacing_um, labels.ndim)
    out = np.zeros(labels.shape, dtype=np.int32)
    next_id = 1
    min_voxels = min_volume_um3 / float(np.prod(spacing))
    for i, box in enumerate(ndimage.find_objects(labels), start=1):
        if box is None:
            continue
        # one voxel of margin, so that the crop's edge is background wherever the volume goes on
        box = tuple(slice(max(b.start - 1, 0), min(b.stop + 1, n)) for b, n in zip(box, labels.shape))
        inside = labels[box] == i
        parts = inside.astype(np.int32)
        if neck_ratio > 0:
            # the volume's border is not background: a nucleus cut by it keeps its width there
            dist = ndimage.distance_transform_edt(inside, sampling=spacing)
            structure = ndimage.generate_binary_structure(labels.ndim, connectivity)
            seeds, _ = ndimage.label(h_maxima(dist, _SEED_DEPTH_UM) & inside, structure=structure)
            if seeds.max() > 1:
                regions = watershed(-dist, seeds, mask=inside, connectivity=connectivity)
                parts = _merge_wide_necks(regions, dist, neck_ratio, min_voxels, connectivity)
        ids = np.unique(parts[parts > 0])
        lut = np.zeros(int(parts.max()) + 1, dtype=np.int32)
        lut[ids] = np.arange(next_id, next_id + ids.size, dtype=np.int32)
        out[box][inside] = lut[parts[inside]]
        next_id += ids.size
    return _raster_order(out)


def label_nuclei(
    mask_xyz: np.ndarray,
    min_volume_um3: float,
    spacing_um: Sequence[float],
    connectivity: int = 1,
    neck_ratio: float = NECK_RATIO,
) -> np.ndarray:
    """
    One integer id per nucleus: 3D connected components of a binary mask, small ones removed, touching
    nuclei separated at their neck.

    Args:
        mask_xyz: boolean nucleus mask, shape (X, Y, Z), e.g. section-wise OS-Net output stacked.
        min_volume_um3: components smaller than this volume (um^3) are removed (debris, false
            positives); a part split off a component smaller than this stays with its neighbour.
        spacing_um: voxel size (sx, sy, sz) in um.
        connectivity: 1 (faces, default), 2 (faces and edges) or 3 (26-neighbourhood).
        neck_ratio: how narrow a neck separates two touching nuclei (:py:func:`split_touching`); 0
            gives the connected components alone.

    Returns:
        int32 labels, shape (X, Y, Z), 0 background, nuclei numbered 1..n in raster order.

    Examples:
        >>> m = np.zeros((10, 10, 4), dtype=bool); m[1:4, 1:4, :] = True; m[6:9, 6:9, :] = True; m[0, 9, 0] = True
        >>> lab = label_nuclei(m, min_volume_um3=1.0, spacing_um=(0.5, 0.5, 1.0))
        >>> int(lab.max()), int((lab == 2).sum())
        (2, 36)
    """
    mask = np.asarray(mask_xyz, dtype=bool)
    if mask.ndim != 3:
        raise ValueError(f"mask_xyz must be 3D (X, Y, Z), got shape {mask.shape}.")
    spacing = check_spacing(spacing_um)
    if neck_ratio < 0:
        raise ValueError(f"neck_ratio must be >= 0, got {neck_ratio}.")
    labels, _ = ndimage.label(mask, structure=ndimage.generate_binary_structure(3, connectivity))
    keep = _keep_large(labels, float(np.prod(spacing)), min_volume_um3)
    # lookup table: kept ids to 1..n in label (raster) order, the rest to 0
    lut = np.zeros(keep.shape[0], dtype=np.int32)
    lut[keep] = np.arange(1, int(keep.sum()) + 1, dtype=np.int32)
    labels = lut[labels]
    if neck_ratio == 0 or not labels.any():
        return labels
    return split_touching(labels, spacing, neck_ratio, min_volume_um3, connectivity)


def label_cells(
    cell_mask_xyz: np.ndarray, nuclei_xyz: np.ndarray, spacing_um: Sequence[float]
) -> np.ndarray:
    """
    The cell of every nucleus: a watershed of the cell mask seeded by the nuclei (see the module
    docstring, "Cells").

    Args:
        cell_mask_xyz: boolean cell mask, shape (X, Y, Z) (e.g. :py:func:`cell_mask_from_ri`); the
            nuclei are added to it (a nucleus is part of its cell).
        nuclei_xyz: integer nucleus labels, same shape, 0 background.
        spacing_um: voxel size (sx, sy, sz) in um.

    Returns:
        int32 cell labels, same shape: each cell has its nucleus's id; 0 outside every cell and in
        cell regions no nucleus reaches.

    Examples:
        >>> cells = np.zeros((30, 10, 4), dtype=bool); cells[1:29, 1:9, :] = True
        >>> nuclei = np.zeros(cells.shape, dtype=np.int32); nuclei[4:7, 4:6, 1:3] = 3; nuclei[23:26, 4:6, 1:3] = 5
        >>> lab = label_cells(cells, nuclei, (1.0, 1.0, 1.0))
        >>> int((lab == 3).sum()), int((lab == 5).sum()), int(lab[15, 5, 2] > 0)
        (448, 448, 1)
    """
    # C order: skimage 0.26's watershed given Fortran-ordered markers and mask (what nibabel reads
    # from a NIfTI file) labels the seeds alone and floods nothing
    mask = np.ascontiguousarray(cell_mask_xyz, dtype=bool)
    nuclei = np.ascontiguousarray(check_labels(nuclei_xyz, "nuclei_xyz"))
    if mask.ndim != 3 or mask.shape != nuclei.shape:
        raise ValueError(f"cell_mask_xyz and nuclei_xyz must be 3D of equal shape, got {mask.shape} and {nuclei.shape}.")
    spacing = check_spacing(spacing_um)
    region = mask | (nuclei > 0)
    if not nuclei.any():
        return np.zeros(mask.shape, dtype=np.int32)
    components, n_found = ndimage.label(region)
    inside = nuclei > 0
    ids = np.unique(nuclei[inside])
    n_comp = int(n_found) + 1
    pairs, counts = np.unique(nuclei[inside].astype(np.int64) * n_comp + components[inside], return_counts=True)
    # a component reached by one nucleus is that nucleus's cell whole (a single seed floods it); only
    # components shared by nuclei need the distance transform and the watershed, each in its own
    # bounding box one voxel wider: the box's voxels outside the component are then background, and
    # the nearest background of a component voxel always lies in that box, so the distances are those
    # of the whole field. 3.4x faster on 8 fields of the four styles, the same cells.
    pair_ids, pair_comps = pairs // n_comp, pairs % n_comp
    seeds_per_comp = np.bincount(pair_comps, minlength=n_comp)
    alone = seeds_per_comp[pair_comps] == 1
    sole = np.zeros(n_comp, dtype=np.int32)
    sole[pair_comps[alone]] = pair_ids[alone]
    cells = sole[components]
    boxes = ndimage.find_objects(components)
    for comp in np.flatnonzero(seeds_per_comp > 1):
        box = tuple(slice(max(s.start - 1, 0), s.stop + 1) for s in boxes[comp - 1])
        piece = components[box] == comp
        dist = ndimage.distance_transform_edt(piece, sampling=spacing)
        flooded = watershed(-dist, np.where(piece, nuclei[box], 0).astype(np.int32), mask=piece)
        cells[box][piece] = flooded[piece]
    # one connected piece per cell: the component holding most of its nucleus
    home = np.zeros(int(ids.max()) + 1, dtype=np.int64)
    share = np.zeros(int(ids.max()) + 1, dtype=np.int64)
    # ascending component order with a strict '>' keeps the first component on a tie
    for key, count in zip(pairs.tolist(), counts.tolist()):
        nid, comp = divmod(key, n_comp)
        if count > share[nid]:
            home[nid], share[nid] = comp, count
    # int32 lookups, no copy at the end: on a large stack each whole-volume int64 array is twice its size
    cells[(cells > 0) & (components != home.astype(np.int32)[cells])] = 0
    return cells.astype(np.int32, copy=False)
