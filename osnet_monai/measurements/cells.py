"""
Masks and labels: the cell mask from the RI, one integer id per nucleus.

Arrays are indexed ``[x, y, z]`` with voxel spacing ``(sx, sy, sz)`` in um.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage

from osnet_monai.measurements._checks import check_spacing

__all__ = ["cell_mask_from_ri", "label_nuclei"]


def _keep_large(labels: np.ndarray, voxel_um3: float, min_volume_um3: float) -> np.ndarray:
    """Per label id, whether its component reaches ``min_volume_um3``; shape (labels.max() + 1,), id 0 False."""
    keep = np.bincount(labels.ravel()) * voxel_um3 >= min_volume_um3
    keep[0] = False
    return keep


def cell_mask_from_ri(
    ri_xyz: np.ndarray,
    medium_ri: float,
    spacing_um: Sequence[float],
    margin: float = 0.005,
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
        margin: RI above the medium that counts as cell.
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
    mask = ri > (medium_ri + margin)
    # xy-only connectivity: background regions enclosed within a section are holes
    in_plane = np.zeros((3, 3, 3), dtype=bool)
    in_plane[:, :, 1] = ndimage.generate_binary_structure(2, 1)
    bg, n_bg = ndimage.label(~mask, structure=in_plane)
    touches_border = np.zeros(n_bg + 1, dtype=bool)
    for face in (bg[0], bg[-1], bg[:, 0], bg[:, -1]):
        touches_border[np.unique(face)] = True
    mask |= ~touches_border[bg]
    cells, _ = ndimage.label(mask)
    return _keep_large(cells, float(np.prod(spacing)), min_volume_um3)[cells]


def label_nuclei(
    mask_xyz: np.ndarray, min_volume_um3: float, spacing_um: Sequence[float], connectivity: int = 1
) -> np.ndarray:
    """
    One integer id per nucleus: 3D connected components of a binary mask, small ones removed.

    Args:
        mask_xyz: boolean nucleus mask, shape (X, Y, Z), e.g. section-wise OS-Net output stacked.
        min_volume_um3: components smaller than this volume (um^3) are removed (debris, false positives).
        spacing_um: voxel size (sx, sy, sz) in um.
        connectivity: 1 (faces, default), 2 (faces and edges) or 3 (26-neighbourhood).

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
    labels, _ = ndimage.label(mask, structure=ndimage.generate_binary_structure(3, connectivity))
    keep = _keep_large(labels, float(np.prod(spacing)), min_volume_um3)
    # lookup table: kept ids to 1..n in label (raster) order, the rest to 0
    lut = np.zeros(keep.shape[0], dtype=np.int32)
    lut[keep] = np.arange(1, int(keep.sum()) + 1, dtype=np.int32)
    return lut[labels]
