"""Rendering style ``classic`` and the instrument ranges every style draws from (``styles/base.py``)."""

from __future__ import annotations

import numpy as np
import pytest

from osnet_monai.phantoms.checks import best_band_dice
from osnet_monai.phantoms.styles import classic, get_style, render_style
from osnet_monai.phantoms.styles.base import BASE_NOISE_STD, draw_acquisition, style_rng

SEED = 0


def _small_indices(n: int, among: int = 30) -> list[int]:
    """The n cheapest field indices (the acquisition is drawn first, so choosing is cheap)."""
    sizes = [(int(np.prod(draw_acquisition(style_rng("classic", SEED, i)).field_shape)), i) for i in range(among)]
    return [i for _, i in sorted(sizes)[:n]]


INDICES = _small_indices(2)


@pytest.fixture(scope="module")
def fields():
    return [classic.render(SEED, i) for i in INDICES]


def test_registered_and_deterministic_per_seed(fields):
    assert get_style("classic") is classic
    again = render_style("classic", SEED, INDICES[0])
    assert np.array_equal(again.image, fields[0].image) and np.array_equal(again.label, fields[0].label)
    assert again.acquisition == fields[0].acquisition
    other = fields[1]
    assert other.image.shape != fields[0].image.shape or not np.array_equal(other.image, fields[0].image)


def test_field_matches_its_drawn_instrument(fields):
    for f in fields:
        a = f.acquisition
        assert f.image.shape == a.field_shape and f.label.shape == a.field_shape
        assert f.image.dtype == np.float32 and f.label.any()
        background = f.image[f.label == 0]
        assert abs(float(np.median(background)) - a.medium_ri) < 0.005
        assert f.nuclei.max() >= 1 and set(np.unique(f.nuclei[f.label == 0])) == {0}


def test_a_pointwise_ri_rule_chosen_with_the_truth_fails(fields):
    """Honesty: the best RI band, chosen with the label, pooled over the fields relative to each medium."""
    image = np.concatenate([(f.image - f.acquisition.medium_ri).ravel() for f in fields])
    label = np.concatenate([f.label.ravel() for f in fields])
    assert best_band_dice(image, label)[0] < 0.75


def test_instruments_span_the_published_ranges():
    """Over many fields, every drawn quantity covers (most of) the issue's ranges and never leaves them."""
    acqs = [draw_acquisition(style_rng("classic", 1, i)) for i in range(400)]
    vxy = [a.voxel_size_um[0] for a in acqs]
    vz = [a.voxel_size_um[2] for a in acqs]
    wl = [a.wavelength_um for a in acqs]
    na_ill = [a.na_illumination for a in acqs]
    na_obj = [a.na_objective for a in acqs]
    medium = [a.medium_ri for a in acqs]
    noise = [a.noise_std / BASE_NOISE_STD for a in acqs]
    for values, low, high in ((vxy, 0.08, 0.25), (vz, 0.15, 1.0), (wl, 0.405, 0.633), (na_ill, 0.4, 1.2),
                              (medium, 1.330, 1.345), (noise, 0.3, 4.0)):
        assert low - 1e-6 <= min(values) and max(values) <= high + 1e-6
        assert min(values) < low + 0.1 * (high - low) and max(values) > high - 0.1 * (high - low)
    assert 0.6 - 1e-6 <= min(na_obj) < 0.7 and max(na_obj) <= 1.4
    assert all(a.na_objective < a.medium_ri and a.na_illumination < a.medium_ri for a in acqs)
    assert {a.storage for a in acqs} == {"float32", "uint16"}
