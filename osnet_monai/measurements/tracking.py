"""
Nucleus ids kept over time: tracks, divisions and the lineage.

Two trackers:

- :py:class:`NucleusTracker` (the writer's): tracks with divisions and short gaps, frame by frame, by
  the LAP tracker of Jaqaman et al. (2008) as the maintained ``laptrack`` package implements it
  (frame-to-frame linking of centroids, then gap closing and splitting as a second assignment). Ids
  and the lineage follow the Cell Tracking Challenge (CTC): one id per track, constant over its
  frames; at a division the mother's track ends and each daughter starts a track whose parent is the
  mother; a nucleus missed for a few frames continues under a new id whose parent is its id before
  the gap (CTC tracks have no holes).
- :py:func:`track_nuclei`: one-to-one matching between two frames by overlap, then by centroid
  distance, each a linear assignment solved optimally with :py:func:`scipy.optimize.linear_sum_assignment`
  (a greedy pass can take a pair that blocks two correct ones). No divisions: when a nucleus splits,
  the part with the larger overlap keeps the id and the other is a new nucleus with no parent.

Why ``laptrack`` rather than extending the matcher: a division is one mother linked to two daughters,
which a one-to-one assignment cannot express; LAP splitting decides it jointly with the links and
the track starts, at a cost that competes with starting a new track. On division series rendered with
truth (docs/tracking.md) the matcher reached the same detections but no division (division F1 0),
the LAP tracker found the divisions (see the docs for TRA and division F1 of both).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.optimize import linear_sum_assignment
from skimage import measure

from osnet_monai.measurements._checks import check_labels, check_spacing

__all__ = ["NucleusTracker", "track_nuclei", "tracks_from_labels"]


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


def _centroids_and_ids(labels: np.ndarray, spacing: tuple[float, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Ids present (ascending) and their centroids in um, shapes (n,) and (n, labels.ndim)."""
    props = measure.regionprops_table(labels, properties=("label", "centroid"), spacing=spacing)
    coords = np.stack([props[f"centroid-{k}"] for k in range(labels.ndim)], axis=1) if props["label"].size else np.zeros((0, labels.ndim))
    return props["label"].astype(np.int64), coords


