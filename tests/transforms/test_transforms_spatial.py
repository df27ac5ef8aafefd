"""SectionSpacingd: x-y resampled to the network's pixel size, z kept, invertible."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from monai.data import MetaTensor
from monai.transforms import Invertd, Spacingd

from osnet_monai.transforms import SectionSpacingd


def _item(spacing, shape=(1, 40, 30, 5)):
    affine = torch.diag(torch.tensor([*spacing, 1.0], dtype=torch.float64))
    image = MetaTensor(torch.rand(shape), affine=affine)
    return {"image": image, "image_path": "/data/cell.nii.gz"}


@pytest.mark.parametrize("spacing, pixel, expected_xy", [((0.1, 0.1, 0.5), 0.2, (20, 15)), ((0.2, 0.2, 1.0), 0.1, (80, 60)),
                                                         ((0.196, 0.196, 0.8), 0.196, (40, 30))])
def test_xy_resampled_z_kept(spacing, pixel, expected_xy):
    out = SectionSpacingd("image", pixel_size_um=pixel)(_item(spacing))
    # MONAI's Spacing keeps the span between the first and last pixel centres: sizes are within one pixel
    assert all(abs(n - e) <= 1 for n, e in zip(out["image"].shape[1:3], expected_xy)) and out["image"].shape[3] == 5
    assert np.allclose(out["image"].pixdim[:2].numpy(), pixel) and float(out["image"].pixdim[2]) == pytest.approx(spacing[2])


def test_string_entries_beside_the_image_survive():
    """MONAI Label puts the image's path under ``image_path``; plain Spacingd fails on it."""
    out = SectionSpacingd("image", pixel_size_um=0.2)(_item((0.1, 0.1, 0.5)))
    assert out["image_path"] == "/data/cell.nii.gz"


def test_inverts_to_the_input_grid():
    transform = SectionSpacingd("image", pixel_size_um=0.2)
    item = _item((0.1, 0.1, 0.5))
    out = transform(item)
    out["pred"] = out["image"].clone()
    back = Invertd("pred", transform=transform, orig_keys="image")(out)
    assert tuple(back["pred"].shape) == tuple(item["image"].shape)


def test_rejects_non_positive_pixel_size():
    with pytest.raises(ValueError, match="pixel_size_um"):
        SectionSpacingd("image", pixel_size_um=0)


@pytest.mark.parametrize("spacing, origin", [((0.098, 0.098, 0.2), (0.0, 0.0, 0.0)), ((0.15, 0.12, 0.3), (1.3, -2.0, 0.5)),
                                             ((0.3, 0.25, 0.4), (0.0, 5.0, 0.0))])
def test_section_by_section_equals_monai_spacingd(spacing, origin):
    """The bilinear path resamples one section at a time: same values, grid and record as Spacingd."""
    affine = torch.diag(torch.tensor([*spacing, 1.0], dtype=torch.float64))
    affine[:3, 3] = torch.tensor(origin, dtype=torch.float64)
    image = MetaTensor(torch.rand((1, 37, 29, 5)), affine=affine)
    ours = SectionSpacingd("image", pixel_size_um=0.196)({"image": image})["image"]
    monai = Spacingd("image", pixdim=(0.196, 0.196, -1), mode="bilinear")({"image": image})["image"]
    assert ours.shape == monai.shape
    assert torch.allclose(ours, monai, atol=1e-6)
    assert torch.allclose(ours.affine.double(), monai.affine.double())
    ours_op, monai_op = ours.applied_operations[-1], monai.applied_operations[-1]
    assert ours_op["class"] == monai_op["class"] and tuple(ours_op["orig_size"]) == tuple(monai_op["orig_size"])
    assert torch.allclose(torch.as_tensor(ours_op["extra_info"]["src_affine"]).double(),
                          torch.as_tensor(monai_op["extra_info"]["src_affine"]).double())


def test_nearest_keys_go_through_monai():
    """With a label resampled "nearest", both keys take MONAI's path and stay on one grid."""
    item = _item((0.1, 0.1, 0.5))
    item["label"] = MetaTensor((torch.rand((1, 40, 30, 5)) > 0.5).float(), affine=item["image"].affine)
    out = SectionSpacingd(["image", "label"], pixel_size_um=0.2, mode=("bilinear", "nearest"))(item)
    assert out["image"].shape == out["label"].shape
    assert set(torch.unique(out["label"]).tolist()) <= {0.0, 1.0}
