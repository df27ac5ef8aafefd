"""inference/postprocessing.py: each fast step gives MONAI's result (the voxels, the grid, the meta)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from scipy import ndimage

from monai.data import MetaTensor
from monai.transforms import Compose, FillHoles, Invertd, RemoveSmallObjects

from osnet_monai.inference import CroppedFillHoles, CroppedRemoveSmallObjects, InvertSectionSpacingd
from osnet_monai.transforms import SectionSpacingd


def _blobs(shape, seed, density=0.05, sigma=2.0) -> np.ndarray:
    """Smooth random blobs (with holes and pieces touching every face) as a 0/1 float32 array."""
    rng = np.random.default_rng(seed)
    field = ndimage.gaussian_filter(rng.normal(size=shape), sigma)
    return (field > np.quantile(field, 1 - density)).astype(np.float32)


def _shell(shape=(30, 26, 14)) -> np.ndarray:
    """A hollow box (an enclosed hole), a cup open to the z border, and a speck."""
    m = np.zeros(shape, np.float32)
    m[5:15, 5:15, 3:10] = 1
    m[7:13, 7:13, 5:8] = 0  # enclosed: a hole
    m[18:26, 4:12, 0:6] = 1
    m[20:24, 6:10, 0:4] = 0  # open at z = 0: not a hole
    m[-2, -2, -2] = 1
    return m


FILL_CASES = [
    ({}, _shell()),  # the case where a hole is filled
    ({"applied_labels": [1]}, _blobs((40, 36, 12), 0, density=0.4)),
    ({"applied_labels": [1], "connectivity": 1}, _blobs((40, 36, 12), 1, density=0.4)),
    ({}, _blobs((50, 44), 2, density=0.45)),  # 2D
    ({}, np.zeros((8, 8, 4), np.float32)),
    ({}, np.where(_blobs((32, 30, 10), 3, density=0.4) > 0, 2.0, _shell((32, 30, 10)))),  # two labels
]


@pytest.mark.parametrize("kwargs, mask", FILL_CASES)
def test_cropped_fill_holes_equals_monai(kwargs, mask):
    image = MetaTensor(torch.from_numpy(mask[None].copy()), affine=torch.diag(torch.tensor([0.2, 0.2, 0.3, 1.0], dtype=torch.float64)))
    expected = FillHoles(**kwargs)(image.clone())
    filled = CroppedFillHoles(**kwargs)(image)
    assert torch.equal(filled.as_tensor(), expected.as_tensor())
    assert isinstance(filled, MetaTensor) and torch.equal(filled.affine, image.affine)
    assert torch.equal(image.as_tensor(), torch.from_numpy(mask[None]))  # the input is left as it was
    if mask is FILL_CASES[0][1]:
        assert filled.sum() == image.sum() + 6 * 6 * 3  # the enclosed hole, not the cup open to the border


@pytest.mark.parametrize("connectivity, seed", [(1, 0), (2, 1), (3, 2)])
def test_cropped_remove_small_objects_equals_monai(connectivity, seed):
    mask = _blobs((40, 36, 12), seed, density=0.08, sigma=1.0)
    image = MetaTensor(torch.from_numpy(mask[None]), affine=torch.diag(torch.tensor([0.5, 1.0, 2.0, 1.0], dtype=torch.float64)))
    # 10.5 voxels: "smaller than" and scikit-image 0.26's "smaller than or equal to" agree
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # skimage's deprecated min_size, inside MONAI's call
        expected = RemoveSmallObjects(min_size=10.5, connectivity=connectivity)(image.clone())
    kept = CroppedRemoveSmallObjects(min_size=10.5, connectivity=connectivity)(image)
    assert torch.equal(kept.as_tensor(), expected.as_tensor())
    assert 0 < kept.sum() < image.sum()  # something small removed, something kept


def test_cropped_remove_small_objects_by_volume_keeps_objects_of_the_minimum():
    """min_size in um^3: objects under ceil(min_size / voxel volume) voxels go, as MONAI documents
    (with scikit-image 0.26 MONAI also drops objects of exactly that many voxels)."""
    mask = np.zeros((20, 16, 8), np.float32)
    mask[1:3, 1:3, 1:3] = 1  # 8 voxels of 1 um^3: 8 um^3
    mask[10:13, 5:8, 2:3] = 1  # 9 voxels
    mask[5, 12, 5] = 1  # 1 voxel
    image = MetaTensor(torch.from_numpy(mask[None]), affine=torch.eye(4, dtype=torch.float64))
    kept = CroppedRemoveSmallObjects(min_size=8.0, by_measure=True)(image).as_tensor()[0].numpy()
    assert kept.sum() == 17 and kept[5, 12, 5] == 0
    assert CroppedRemoveSmallObjects(min_size=8.5, by_measure=True)(image).sum() == 9


def test_cropped_remove_small_objects_passes_what_it_does_not_cover_to_monai():
    labels = MetaTensor(torch.from_numpy(np.where(_blobs((20, 20, 6), 4) > 0, 3.0, 0.0)[None]), affine=torch.eye(4))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = RemoveSmallObjects(min_size=5)(labels.clone())
    assert torch.equal(CroppedRemoveSmallObjects(min_size=5)(labels).as_tensor(), expected.as_tensor())
    empty = MetaTensor(torch.zeros(1, 6, 6, 3))
    assert CroppedRemoveSmallObjects(min_size=5)(empty) is empty


@pytest.mark.parametrize("spacing, shape, origin", [
    ((0.15, 0.15, 0.3), (96, 80, 24), (0.0, 0.0, 0.0)),
    ((0.098, 0.098, 0.195), (90, 64, 5), (3.2, -1.1, 7.0)),  # a 2x ratio, the ht2h instrument, off the origin
])
def test_invert_section_spacing_equals_invertd(spacing, shape, origin):
    affine = torch.diag(torch.tensor([*spacing, 1.0], dtype=torch.float64))
    affine[:3, 3] = torch.tensor(origin, dtype=torch.float64)
    image = MetaTensor(torch.rand(1, *shape), affine=affine, meta={"input_ndim": 3})
    preprocessing = Compose([SectionSpacingd(keys="image", pixel_size_um=0.196)])
    item = preprocessing({"image": image})
    grid = item["image"].shape[1:]
    assert grid[:2] != shape[:2] and grid[2] == shape[2]
    logits = torch.from_numpy(ndimage.gaussian_filter(np.random.default_rng(0).normal(size=grid), 2).astype(np.float32)[None])
    item["pred"] = MetaTensor(torch.sigmoid(10 * logits), meta=item["image"].meta, applied_operations=item["image"].applied_operations)
    expected = Invertd("pred", preprocessing, orig_keys="image", nearest_interp=False)(dict(item))["pred"]
    inverted = InvertSectionSpacingd("pred", preprocessing, orig_keys="image", nearest_interp=False)(dict(item))["pred"]
    assert inverted.shape == expected.shape == (1, *shape)
    torch.testing.assert_close(inverted.as_tensor(), expected.as_tensor(), atol=1e-6, rtol=0)
    assert (inverted.as_tensor() > 0.5).eq(expected.as_tensor() > 0.5).float().mean() > 0.9999
    assert torch.equal(inverted.affine, expected.affine) and torch.equal(inverted.affine, affine)
    assert inverted.applied_operations == [] and inverted.meta["input_ndim"] == 3
    nearest = InvertSectionSpacingd("pred", preprocessing, orig_keys="image")(dict(item))["pred"]  # nearest: Invertd's own
    assert torch.equal(nearest.as_tensor(), Invertd("pred", preprocessing, orig_keys="image")(dict(item))["pred"].as_tensor())


def _two_touching_nuclei_and_a_speck(shape=(40, 30, 12)) -> np.ndarray:
    """Two balls joined by a thin neck, a third apart, and a one-voxel speck; (X, Y, Z) 0/1 float32."""
    x, y, z = np.ogrid[: shape[0], : shape[1], : shape[2]]
    m = np.zeros(shape, np.float32)
    for cx in (10, 24):
        m[(x - cx) ** 2 + (y - 12) ** 2 + ((z - 6) * 2) ** 2 <= 36] = 1
    m[14:21, 11:13, 5:7] = 1  # the neck
    m[(x - 33) ** 2 + (y - 24) ** 2 + ((z - 6) * 2) ** 2 <= 16] = 1
    m[2, 27, 1] = 1
    return m


@pytest.mark.parametrize("spacing, min_volume", [((0.2, 0.2, 0.4), 1.0), ((0.1, 0.1, 0.2), 0.05), ((0.5, 0.5, 1.0), 0.0)])
def test_label_nucleid_gives_label_nuclei_ids_with_the_affine_spacing(spacing, min_volume):
    from osnet_monai.inference import LabelNucleid
    from osnet_monai.measurements import label_nuclei

    mask = _two_touching_nuclei_and_a_speck()
    pred = MetaTensor(torch.from_numpy(mask[None]), affine=torch.diag(torch.tensor([*spacing, 1.0], dtype=torch.float64)))
    out = LabelNucleid("pred", min_volume_um3=min_volume)({"pred": pred})["pred"]
    assert isinstance(out, MetaTensor) and out.dtype == torch.int32 and torch.equal(out.affine, pred.affine)
    expected = label_nuclei(mask > 0.5, min_volume, spacing)
    np.testing.assert_array_equal(out.numpy()[0], expected)
    assert out.max() == expected.max() >= 3  # the neck parts the touching pair
    assert bool(out[0, 2, 27, 1]) == (np.prod(spacing) >= min_volume)  # the speck goes only when too small


def test_label_nucleid_keeps_every_part_of_a_2d_section():
    """A 2D input's z spacing is a placeholder: no volume threshold, as the writer did before."""
    from osnet_monai.inference import LabelNucleid

    mask = np.zeros((20, 20, 1), np.float32)
    mask[2:8, 2:8] = 1
    mask[15, 15] = 1
    pred = MetaTensor(torch.from_numpy(mask[None]), meta={"input_ndim": 2})
    out = LabelNucleid("pred", min_volume_um3=1000.0)({"pred": pred})["pred"]
    assert sorted(np.unique(out.numpy()).tolist()) == [0, 1, 2]


@pytest.mark.parametrize("pred, error", [(torch.zeros(1, 4, 4, 4), TypeError), (MetaTensor(torch.zeros(4, 4, 4)), ValueError)])
def test_label_nucleid_refuses_what_it_cannot_measure(pred, error):
    from osnet_monai.inference import LabelNucleid

    with pytest.raises(error, match="pred"):
        LabelNucleid("pred", min_volume_um3=1.0)({"pred": pred})
