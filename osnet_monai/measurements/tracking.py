"""
Frame-to-frame nucleus ids: one-to-one matching by overlap, then by centroid distance.

Both stages are linear assignment problems solved optimally with
:py:func:`scipy.optimize.linear_sum_assignment`; a greedy pass (largest overlap or nearest pair first)
can take a pair that blocks two correct ones.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.optimize import linear_sum_assignment
from skimage import measure

from osnet_monai.measurements._checks import check_labels, check_spacing

__all__ = ["track_nuclei"]


def _match_by_overlap(prev: np.ndarray, cur: np.ndarray) -> dict[int, int]:
    """``{current id: previous id}`` maximising the total overlap (voxel count); pairs with no overlap never match."""
    both = (prev > 0) & (cur > 0)
    if not both.any():
        return {}
    # contingency table of the voxels labelled in both frames, restricted to the ids that overlap
    n_cur = int(cur.max()) + 1
    pairs, overlap = np.unique(prev[both].astype(np.int64) * n_cur + cur[both].astype(np.int64), return_counts=True)
    prev_ids, rows = np.unique(pairs // n_cur, return_inverse=True)
    cur_ids, cols = np.unique(pairs % n_cur, return_inverse=True)
    table = np.zeros((prev_ids.size, cur_ids.size), dtype=np.int64)
    table[rows, cols] = overlap
    rows, cols = linear_sum_assignment(table, maximize=True)
    hit = table[rows, cols] > 0  # a rectangular table also pairs up ids that do not touch
    return dict(zip(cur_ids[cols[hit]].tolist(), prev_ids[rows[hit]].tolist()))


def _centroids_um(labels: np.ndarray, ids: np.ndarray, spacing: tuple[float, ...]) -> np.ndarray:
    """Centroids in um of the given (present) ids, shape (len(ids), labels.ndim)."""
    props = measure.regionprops_table(labels, properties=("label", "centroid"), spacing=spacing)
    table = np.stack([props[f"centroid-{k}"] for k in range(labels.ndim)], axis=1)
    return table[np.searchsorted(props["label"], ids)]


def _match_by_distance(
    prev: np.ndarray, cur: np.ndarray, prev_ids: np.ndarray, cur_ids: np.ndarray, spacing: tuple[float, ...], max_um: float
) -> dict[int, int]:
    """``{current id: previous id}`` for centroids at most ``max_um`` apart: most pairs, then least total distance."""
    if prev_ids.size == 0 or cur_ids.size == 0:
        return {}
    dist = np.linalg.norm(
        _centroids_um(cur, cur_ids, spacing)[:, None, :] - _centroids_um(prev, prev_ids, spacing)[None, :, :], axis=-1
    )
    allowed = dist <= max_um
    if not allowed.any():
        return {}
    # a pair too far apart costs more than all allowed pairs together, so the solver takes it only
    # where nothing allowed is left, and it is dropped below
    cost = np.where(allowed, dist, dist[allowed].sum() + 1.0)
    rows, cols = linear_sum_assignment(cost)
    ok = allowed[rows, cols]
    return dict(zip(cur_ids[rows[ok]].tolist(), prev_ids[cols[ok]].tolist()))


def track_nuclei(
    previous_labels: np.ndarray,
    current_labels: np.ndarray,
    spacing_um: Sequence[float] = (1.0, 1.0, 1.0),
    max_distance_um: float = 10.0,
    next_id: int | None = None,
) -> np.ndarray:
    """
    Relabel ``current_labels`` so that each nucleus keeps its id from ``previous_labels``.

    Matching, one-to-one and optimal (linear assignment): first the pairing with the largest total
    overlap (voxel counts of the voxels labelled in both frames; pairs that do not overlap never
    match); then nuclei left without a partner are paired with the unmatched previous nuclei whose
    centroids are at most ``max_distance_um`` away, as many pairs as possible with the smallest total
    distance. Everything else gets a new id. When a nucleus splits, the part with the larger overlap
    keeps the id.

    Args:
        previous_labels: labels of the previous frame (ids as returned by the last call), integer,
            shape (X, Y, Z) or (X, Y).
        current_labels: labels of the current frame (e.g. from
            :py:func:`~osnet_monai.measurements.label_nuclei`), integer, same shape.
        spacing_um: voxel size in um, one value per axis, for the centroid distance.
        max_distance_um: largest centroid distance in um for matching non-overlapping nuclei.
        next_id: first id for new nuclei; default ``previous_labels.max() + 1``. Over a long
            sequence pass a running counter (largest id ever used + 1) so that a nucleus that
            disappeared cannot hand its id to a newcomer; ids at or below the previous maximum are
            never used for new nuclei.

    Returns:
        int32 labels of the current frame with tracked ids, same shape.

    Examples:
        >>> prev = np.zeros((10, 4, 1), dtype=np.int32); prev[1:3] = 7; prev[6:8] = 3
        >>> cur = np.zeros_like(prev); cur[2:4] = 1; cur[7:9] = 2  # both moved by one voxel
        >>> np.unique(track_nuclei(prev, cur)).tolist()
        [0, 3, 7]
    """
    prev = np.asarray(previous_labels)
    cur = np.asarray(current_labels)
    if prev.shape != cur.shape:
        raise ValueError(f"label volumes differ in shape: {prev.shape} and {cur.shape}.")
    check_labels(prev, "previous_labels")
    check_labels(cur, "current_labels")
    spacing = check_spacing(spacing_um, prev.ndim)
    prev_ids, cur_ids = (np.flatnonzero(np.bincount(a.ravel())) for a in (prev, cur))
    prev_ids, cur_ids = prev_ids[prev_ids > 0], cur_ids[cur_ids > 0]
    prev_max = int(prev_ids.max()) if prev_ids.size else 0
    next_id = prev_max + 1 if next_id is None else max(int(next_id), prev_max + 1)
    if cur_ids.size == 0:
        return np.zeros(cur.shape, dtype=np.int32)

    assigned = _match_by_overlap(prev, cur)
    taken = set(assigned.values())
    lost_cur = np.array([c for c in cur_ids.tolist() if c not in assigned], dtype=np.int64)
    free_prev = np.array([p for p in prev_ids.tolist() if p not in taken], dtype=np.int64)
    assigned.update(_match_by_distance(prev, cur, free_prev, lost_cur, spacing, max_distance_um))

    # new ids in current-label order, above every previous id
    lut = np.zeros(int(cur_ids.max()) + 1, dtype=np.int64)
    for c in cur_ids.tolist():  # a loop over nuclei, not voxels
        if c in assigned:
            lut[c] = assigned[c]
        else:
            lut[c] = next_id
            next_id += 1
    if lut.max() > np.iinfo(np.int32).max:
        raise OverflowError("nucleus ids exceed int32.")
    return lut.astype(np.int32)[cur]
