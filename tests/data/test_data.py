"""Tests for datalists, grouped folds and the section dataset."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from osnet_monai.data import SectionDataset, file_stem, find_dataset, fold_split, grouped_folds

ITEMS = [{"image": f"img_{i}.nii.gz", "label": f"lab_{i}.nii.gz", "cell_id": f"cell_{i // 3}"} for i in range(30)]


@pytest.mark.parametrize("n_folds, seed", [(4, 0), (4, 1), (3, 7), (2, 3)])
def test_no_cell_in_two_folds(n_folds, seed):
    folds = grouped_folds(ITEMS, n_folds, seed)
    by_cell: dict[str, set[int]] = {}
    for item, fold in zip(ITEMS, folds):
        by_cell.setdefault(item["cell_id"], set()).add(fold)
    assert all(len(f) == 1 for f in by_cell.values())
    sizes = np.bincount(folds, minlength=n_folds)
    assert sizes.min() > 0 and sizes.max() - sizes.min() <= 3  # groups of 3: as equal as groups allow


def test_folds_cover_every_item_once():
    datalist = {"training": ITEMS[:24], "validation": ITEMS[24:]}
    held_out = []
    for fold in range(4):
        train, val = fold_split(datalist, fold, 4, seed=0)
        assert not {i["cell_id"] for i in train} & {i["cell_id"] for i in val}
        assert len(train) + len(val) == len(ITEMS)
        held_out += [i["image"] for i in val]
    assert sorted(held_out) == sorted(i["image"] for i in ITEMS)


def test_fold_minus_one_keeps_datalist_split():
    datalist = {"training": ITEMS[:24], "validation": ITEMS[24:]}
    assert fold_split(datalist, -1) == (ITEMS[:24], ITEMS[24:])


@pytest.mark.parametrize("kwargs, message", [({"n_folds": 1}, "n_folds"), ({"n_folds": 20}, "groups")])
def test_bad_fold_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        grouped_folds(ITEMS, **kwargs)


def test_fold_out_of_range():
    with pytest.raises(ValueError, match="fold"):
        fold_split({"training": ITEMS}, 4, 4)


@pytest.mark.parametrize(
    "name, stem",
    [("a/cell_01.nii.gz", "cell_01"), ("x.TCF", "x"), ("s.tiff", "s"), ("v.nrrd", "v"), ("b.OME.TIF", "b"),
     ("h.h5", "h"), ("notes.txt", "notes")],
)
def test_file_stem(name, stem):
    assert file_stem(name) == stem


def test_data_sets_and_readers_share_one_list_of_formats(tmp_path):
    """A file the readers can open is a data set file, and its stem pairs image and label."""
    from osnet_monai.readers import supported_suffixes

    (tmp_path / "images").mkdir()
    (tmp_path / "labels").mkdir()
    for i, suffix in enumerate(supported_suffixes()):
        for folder in ("images", "labels"):
            (tmp_path / folder / f"c{i}{suffix.upper() if i % 2 else suffix}").touch()
    (tmp_path / "images" / "readme.txt").touch()
    found = find_dataset(tmp_path)
    names = sorted(i["cell_id"] for i in found["training"] + found.get("validation", []))
    assert names == sorted(f"c{i}" for i in range(len(supported_suffixes())))


def test_find_dataset_pairs_images_and_labels(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "labels").mkdir()
    for name in ("a", "b", "c"):
        (tmp_path / "images" / f"{name}.nii.gz").write_bytes(b"")
    for name in ("a", "c"):
        (tmp_path / "labels" / f"{name}.nii.gz").write_bytes(b"")
    found = find_dataset(tmp_path)
    assert [file_stem(i["image"]) for i in found["training"]] == ["a", "c"]
    assert all(i["label"].endswith(f"{i['cell_id']}.nii.gz") for i in found["training"])


def test_find_dataset_reads_datalist_relative_paths(tmp_path):
    datalist = {"training": [{"image": "images/a.nii.gz", "label": "labels/a.nii.gz", "cell_id": "A"}], "validation": []}
    (tmp_path / "datalist.json").write_text(json.dumps(datalist))
    found = find_dataset(tmp_path)
    assert found["training"][0]["image"] == str(tmp_path.resolve() / "images/a.nii.gz")
    assert found["training"][0]["cell_id"] == "A"


def test_find_dataset_empty_folder_is_none(tmp_path):
    assert find_dataset(tmp_path) is None


def test_find_dataset_bad_json(tmp_path):
    (tmp_path / "datalist.json").write_text("{not json")
    with pytest.raises(ValueError, match="datalist.json"):
        find_dataset(tmp_path)


def _volume_item(channels=2, z=6, nucleus_slices=(2, 3)):
    image = torch.zeros(channels, 32, 32, z)
    image[:, 4:28, 4:28, 1:5] = 1.0  # cell in sections 1..4
    label = torch.zeros_like(image, dtype=torch.uint8)
    for s in nucleus_slices:
        label[:, 10:20, 10:20, s] = 1
    return {"image": image, "label": label, "cell_id": "cellA"}


def test_section_dataset_keeps_nucleus_sections_and_empty_share():
    item = _volume_item()
    ds = SectionDataset([item], volume_transform=lambda d: d, empty_share=0.5, seed=0)
    # 2 frames x 2 nucleus sections = 4, plus half as many nucleus-free sections that show cell
    assert len(ds.sections) == 6 and ds.n_empty == 2
    names = [s["name"] for s in ds.sections]
    assert "cellA_t001_z003" in names
    for s in ds.sections:
        assert s["image"].shape == (1, 32, 32)
        z = int(s["name"][-3:])
        assert (s["label"].sum() > 0) == (z in (2, 3))
        assert z in (1, 2, 3, 4)  # empty sections are chosen where the cell is


def test_section_dataset_whole_volumes_keeps_every_section_in_order():
    ds = SectionDataset([_volume_item()], volume_transform=lambda d: d, empty_share=0.5, whole_volumes=True)
    # 2 frames x 6 sections: nucleus, cell-only and empty sections (z 0 and 5 show no cell) alike
    assert [s["name"] for s in ds.sections] == [f"cellA_t{t:03d}_z{z:03d}" for t in range(2) for z in range(6)]
    assert ds.n_empty == 0 and len(ds) == 12
    assert [int(s["label"].sum() > 0) for s in ds.sections[:6]] == [0, 0, 1, 1, 0, 0]


def test_section_dataset_augmented_copies():
    calls = []

    def augment(d):
        calls.append(d["name"])
        d = dict(d)
        d["image"] = d["image"] + 100
        return d

    ds = SectionDataset([_volume_item()], volume_transform=lambda d: d, augmentation=augment, augmented_share=0.5)
    assert len(ds) == 4 + 2
    assert all(ds[i]["image"].max() <= 1 for i in range(4))
    assert all(ds[i]["image"].max() > 99 for i in range(4, 6))
    assert len(calls) == 2
    with pytest.raises(IndexError):
        ds[6]


def test_section_dataset_rejects_mismatched_shapes():
    item = _volume_item()
    item["label"] = item["label"][..., :3]
    with pytest.raises(ValueError, match="one shape"):
        SectionDataset([item], volume_transform=lambda d: d)


def test_section_dataset_needs_augmentation_for_share():
    with pytest.raises(ValueError, match="augmentation"):
        SectionDataset([_volume_item()], volume_transform=lambda d: d, augmented_share=0.3)
