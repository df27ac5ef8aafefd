"""osnet_monai.measurements.tracking: ids kept from frame to frame, new ids for new nuclei, divisions and the lineage."""

from __future__ import annotations

import numpy as np
import pytest

from osnet_monai.measurements.cells import label_nuclei
from osnet_monai.measurements.tracking import NucleusTracker, track_nuclei, tracks_from_labels


def _blob_labels(shape, centers_ids, half=4):
    lab = np.zeros(shape, dtype=np.int32)
    for (x, y), nid in centers_ids:
        lab[x - half : x + half, y - half : y + half, 1:4] = nid
    return lab


def _bars(boxes, length=60):
    """Labels (length, 4, 2) from ``(x_start, x_stop, id)``: nuclei along x, the geometry in one axis."""
    lab = np.zeros((length, 4, 2), dtype=np.int32)
    for x0, x1, nid in boxes:
        lab[x0:x1] = nid
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
    assert tracked.dtype == np.int32
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


# Both nuclei moved 7 voxels to +x: each should keep its id. A greedy pass gets them wrong.
OPTIMAL_CASES = [
    # overlaps: 1-5 = 3, 2-5 = 6, 2-6 = 5 voxels x 8. Greedy takes the largest (2-5), which leaves
    # 1-5 and 2-6 blocked; nucleus 6 is then 19 voxels from nucleus 1: a new id (3). Optimal: 3 + 5 > 6.
    pytest.param([(0, 10, 1), (11, 23, 2)], [(7, 17, 5), (18, 30, 6)], 10.0, {12: 1, 25: 2}, id="overlap"),
    # no overlaps; centroid distances 5-1 = 12, 5-2 = 8, 6-2 = 12, 6-1 = 32 voxels. Greedy takes the
    # nearest pair (5-2), then 6-1 is beyond 15 voxels: a new id. Optimal: both pairs within reach.
    pytest.param([(10, 13, 1), (30, 33, 2)], [(22, 25, 5), (42, 45, 6)], 15.0, {23: 1, 43: 2}, id="distance"),
]


@pytest.mark.parametrize("previous,current,max_distance_um,expected", OPTIMAL_CASES)
def test_tracking_matching_is_optimal_where_greedy_is_wrong(previous, current, max_distance_um, expected):
    tracked = track_nuclei(_bars(previous), _bars(current), spacing_um=(1.0, 1.0, 1.0), max_distance_um=max_distance_um)
    assert {x: int(tracked[x, 0, 0]) for x in expected} == expected
    assert sorted(np.unique(tracked).tolist()) == [0, 1, 2]


# previous, current, next_id -> the ids the current nuclei (in label order) get
NEW_ID_CASES = [
    pytest.param([], [(5, 10, 1), (20, 25, 2)], None, [1, 2], id="empty-previous"),
    pytest.param([], [(5, 10, 4), (20, 25, 2)], 10, [11, 10], id="empty-previous-counter"),  # label order: 2, 4
    pytest.param([(5, 10, 7)], [(5, 10, 1), (40, 45, 2)], 3, [7, 8], id="counter-below-previous-max"),
    pytest.param([(5, 10, 7)], [(5, 10, 1), (40, 45, 2)], 50, [7, 50], id="running-counter"),
]


@pytest.mark.parametrize("previous,current,next_id,ids", NEW_ID_CASES)
def test_tracking_new_ids(previous, current, next_id, ids):
    tracked = track_nuclei(_bars(previous), _bars(current), next_id=next_id)
    assert [int(tracked[x0, 0, 0]) for x0, _, _ in current] == ids


def test_tracking_empty_current_frame():
    tracked = track_nuclei(_bars([(5, 10, 3)]), _bars([]))
    assert tracked.dtype == np.int32 and not tracked.any()


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int64])
def test_tracking_2d_and_label_dtypes(dtype):
    prev = np.zeros((30, 30), dtype=dtype)
    prev[2:8, 2:8], prev[20:26, 20:26] = 4, 9
    cur = np.zeros_like(prev)
    cur[4:10, 3:9], cur[18:24, 21:27] = 1, 2
    tracked = track_nuclei(prev, cur, spacing_um=(0.2, 0.2))
    assert tracked.dtype == np.int32
    assert tracked[5, 5] == 4 and tracked[20, 24] == 9


TRACK_ERRORS = [
    pytest.param(np.zeros((4, 4, 2), np.int32), np.zeros((4, 4, 3), np.int32), (1, 1, 1), id="shape-mismatch"),
    pytest.param(np.zeros((4, 4, 2), np.float32), np.zeros((4, 4, 2), np.int32), (1, 1, 1), id="float-previous"),
    pytest.param(np.zeros((4, 4, 2), np.int32), np.full((4, 4, 2), -1, np.int32), (1, 1, 1), id="negative-current"),
    pytest.param(np.zeros((4, 4, 2), np.int32), np.zeros((4, 4, 2), np.int32), (1, 1), id="two-spacings-3d"),
]


@pytest.mark.parametrize("previous,current,spacing", TRACK_ERRORS)
def test_tracking_refuses_bad_arguments(previous, current, spacing):
    with pytest.raises(ValueError):
        track_nuclei(previous, current, spacing_um=spacing)


