"""The paper's edge-based (Sobel) baseline: the recipe's behaviour and its place in the inference engine."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

from osnet_monai.networks import EdgeBased, edge_based_mask


def _cell_section(shape=(160, 160), seed=0) -> tuple[np.ndarray, np.ndarray]:
    """A dim cell (RI +0.01) with a denser disc (+0.03) inside, noise 0.001; returns (RI, disc mask)."""
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    cell = (yy - 80) ** 2 / 60**2 + (xx - 80) ** 2 / 50**2 < 1
    disc = (yy - 75) ** 2 + (xx - 85) ** 2 < 22**2
    ri = 1.337 + 0.01 * cell + 0.02 * disc + np.random.default_rng(seed).normal(0, 0.001, shape)
    return ri, disc


def _dice(a, b) -> float:
    return 2 * (a & b).sum() / max(a.sum() + b.sum(), 1)


def test_finds_the_dense_region_inside_a_cell():
    ri, disc = _cell_section()
    assert _dice(edge_based_mask(ri), disc) > 0.85


@pytest.mark.parametrize("scale, offset", [(1 / 0.03, -1.337 / 0.03), (10.0, 0.0), (0.5, 3.0)])
def test_the_same_mask_under_any_increasing_affine_map(scale, offset):
    """Both thresholds are relative: the paper's fixed normalisation or raw RI give one answer."""
    ri, _ = _cell_section(seed=1)
    np.testing.assert_array_equal(edge_based_mask(ri * scale + offset), edge_based_mask(ri))


@pytest.mark.parametrize("section", [np.full((64, 64), 1.337), np.full((64, 64), np.nan), np.zeros((64, 64))])
def test_flat_or_invalid_sections_give_an_empty_mask(section):
    assert not edge_based_mask(section).any()


def test_objects_under_the_minimum_area_are_dropped():
    ri, _ = _cell_section(seed=2)
    found = edge_based_mask(ri)
    assert not edge_based_mask(ri, min_area_px=int(found.sum()) + 1).any()


def test_refuses_anything_but_one_section():
    with pytest.raises(ValueError, match="one 2D section"):
        edge_based_mask(np.zeros((4, 32, 32)))


def test_module_returns_confident_logits_of_the_middle_channel():
    ri, disc = _cell_section()
    noise = np.random.default_rng(3).normal(0, 1, ri.shape)
    x = torch.as_tensor(np.stack([np.stack([noise, ri, noise])] * 2), dtype=torch.float32)  # (2, 3, H, W)
    out = EdgeBased(confidence=20.0)(x)
    assert out.shape == (2, 1, *ri.shape)
    assert set(torch.unique(out).tolist()) == {-20.0, 20.0}
    np.testing.assert_array_equal(out[0, 0].numpy() > 0, edge_based_mask(ri.astype(np.float32)))


def test_segment_method_edge_based_needs_no_checkpoint(tmp_path):
    """``segment --method edge-based`` runs the whole engine (reader, writer, ids) with no weights; the
    network's own options are refused in one line."""
    from osnet_monai.phantoms import PRESETS, render_field, write_nifti

    field = render_field(PRESETS["hx1"].replace(name="eb_small", field_shape=(96, 80, 24)), seed=0)
    image = write_nifti(tmp_path / "cell.nii.gz", field.image, (0.15, 0.15, 0.3), medium_ri=PRESETS["hx1"].medium_ri)
    command = [sys.executable, "-m", "osnet_monai.cli", "segment", str(image), "-o", str(tmp_path / "out"),
               "--method", "edge-based", "--no-report", "--no-figures"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    import nibabel as nib

    ids = np.asarray(nib.load(tmp_path / "out" / "cell_nucleus.nii.gz").dataobj)
    assert ids.shape == field.image.shape and ids.max() >= 1
    refused = subprocess.run(command + ["--model", str(tmp_path / "none.pt")], capture_output=True, text=True, timeout=600)
    assert refused.returncode == 2 and "--method edge-based" in refused.stderr