class NucleusTracker:
    """
    Online tracking of nucleus labels with divisions (LAP tracker, ``laptrack``): call it on each
    frame's labels in order; it returns the frame relabelled with track ids and keeps the lineage.

    Each call links the new frame to the last ``max_gap_frames + 1`` frames: the links decided before
    are passed to ``laptrack`` as fixed, so only the new frame's links, gap closings (a nucleus missed
    for up to ``max_gap_frames`` frames) and divisions are decided. Costs are squared centroid
    distances; a link is allowed up to ``max_distance_um``, a daughter up to ``division_distance_um``
    from its mother's last centroid (a daughter appears beside the mitotic chromatin, roughly a
    daughter radius away, while a continued nucleus moves less).

    Args:
        spacing_um: voxel size in um, one value per axis of the labels.
        max_distance_um: largest centroid displacement between linked frames.
        division_distance_um: largest distance of a daughter from its mother; 0 disables divisions.
        max_gap_frames: frames a nucleus may be missed and still continue (under a new id, parent
            the old one); 0 disables gap closing.

    Attributes:
        tracks: the lineage so far, ``(id, first_frame, last_frame, parent_id)`` per track (the
            CTC ``res_track.txt`` columns), sorted by id.

    Examples:
        >>> frame = np.zeros((40, 10, 1), dtype=np.int32); frame[4:10] = 1
        >>> tracker = NucleusTracker((1.0, 1.0, 1.0))
        >>> a = tracker(frame)
        >>> split = np.zeros_like(frame); split[2:6] = 1; split[9:13] = 2  # one nucleus, then two beside it
        >>> b = tracker(split)
        >>> tracker.tracks
        [(1, 0, 0, 0), (2, 1, 1, 1), (3, 1, 1, 1)]
    """

    def __init__(
        self,
        spacing_um: Sequence[float],
        max_distance_um: float = 10.0,
        division_distance_um: float = 8.0,
        max_gap_frames: int = 1,
    ) -> None:
        self.spacing = tuple(float(s) for s in spacing_um)
        if any(s <= 0 for s in self.spacing):
            raise ValueError(f"spacing_um must be positive, got {spacing_um}.")
        if max_distance_um <= 0 or division_distance_um < 0 or max_gap_frames < 0:
            raise ValueError("max_distance_um must be positive, division_distance_um and max_gap_frames non-negative.")
        self.max_distance_um = float(max_distance_um)
        self.division_distance_um = float(division_distance_um)
        self.max_gap_frames = int(max_gap_frames)
        self._frames: list[tuple[np.ndarray, np.ndarray]] = []  # per frame: (track ids, centroids um)
        self._tracks: dict[int, list[int]] = {}  # id -> [first, last, parent]
        self._next_id = 1

    @property
    def tracks(self) -> list[tuple[int, int, int, int]]:
        return [(i, *(int(v) for v in self._tracks[i])) for i in sorted(self._tracks)]

    def parent_of(self, track_id: int) -> int:
        """The parent of ``track_id`` (0: none)."""
        return int(self._tracks[int(track_id)][2])

    def _new_track(self, frame: int, parent: int = 0) -> int:
        track_id, self._next_id = self._next_id, self._next_id + 1
        self._tracks[track_id] = [frame, frame, parent]
        return track_id

    def _window_edges(self, first: int) -> list[tuple[tuple[int, int], tuple[int, int]]]:
        """The links already decided among the window's frames, as laptrack nodes ``(frame - first, index)``."""
        where: dict[int, tuple[int, int]] = {}  # track id -> its node in the window
        edges = []
        for f in range(first, len(self._frames)):
            for j, tid in enumerate(self._frames[f][0].tolist()):
                node = (f - first, j)
                # a track continues its own last node, or starts from its parent's (division or gap)
                source = where.get(tid) or where.get(self._tracks[tid][2]) if self._tracks[tid][0] == f else where.get(tid)
                if source is not None:
                    edges.append((source, node))
                where[tid] = node
        return edges

    def _link(self, coords: np.ndarray) -> list[tuple[int, int]]:
        """``(window frame, index)`` of the predecessor of each new detection, or (-1, -1); with laptrack."""
        from laptrack import LapTrack  # imported on first use: the package is slow to import

        first = max(0, len(self._frames) - self.max_gap_frames - 1)
        window = [self._frames[f][1] for f in range(first, len(self._frames))]
        cutoff = self.max_distance_um**2
        tracker = LapTrack(
            cutoff=cutoff,
            gap_closing_cutoff=cutoff if self.max_gap_frames else False,
            gap_closing_max_frame_count=self.max_gap_frames + 1,  # laptrack counts the frame difference
            splitting_cutoff=self.division_distance_um**2 if self.division_distance_um else False,
            merging_cutoff=False,
            # a link, a gap or a split is taken when it costs less than ending one track and starting another
            track_start_cost=cutoff, track_end_cost=cutoff, segment_start_cost=cutoff, segment_end_cost=cutoff,
            no_splitting_cost=cutoff,
        )
        tree = tracker.predict(window + [coords], connected_edges=self._window_edges(first) or None)
        w = len(window)
        out = []
        for j in range(len(coords)):
            preds = list(tree.predecessors((w, j))) if tree.has_node((w, j)) else []
            out.append(preds[0] if preds else (-1, -1))
        return [(f + first, i) if f >= 0 else (-1, -1) for f, i in out]

    def __call__(self, labels: np.ndarray) -> np.ndarray:
        """
        Relabels one frame with track ids.

        Args:
            labels: nucleus labels of the next frame (e.g. from
                :py:func:`~osnet_monai.measurements.label_nuclei`), integer, shape (X, Y, Z) or (X, Y),
                the same for every frame.

        Returns:
            int32 labels with track ids, same shape.
        """
        labels = check_labels(labels, "labels")
        if len(self.spacing) != labels.ndim:
            raise ValueError(f"spacing_um has {len(self.spacing)} values for {labels.ndim}D labels.")
        frame = len(self._frames)
        ids, coords = _centroids_and_ids(labels, self.spacing)
        preds = self._link(coords) if frame and len(coords) and any(len(c) for _, c in self._frames[-self.max_gap_frames - 1:]) else [(-1, -1)] * len(coords)
        children: dict[tuple[int, int], list[int]] = {}
        for j, p in enumerate(preds):
            if p[0] >= 0:
                children.setdefault(p, []).append(j)
        track_ids = np.zeros(len(ids), dtype=np.int64)
        for j, p in enumerate(preds):
            if p[0] < 0:
                track_ids[j] = self._new_track(frame)
                continue
            mother = int(self._frames[p[0]][0][p[1]])
            if len(children[p]) > 1 or p[0] < frame - 1:  # a division, or a gap: a new track, parent the old
                track_ids[j] = self._new_track(frame, mother)
            else:
                track_ids[j] = mother
                self._tracks[mother][1] = frame
        self._frames.append((track_ids, coords))
        if self._next_id - 1 > np.iinfo(np.int32).max:
            raise OverflowError("track ids exceed int32.")
        lut = np.zeros(int(labels.max()) + 1 if labels.size else 1, dtype=np.int32)
        lut[ids] = track_ids
        return lut[labels]


def tracks_from_labels(frames: Sequence[np.ndarray], parents: dict[int, int] | None = None) -> list[tuple[int, int, int, int]]:
    """
    CTC tracks ``(id, first_frame, last_frame, parent_id)`` of a labelled series whose ids are track ids
    (e.g. from :py:func:`track_nuclei`, which records no parents).

    Args:
        frames: label arrays in frame order.
        parents: parent of each id, if known.

    Returns:
        one row per id, sorted by id; an id must be present in every frame between its first and last.

    Examples:
        >>> tracks_from_labels([np.array([1, 0]), np.array([1, 2])], {2: 1})
        [(1, 0, 1, 0), (2, 1, 1, 1)]
    """
    seen: dict[int, list[int]] = {}
    for t, labels in enumerate(frames):
        for i in np.unique(np.asarray(labels)).tolist():
            if i:
                seen.setdefault(int(i), [t, t])[1] = t
    parents = parents or {}
    return [(i, first, last, int(parents.get(i, 0))) for i, (first, last) in sorted(seen.items())]