def _frame(nuclei, shape=(80, 40, 3)):
    """Labels from ``[(x, y, id), ...]``: 6 x 6 x 3 voxel nuclei centred at (x, y)."""
    lab = np.zeros(shape, dtype=np.int32)
    for x, y, nid in nuclei:
        lab[x - 3 : x + 3, y - 3 : y + 3, :] = nid
    return lab


def _run(tracker, frames):
    return [tracker(_frame(f)) for f in frames]


def _id_at(labels, x, y):
    return int(labels[x, y, 1])


def test_tracker_keeps_ids_of_moving_nuclei_whatever_their_label_order():
    frames = [[(10, 10, 1), (50, 20, 2)], [(13, 11, 2), (47, 22, 1)], [(16, 12, 5), (44, 24, 3)]]
    out = _run(NucleusTracker((1.0, 1.0, 1.0)), frames)
    assert [_id_at(o, x, y) for o, (x, y) in zip(out, [(10, 10), (13, 11), (16, 12)])] == [1, 1, 1]
    assert [_id_at(o, x, y) for o, (x, y) in zip(out, [(50, 20), (47, 22), (44, 24)])] == [2, 2, 2]


def test_tracker_records_a_division_with_its_parent():
    # a nucleus at x = 30 gives two daughters 5 voxels either side; a neighbour goes on unaffected
    frames = [[(30, 20, 1), (60, 20, 2)], [(31, 20, 1), (60, 21, 2)], [(26, 20, 1), (36, 20, 2), (61, 21, 3)],
              [(24, 20, 1), (38, 20, 2), (61, 22, 3)]]
    tracker = NucleusTracker((1.0, 1.0, 1.0), division_distance_um=8.0)
    out = _run(tracker, frames)
    mother, neighbour = _id_at(out[1], 31, 20), _id_at(out[1], 60, 21)
    daughters = {_id_at(out[2], 26, 20), _id_at(out[2], 36, 20)}
    assert mother not in daughters and len(daughters) == 2
    assert {_id_at(out[3], 24, 20), _id_at(out[3], 38, 20)} == daughters
    assert tracker.tracks == sorted([(mother, 0, 1, 0), (neighbour, 0, 3, 0)] + [(d, 2, 3, mother) for d in daughters])
    assert tracker.parent_of(min(daughters)) == mother and tracker.parent_of(neighbour) == 0


def test_matcher_and_tracker_without_divisions_continue_the_mother():
    # why the tracker: the one-to-one matcher keeps the mother's id on one daughter and records no parent
    before, after = _frame([(30, 20, 1)]), _frame([(26, 20, 1), (36, 20, 2)])
    matched = track_nuclei(before, after, (1.0, 1.0, 1.0))
    assert 1 in (_id_at(matched, 26, 20), _id_at(matched, 36, 20))
    tracker = NucleusTracker((1.0, 1.0, 1.0), division_distance_um=0)
    tracker(before)
    tracker(after)
    assert tracker.tracks == [(1, 0, 1, 0), (2, 1, 1, 0)]


@pytest.mark.parametrize("max_gap_frames,expected", [(1, [(1, 0, 0, 0), (2, 2, 2, 1)]), (0, [(1, 0, 0, 0), (2, 2, 2, 0)])])
def test_tracker_gap_continues_under_a_new_id_with_the_old_as_parent(max_gap_frames, expected):
    # missed in frame 1: CTC tracks have no holes, so the continuation is a new track
    tracker = NucleusTracker((1.0, 1.0, 1.0), max_gap_frames=max_gap_frames)
    out = _run(tracker, [[(30, 20, 1)], [], [(32, 21, 7)]])
    assert not out[1].any()
    assert tracker.tracks == expected and _id_at(out[2], 32, 21) == 2


def test_tracker_far_jump_is_a_new_track_and_2d_works():
    tracker = NucleusTracker((0.5, 0.5), max_distance_um=5.0)
    a = np.zeros((100, 40), np.int32)
    a[10:16, 10:16] = 1
    b = np.zeros_like(a)
    b[70:76, 10:16] = 1  # 30 um away
    tracker(a)
    tracker(b)
    assert tracker.tracks == [(1, 0, 0, 0), (2, 1, 1, 0)]


@pytest.mark.parametrize("kwargs", [{"max_distance_um": 0}, {"division_distance_um": -1}, {"max_gap_frames": -1}, {"spacing_um": (1, 0, 1)}])
def test_tracker_refuses_bad_arguments(kwargs):
    with pytest.raises(ValueError):
        NucleusTracker(**{"spacing_um": (1.0, 1.0, 1.0), **kwargs})


def test_tracker_refuses_labels_of_other_dimensions():
    with pytest.raises(ValueError):
        NucleusTracker((1.0, 1.0))(np.zeros((4, 4, 4), np.int32))


def test_tracks_from_labels_lists_first_and_last_frames():
    frames = [_frame([(10, 10, 3)]), _frame([(10, 10, 3), (40, 10, 5)]), _frame([(40, 10, 5)])]
    assert tracks_from_labels(frames) == [(3, 0, 1, 0), (5, 1, 2, 0)]
    assert tracks_from_labels(frames, {5: 3}) == [(3, 0, 1, 0), (5, 1, 2, 3)]
