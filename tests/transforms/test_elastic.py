from __future__ import annotations

import numpy as np
import pytest
import torch

from monai.data import MetaTensor

from osnet_monai.transforms.elastic import (
    PAPER_ELASTIC_PARAMS,
    RandPaperElasticd,
    apply_displacement,
    paper_elastic_displacement,
)

PAIRS = [pytest.param(a, s, id=f"alpha{a:g}-sigma{s:g}") for a, s in PAPER_ELASTIC_PARAMS]


def _expected_rms_per_axis(alpha: float, sigma: float, truncate: float = 4.0) -> float:
    """Exact RMS of alpha * gaussian_filter(U(-1, 1), sigma) in 2D away from the border."""
    radius = int(truncate * sigma + 0.5)  # scipy's kernel support
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    w = np.exp(-0.5 * (x / sigma) ** 2)
    w /= w.sum()
    variance_factor = (w**2).sum() ** 2  # separable 2D kernel: product of the 1D sums
    return alpha * np.sqrt(variance_factor / 3.0)  # Var U(-1, 1) = 1/3


def _square(size: int = 64, lo: int = 20, hi: int = 40) -> torch.Tensor:
    img = torch.zeros(1, size, size)
    img[:, lo:hi, lo:hi] = 1.0
    return img


def _centroid(img: torch.Tensor) -> np.ndarray:
    w = img[0].double()
    ii, jj = torch.meshgrid(torch.arange(w.shape[0]), torch.arange(w.shape[1]), indexing="ij")
    return np.array([(w * ii).sum() / w.sum(), (w * jj).sum() / w.sum()])


@pytest.mark.parametrize("alpha,sigma", PAIRS)
def test_displacement_rms_matches_definition(alpha, sigma):
    rng = np.random.RandomState(123)
    margin = int(4 * sigma + 0.5) + 1  # beyond the filter's reach the zero padding is invisible
    samples = []
    for _ in range(3):
        d = paper_elastic_displacement((448, 448), alpha, sigma, rng)
        assert d.shape == (2, 448, 448) and d.dtype == np.float32
        samples.append(d[:, margin:-margin, margin:-margin].astype(np.float64))
    d = np.stack(samples)
    expected = _expected_rms_per_axis(alpha, sigma)
    for axis in range(2):
        measured = np.sqrt((d[:, axis] ** 2).mean())
        assert measured == pytest.approx(expected, rel=0.05)
    # the paper's parameters give sub-pixel displacements
    assert np.sqrt((d**2).sum(axis=1).mean()) < 1.0
    # the two axes are independent fields
    assert abs(np.corrcoef(d[:, 0].ravel(), d[:, 1].ravel())[0, 1]) < 0.05


def test_continuum_approximation_is_close_for_larger_sigma():
    # sanity of the test's own formula: sum of squared weights ~ 1 / (4 pi sigma^2) for sigma >~ 1
    for sigma in (2.0, 3.0):
        approx = np.sqrt(1.0 / (3 * 4 * np.pi * sigma**2))
        assert _expected_rms_per_axis(1.0, sigma) == pytest.approx(approx, rel=0.01)


def test_pull_back_convention():
    img = torch.arange(25, dtype=torch.float32).reshape(1, 5, 5)
    disp = np.zeros((2, 5, 5), dtype=np.float32)
    disp[1] = 1.0  # sample one column to the right: out[i, j] = img[i, j + 1]
    for backend in ("torch", "scipy"):
        out = apply_displacement(img, disp, "bilinear", backend=backend)
        assert torch.allclose(out[0, :, :4], img[0, :, 1:], atol=1e-4)
        assert torch.allclose(out[0, :, 4], img[0, :, 3], atol=1e-4)  # reflected about the edge pixel


def test_label_stays_binary_and_is_actually_moved():
    label = _square()
    image = _square() * 0.8 + 0.1
    aug = RandPaperElasticd(("image", "label"), params=((40.0, 2.0),)).set_random_state(0)
    out = aug({"image": image, "label": label})
    assert set(torch.unique(out["label"]).tolist()) <= {0.0, 1.0}
    assert not torch.equal(out["label"], label)  # the field is big enough to change the boundary
    # bilinear image takes intermediate values at the moved edges
    assert ((out["image"] > 0.11) & (out["image"] < 0.89)).any()


