"""Rendering style ``organic``: interface, determinism, plausibility, instances, time series and honesty.

Fields are the smallest acquisitions of seed 0 (found by drawing the acquisitions alone, which is cheap),
so the whole module runs in a few seconds on one core.
"""

from __future__ import annotations

import numpy as np
import pytest

from osnet_monai.phantoms.checks import best_band_dice, best_threshold_dice
from osnet_monai.phantoms.styles import STYLES, Acquisition, render_style
from osnet_monai.phantoms.styles import organic
from osnet_monai.phantoms.styles.base import draw_acquisition, style_rng

SEED = 0
TOUCHING = (0, 32)  # a cluster whose drawn touching pair of nuclei lies in the field


def _small_indices(seed: int, n: int, search: int = 200) -> list[int]:
    sizes = [(int(np.prod(draw_acquisition(style_rng("organic", seed, i)).field_shape)), i) for i in range(search)]
    return [i for _, i in sorted(sizes)[:n]]


@pytest.fixture(scope="module")
def fields():
    return {i: organic.render(SEED, i) for i in _small_indices(SEED, 4)}


@pytest.fixture(scope="module")
def series(fields):
    return organic.render(SEED, next(iter(fields)), frames=2)


def test_registered_with_a_one_line_description():
    assert STYLES["organic"] == "osnet_monai.phantoms.styles.organic"
    assert isinstance(organic.DESCRIPTION, str) and organic.DESCRIPTION and "\n" not in organic.DESCRIPTION
    with pytest.raises(ValueError, match="frames"):
        organic.render(0, 0, frames=0)


def test_shapes_dtypes_finite_and_ri_range(fields):
    for f in fields.values():
        assert f.style == "organic"
        assert isinstance(f.acquisition, Acquisition)
        shape = f.acquisition.field_shape
        assert f.image.shape == shape and f.image.dtype == np.float32
        assert f.label.shape == shape and f.label.dtype == np.uint8
        assert f.nuclei.shape == shape and f.nuclei.dtype == np.uint16
        assert np.isfinite(f.image).all()
        assert 1.30 <= float(f.image.min()) and float(f.image.max()) <= 1.50
        # the background sits at the medium: the most common value is within a few noise s.d.
        hist, edges = np.histogram(f.image, 400)
        mode = 0.5 * (edges[hist.argmax()] + edges[hist.argmax() + 1])
        assert abs(mode - f.acquisition.medium_ri) < 0.004 + 5 * f.acquisition.noise_std


def test_label_non_empty_and_equal_to_the_instances(fields):
    for f in fields.values():
        assert f.label.any()
        assert set(np.unique(f.label)) <= {0, 1}
        np.testing.assert_array_equal(f.nuclei > 0, f.label > 0)
        assert f.params["nuclei_in_field"] == len(np.unique(f.nuclei)) - 1


def test_same_seed_same_field_other_seed_other_field(fields):
    i = next(iter(fields))
    again = organic.render(SEED, i)
    first = fields[i]
    assert again.acquisition == first.acquisition
    np.testing.assert_array_equal(again.image, first.image)
    np.testing.assert_array_equal(again.nuclei, first.nuclei)
    j = _small_indices(SEED + 1, 1)[0]
    other, again = render_style("organic", SEED + 1, j), render_style("organic", SEED + 1, j)
    np.testing.assert_array_equal(other.image, again.image)
    assert other.image.shape != first.image.shape or not np.array_equal(other.image, first.image)


def test_touching_nuclei_get_distinct_ids():
    f = organic.render(*TOUCHING)
    assert f.params["touching_pairs"], "the chosen field no longer draws a touching pair"
    ids = f.nuclei
    contacts = set()
    for ax in range(3):
        a = np.moveaxis(ids, ax, 0)
        lo, hi = a[:-1], a[1:]
        m = (lo > 0) & (hi > 0) & (lo != hi)
        contacts |= {(int(min(p, q)), int(max(p, q))) for p, q in zip(lo[m], hi[m])}
    for p, q in f.params["touching_pairs"]:
        assert (min(p, q), max(p, q)) in contacts  # one connected blob in the label, two instances
    from scipy import ndimage as ndi

    comp, _ = ndi.label(f.label)
    for p, q in f.params["touching_pairs"]:
        cp = np.unique(comp[ids == p])
        assert np.intersect1d(cp, np.unique(comp[ids == q])).size


def test_time_series_is_4d_and_evolves(series):
    f = series
    X, Y, Z = f.acquisition.field_shape
    assert f.image.shape == (X, Y, Z, 2) and f.image.dtype == np.float32
    assert f.label.shape == (X, Y, Z, 2) and f.nuclei.shape == (X, Y, Z, 2)
    np.testing.assert_array_equal(f.nuclei > 0, f.label > 0)
    assert np.isfinite(f.image).all()
    a, b = f.label[..., 0] > 0, f.label[..., 1] > 0
    assert a.any() and b.any()
    dice = 2 * (a & b).sum() / (a.sum() + b.sum())
    assert 0.3 < dice < 1.0  # the nuclei moved a little, not away
    assert not np.array_equal(f.image[..., 0], f.image[..., 1])


def test_no_pointwise_ri_rule_finds_the_nuclei(fields):
    """Honesty: even the best RI band or threshold chosen with the truth stays far from the label."""
    image = np.concatenate([f.image[::2, ::2].ravel() for f in fields.values()])
    label = np.concatenate([f.label[::2, ::2].ravel() for f in fields.values()])
    assert best_band_dice(image, label)[0] < 0.75
    assert best_threshold_dice(image, label)[0] < 0.75
