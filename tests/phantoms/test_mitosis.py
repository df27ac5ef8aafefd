"""Division series (osnet_monai.phantoms.mitosis): instance truth for nuclei and cells, and the lineage."""

from __future__ import annotations

import csv
import json

import nibabel as nib
import numpy as np
import pytest

from osnet_monai.measurements import TRACK_COLUMNS
from osnet_monai.phantoms.dataset import generate_dataset, sources
from osnet_monai.phantoms.io import LINEAGE_COLUMNS
from osnet_monai.phantoms.mitosis import SERIES_NAME, lineage_from_instances, render_division_series

FRAMES = 4  # the shortest series: prophase, metaphase, telophase, daughters


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """One 4-frame division series written by the data-set writer (seed 0: a 164 x 164 x 26 field), read back."""
    root = tmp_path_factory.mktemp("mitosis")
    datalist = json.loads(generate_dataset(root, n=1, frames=FRAMES, seed=0, preset=SERIES_NAME, validation_fraction=0, workers=1).read_text())
    (entry,) = datalist["training"]
    read = {key: np.asarray(nib.load(root / entry[key]).dataobj) for key in ("image", "label", "nucleus_instances", "cell_instances")}
    with open(root / entry["tracks"], newline="") as f:
        rows = list(csv.reader(f))
    return entry, read, rows


def test_series_files_and_datalist_entry(written):
    entry, read, rows = written
    assert entry["style"] == SERIES_NAME and entry["frames"] == FRAMES
    shape = read["image"].shape
    assert len(shape) == 4 and shape[3] == FRAMES
    assert read["nucleus_instances"].dtype == np.uint16 and read["cell_instances"].dtype == np.uint16
    assert read["nucleus_instances"].shape == shape and read["cell_instances"].shape == shape
    np.testing.assert_array_equal(read["label"], read["nucleus_instances"] > 0)
    assert tuple(rows[0]) == LINEAGE_COLUMNS == TRACK_COLUMNS


def test_every_nucleus_lies_in_its_own_cell(written):
    _, read, _ = written
    nuclei, cells = read["nucleus_instances"], read["cell_instances"]
    inside = nuclei > 0
    np.testing.assert_array_equal(cells[inside], nuclei[inside])
    # every cell holds its nucleus and more (cytoplasm)
    for t in range(FRAMES):
        for i in np.unique(nuclei[..., t][nuclei[..., t] > 0]).tolist():
            assert (cells[..., t] == i).sum() > (nuclei[..., t] == i).sum()


def test_touching_nuclei_share_a_boundary(written):
    _, read, _ = written
    nuclei = read["nucleus_instances"][..., 0]
    touching = set()
    for axis in range(3):
        a = np.moveaxis(nuclei, axis, 0)
        left, right = a[:-1], a[1:]
        where = (left != right) & (left > 0) & (right > 0)
        touching |= {tuple(sorted(p)) for p in zip(left[where].tolist(), right[where].tolist())}
    assert touching  # at least one pair of nuclei in contact: one connected mask, two ids


def test_lineage_is_consistent_with_the_instances(written):
    _, read, rows = written
    nuclei = read["nucleus_instances"]
    tracks = [tuple(int(v) for v in row) for row in rows[1:]]
    present = {t: set(np.unique(nuclei[..., t]).tolist()) - {0} for t in range(FRAMES)}
    ids = {track[0] for track in tracks}
    assert ids == set().union(*present.values())
    for track_id, first, last, parent in tracks:
        # a track is present in every frame from its first to its last, and nowhere else
        assert [t for t in range(FRAMES) if track_id in present[t]] == list(range(first, last + 1))
        if parent:
            mother = next(tr for tr in tracks if tr[0] == parent)
            assert mother[2] < first
    children: dict[int, int] = {}
    for _, _, _, parent in tracks:
        if parent:
            children[parent] = children.get(parent, 0) + 1
    assert children and set(children.values()) == {2}  # every division gives two daughters


def test_series_is_a_pure_function_of_seed_and_index(written):
    _, read, _ = written
    again = render_division_series(0, 0, frames=FRAMES)
    np.testing.assert_array_equal(again.nuclei, read["nucleus_instances"])
    assert again.params["divisions"] == len({tr[3] for tr in again.tracks if tr[3]})


def test_lineage_from_instances_splits_gaps():
    nuclei = np.zeros((3, 1, 1, 5), np.uint16)
    nuclei[0, 0, 0, [0, 1, 3, 4]] = 1  # missing in frame 2
    nuclei[1, 0, 0, 2:] = 2  # a daughter of 1
    cells = nuclei * 1
    new_nuclei, new_cells, tracks = lineage_from_instances(nuclei, {2: 1}, cells)
    assert tracks == [(1, 0, 1, 0), (2, 2, 4, 1), (3, 3, 4, 1)]
    assert new_nuclei[0, 0, 0].tolist() == [1, 1, 0, 3, 3] and new_cells[0, 0, 0].tolist() == [1, 1, 0, 3, 3]


def test_mitosis_is_a_source_and_short_series_are_refused():
    assert SERIES_NAME in sources()
    with pytest.raises(ValueError, match="at least 4 frames"):
        render_division_series(0, 0, frames=3)