def test_image_and_label_share_the_field():
    aug = RandPaperElasticd(("image", "label"), params=((300.0, 20.0),)).set_random_state(3)
    image, label = _square(), _square()
    out = aug({"image": image, "label": label})
    shift_img = _centroid(out["image"]) - _centroid(image)
    shift_lab = _centroid(out["label"]) - _centroid(label)
    assert np.linalg.norm(shift_img) > 0.5  # the square moved
    assert np.allclose(shift_img, shift_lab, atol=0.15)
    # the stored field reproduces both outputs
    assert torch.allclose(out["image"], apply_displacement(image, aug.displacement, "bilinear"))
    assert torch.equal(out["label"], apply_displacement(label, aug.displacement, "nearest"))


def test_prob_zero_is_identity():
    data = {"image": torch.rand(1, 32, 32), "label": (torch.rand(1, 32, 32) > 0.5).float()}
    aug = RandPaperElasticd(("image", "label"), prob=0.0).set_random_state(0)
    for _ in range(3):
        out = aug(data)
        assert torch.equal(out["image"], data["image"]) and torch.equal(out["label"], data["label"])


def test_seed_reproducible_and_seed_dependent():
    data = {"image": torch.rand(1, 48, 48), "label": (torch.rand(1, 48, 48) > 0.5).float()}
    a = RandPaperElasticd(("image", "label"), prob=0.7).set_random_state(42)
    b = RandPaperElasticd(("image", "label"), prob=0.7).set_random_state(42)
    c = RandPaperElasticd(("image", "label"), prob=0.7).set_random_state(43)
    outs_a = [a(data)["image"] for _ in range(5)]
    outs_b = [b(data)["image"] for _ in range(5)]
    outs_c = [c(data)["image"] for _ in range(5)]
    assert all(torch.equal(x, y) for x, y in zip(outs_a, outs_b))
    assert not all(torch.equal(x, y) for x, y in zip(outs_a, outs_c))


def test_pairs_chosen_uniformly():
    aug = RandPaperElasticd("image").set_random_state(0)
    counts = dict.fromkeys(PAPER_ELASTIC_PARAMS, 0)
    for _ in range(400):
        aug.randomize((8, 8))
        counts[aug.alpha_sigma] += 1
    assert all(60 <= n <= 140 for n in counts.values()), counts


def test_metatensor_dtype_and_meta_kept():
    image = MetaTensor(torch.rand(1, 40, 40), affine=torch.diag(torch.tensor([0.2, 0.2, 1.0, 1.0])))
    image.meta["filename_or_obj"] = "cell_001.tif"
    label = MetaTensor((torch.rand(1, 40, 40) > 0.5).to(torch.uint8))
    out = RandPaperElasticd(("image", "label"), params=((20.0, 2.0),)).set_random_state(1)(
        {"image": image, "label": label, "other": 5}
    )
    assert isinstance(out["image"], MetaTensor) and isinstance(out["label"], MetaTensor)
    assert out["image"].meta["filename_or_obj"] == "cell_001.tif"
    assert torch.equal(out["image"].affine, image.affine)
    assert out["label"].dtype == torch.uint8 and out["image"].dtype == torch.float32
    assert out["other"] == 5


def test_backends_agree():
    rng = np.random.RandomState(0)
    disp = paper_elastic_displacement((64, 64), 20.0, 3.0, rng)
    img = torch.rand(2, 64, 64)
    a = apply_displacement(img, disp, "bilinear", backend="torch")
    b = apply_displacement(img, disp, "bilinear", backend="scipy")
    assert torch.allclose(a, b, atol=1e-4)
    lab = (torch.rand(1, 64, 64) > 0.5).float()
    a = apply_displacement(lab, disp, "nearest", backend="torch")
    b = apply_displacement(lab, disp, "nearest", backend="scipy")
    assert (a != b).float().mean() < 1e-3  # may differ only where a coordinate sits on .5


def test_missing_keys_and_shape_mismatch():
    aug = RandPaperElasticd(("image", "label"), allow_missing_keys=True).set_random_state(0)
    out = aug({"image": torch.rand(1, 16, 16)})
    assert out["image"].shape == (1, 16, 16) and "label" not in out
    with pytest.raises(ValueError):
        aug({"image": torch.rand(1, 16, 16), "label": torch.rand(1, 16, 17)})
