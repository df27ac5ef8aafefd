"""Tests of the rendering style ``spectral`` (implicit-surface cells, spectral textures, real-space PSF optics)."""

from __future__ import annotations

import numpy as np
import pytest

from osnet_monai.phantoms.checks import best_band_dice, best_threshold_dice
from osnet_monai.phantoms.styles import StyleField, get_style, render_style
from osnet_monai.phantoms.styles import spectral
from osnet_monai.phantoms.styles.base import NUCLEUS_DELTA_RANGE, draw_acquisition, style_rng

SEED = 0


def _small_indices(seed: int, n: int, among: int = 40) -> list[int]:
    """The n field indices with the fewest voxels (the acquisition is drawn first, so this is cheap): fast tests."""
    sizes = [(int(np.prod(draw_acquisition(style_rng("spectral", seed, i)).field_shape)), i) for i in range(among)]
    return [i for _, i in sorted(sizes)[:n]]


INDICES = _small_indices(SEED, 4)


@pytest.fixture(scope="module")
def fields() -> list[StyleField]:
    return [spectral.render(SEED, i) for i in INDICES]


@pytest.fixture(scope="module")
def series() -> StyleField:
    return spectral.render(SEED, INDICES[0], frames=2)


def test_registered_with_a_one_line_description():
    assert get_style("spectral") is spectral
    assert isinstance(spectral.DESCRIPTION, str) and spectral.DESCRIPTION and "\n" not in spectral.DESCRIPTION


def test_same_seed_same_field(fields):
    again = render_style("spectral", SEED, INDICES[0])
    first = fields[0]
    assert np.array_equal(again.image, first.image)
    assert np.array_equal(again.label, first.label) and np.array_equal(again.nuclei, first.nuclei)
    assert again.acquisition == first.acquisition and again.params == first.params


def test_shapes_dtypes_and_ri_range(fields):
    for f in fields:
        shape = f.acquisition.field_shape
        assert f.style == "spectral"
        assert f.image.shape == shape and f.image.dtype == np.float32
        assert f.label.shape == shape and f.label.dtype == np.uint8 and set(np.unique(f.label)) <= {0, 1}
        assert f.nuclei.shape == shape and f.nuclei.dtype == np.uint16
        assert np.isfinite(f.image).all()
        assert 1.30 <= float(f.image.min()) and float(f.image.max()) <= 1.50
        # the background sits at the medium (median of the image far from the cells)
        assert abs(float(np.median(f.image[f.label == 0])) - f.acquisition.medium_ri) < 0.01


def test_labels_and_instances_agree(fields):
    for f in fields:
        assert f.label.sum() > 0
        assert np.array_equal(f.nuclei > 0, f.label > 0)
        ids = np.unique(f.nuclei)[1:]
        assert len(ids) >= 1 and len(ids) <= 2 * f.params["n_cells"]


def test_first_nucleus_lies_well_inside_the_field(fields):
    for f in fields:
        X, Y, _ = f.label.shape
        inner = f.label[X // 4: 3 * X // 4, Y // 4: 3 * Y // 4]
        assert inner.sum() > 0


def test_drawn_parameters_are_in_range(fields):
    for f in fields:
        p = f.params
        assert 1 <= p["n_cells"] <= 7
        for kind, deltas in zip(p["kinds"], p["nucleus_delta"]):
            if kind != "mitotic":  # the chromosome mass of a mitotic cell is denser than its cytoplasm
                assert all(NUCLEUS_DELTA_RANGE[0] <= d <= NUCLEUS_DELTA_RANGE[1] for d in deltas)
        assert all(1.350 <= ri <= 1.3781 for ri in p["cytoplasm_ri"])
        assert 1.0 <= p["textures"]["cytoplasm"]["beta"] <= 4.0


def test_different_seeds_different_acquisitions(fields):
    other = spectral.render(SEED + 1, _small_indices(SEED + 1, 1)[0])
    assert other.acquisition != fields[0].acquisition
    accs = {f.acquisition for f in fields}
    assert len(accs) == len(fields)


def test_time_series_shape_and_change(series):
    f = series
    X, Y, Z = f.acquisition.field_shape
    assert f.image.shape == (X, Y, Z, 2) and f.image.dtype == np.float32
    assert f.label.shape == (X, Y, Z, 2) and f.nuclei.shape == (X, Y, Z, 2)
    assert np.isfinite(f.image).all() and 1.30 <= f.image.min() and f.image.max() <= 1.50
    assert np.array_equal(f.nuclei > 0, f.label > 0)
    for t in range(2):
        assert f.label[..., t].sum() > 0
    # cells move and the noise is redrawn: frames differ, labels overlap a lot
    assert not np.array_equal(f.image[..., 0], f.image[..., 1])
    a, b = f.label[..., 0] > 0, f.label[..., 1] > 0
    assert 0.3 < 2 * (a & b).sum() / (a.sum() + b.sum()) < 1.0


def test_missing_cone_underestimates_thick_objects_and_leaves_axial_halos():
    vox = (0.2, 0.2, 0.2)
    x, y, z = np.meshgrid(*[np.arange(n) * v for n, v in zip((64, 64, 64), vox)], indexing="ij")
    sphere = (((x - 6.4) ** 2 + (y - 6.4) ** 2 + (z - 6.4) ** 2) < 2.0**2).astype(np.float32) * 0.03
    opt = dict(cone_half_angle_rad=0.5, cone_waist_um=0.6, cone_length_um=3.0)
    out = sphere - 0.4 * spectral._hourglass_copy(sphere, vox, opt)
    assert out[32, 32, 32] < 0.9 * 0.03  # RI underestimated in the thick object
    above = out[32, 32, 32 + 12: 32 + 22]  # 0.4-2.4 um above the sphere's top
    assert above.min() < -1e-4  # a dark halo along z


def test_background_noise_matches_the_acquisition():
    from osnet_monai.phantoms.styles.base import Acquisition

    acq = Acquisition((0.2, 0.2, 0.3), (96, 96, 32), 0.532, 1.0, 1.2, 1.337, 0.0021, "float32", 60.0)
    rng = np.random.default_rng(0)
    opt = spectral._draw_optics(rng, acq)
    no_artefacts = dict(tilt=dict(offset=0.0, gx=0.0, gy=0.0, gz=0.0))
    for white in (0.1, 1.0):  # mostly correlated, all white
        noise = dict(white_frac=white, corr_xy=1.5, corr_z=1.0, signal_gain=1.0)
        empty = np.zeros(acq.field_shape, np.float32)
        image = spectral._image(rng, spectral._Grid(acq), empty, acq, opt, no_artefacts, noise, 0)
        assert abs(float(image.mean()) - acq.medium_ri) < 3e-4
        assert abs(float(image.std()) / acq.noise_std - 1) < 0.05


def test_a_pointwise_rule_cannot_segment_the_nuclei(fields):
    """Honesty: the best RI threshold and band, chosen with the truth, pooled over the fields, stay below 0.75."""
    image = np.concatenate([f.image[::2, ::2].ravel() for f in fields])
    label = np.concatenate([f.label[::2, ::2].ravel() for f in fields])
    assert best_band_dice(image, label)[0] < 0.75
    assert best_threshold_dice(image, label)[0] < 0.75
