"""The ``beam`` rendering style: a simulated scanned-illumination ODT instrument (multi-slice forward
model, Rytov + Fourier-diffraction-theorem reconstruction). Small fields keep this file near 30 s on
one core; the bead check runs the full-size fixed instrument."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.fft as sfft

from osnet_monai.phantoms.checks import best_band_dice, best_threshold_dice
from osnet_monai.phantoms.styles import beam
from osnet_monai.phantoms.styles.base import NUCLEUS_DELTA_RANGE, StyleField, draw_acquisition, style_rng


def _small(seed: int, index: int, frames: int = 1) -> StyleField:
    """A field of this style over a narrower acquisition range (<= 112 x 112 x 24 voxels): seconds, not tens."""
    rng = style_rng("beam", seed, index)
    return beam._render(rng, draw_acquisition(rng, max_lateral=112, max_axial=24), frames)


@pytest.fixture(scope="module")
def public():
    return beam.render(7, 0), beam.render(7, 0)


@pytest.fixture(scope="module")
def small_fields():
    return [_small(3, i) for i in range(5)]


def test_render_is_deterministic_with_the_documented_shapes(public):
    a, b = public
    assert a.style == "beam" and isinstance(beam.DESCRIPTION, str) and "\n" not in beam.DESCRIPTION
    assert np.array_equal(a.image, b.image) and np.array_equal(a.label, b.label) and np.array_equal(a.nuclei, b.nuclei)
    shape = a.acquisition.field_shape
    assert a.image.shape == shape and a.image.dtype == np.float32
    assert a.label.shape == shape and a.label.dtype == np.uint8 and set(np.unique(a.label)) <= {0, 1}
    assert a.nuclei.shape == shape and a.nuclei.dtype == np.uint16
    assert np.array_equal(a.label, (a.nuclei > 0).astype(np.uint8))
    assert np.isfinite(a.image).all()
    # RI around the medium: background within noise and artefacts, cells above it
    medium = a.acquisition.medium_ri
    assert abs(float(np.median(a.image[a.label == 0])) - medium) < 0.01
    assert float(np.median(a.image[a.label > 0])) > medium
    assert all(NUCLEUS_DELTA_RANGE[0] <= d <= NUCLEUS_DELTA_RANGE[1] for d in a.params["nucleus_deltas"])


def test_label_is_non_empty_and_a_nucleus_lies_inside_the_field(public, small_fields):
    for f in (public[0], *small_fields):
        assert f.label.sum() > 0
        inside = []
        for i in np.unique(f.nuclei)[1:]:
            xs, ys, _ = np.nonzero(f.nuclei == i)
            X, Y = f.nuclei.shape[:2]
            inside.append(xs.min() > 0 and ys.min() > 0 and xs.max() < X - 1 and ys.max() < Y - 1)
        assert any(inside)


def test_a_seed_is_a_field_and_another_seed_another_field(small_fields):
    again = _small(3, 1)
    assert np.array_equal(again.image, small_fields[1].image)
    assert not np.array_equal(small_fields[0].image.shape, small_fields[1].image.shape) or not np.allclose(
        small_fields[0].image, small_fields[1].image)


def test_time_series_moves_the_cells_and_renews_the_noise():
    f = _small(5, 0, frames=2)
    X, Y, Z = f.acquisition.field_shape
    assert f.image.shape == (X, Y, Z, 2) and f.label.shape == (X, Y, Z, 2) and f.nuclei.shape == (X, Y, Z, 2)
    assert f.label[..., 0].sum() > 0 and f.label[..., 1].sum() > 0
    assert not np.array_equal(f.label[..., 0], f.label[..., 1])  # drift, rotation, deformation
    background = (f.label[..., 0] == 0) & (f.label[..., 1] == 0)
    assert not np.allclose(f.image[..., 0][background], f.image[..., 1][background])


def test_a_pointwise_ri_rule_chosen_with_the_truth_fails(small_fields):
    image = np.concatenate([f.image.ravel() for f in small_fields])
    label = np.concatenate([f.label.ravel() for f in small_fields])
    assert best_band_dice(image, label)[0] < 0.75
    assert best_threshold_dice(image, label)[0] < 0.75


def test_bead_check_centre_within_ten_percent_and_missing_cone_elongation():
    silica = beam.bead_check()  # 1.46 bead, 5 um, NA 1.2 / 1.2, 532 nm
    assert silica["ri_true"] == 1.46
    assert abs(silica["contrast_error"]) < 0.10  # contrast terms: (n_c - n_m) / (n_true - n_m) - 1
    assert abs(silica["absolute_error"]) < abs(silica["contrast_error"]) + 1e-9
    # a cell-like bead (nucleolus contrast): within 10 % and elongated along z by the missing cone
    cell_like = beam.bead_check(ri_bead=1.38)
    assert abs(cell_like["contrast_error"]) < 0.10
    assert cell_like["elongation"] > 1.0
    assert cell_like["phase_vortices"] == 0  # inside the Rytov regime


def test_bare_fdt_shows_the_missing_cone():
    """No non-negativity: the cone's spectrum is simply absent, the bead comes out low and elongated."""
    r = beam.bead_check(ri_bead=1.36, diameter_um=3.0, gp_iterations=0, field_um=12.0)
    assert -0.25 < r["contrast_error"] < 0
    assert r["elongation"] > 1.1


def test_wide_angle_screen_gives_tilted_beams_their_longer_path():
    """Integrated phase of a weak bead grows as 1 / cos(theta) with the illumination angle."""
    n, p, dz = 96, 0.12, 0.3
    grid = beam._Grid(n, p, 24, dz)
    inst = beam._Instrument(n, p, dz, 32, 0.3, -1.0, 3.6, 0.532, 1.2, 1.1, 1.337, np.array([[0.0, 0.0], [1.0, 0.0]]))
    d2 = (grid.x[:, None, None] - 5.76) ** 2 + (grid.x[None, :, None] - 5.76) ** 2 + (grid.z[None, None, :] - 3.6) ** 2
    dn = 0.005 * (d2 < 2.0**2).astype(np.float32)
    phi = beam._measure(inst, dn, grid.z[0])
    expected = inst.k0 * dn.sum() * p * p * dz * inst.km / inst.kzin
    np.testing.assert_allclose(phi.imag.sum(axis=(1, 2)) * p * p, expected, rtol=0.03)


def test_carrier_frame_propagator_matches_nrefocus():
    nrefocus = pytest.importorskip("nrefocus")
    n, p, lam, nm, d = 64, 0.15, 0.532, 1.337, -2.4
    km = 2 * np.pi * nm / lam
    kin = 3 * 2 * np.pi / (n * p)  # a tilted beam on the grid, so the full field is periodic too
    kzin = np.sqrt(km**2 - kin**2)
    rng = np.random.default_rng(0)
    q = 2 * np.pi * sfft.fftfreq(n, p)
    band = (q[:, None] ** 2 + q[None, :] ** 2) < (0.4 * km) ** 2
    a = sfft.ifft2((rng.normal(size=(n, n)) + 1j * rng.normal(size=(n, n))) * band)
    # the style's carrier-frame kernel (as in _Instrument: exp(i (k_z,out - k_z,in) d))
    inst = beam._Instrument(n, p, 0.3, 16, 0.3, 0.0, d, lam, 1.3, kin / (2 * np.pi / lam), nm, np.array([[1.0, 0.0]]))
    refocus = np.where(inst.pupil[0], np.exp(1j * inst.dkz[0].real * d), 0)  # as in _Instrument.propagate
    ours = sfft.ifft2(sfft.fft2(a) * refocus)
    x = (np.arange(n) * p)[:, None]
    full = a * np.exp(1j * kin * x)
    theirs = nrefocus.refocus(full, d / p, nm, lam / p, padding=False) * np.exp(-1j * kin * x)
    theirs *= np.exp(1j * (km - kzin) * d)  # nrefocus removes exp(i k_m d), the carrier frame exp(i k_z,in d)
    np.testing.assert_allclose(theirs, ours, atol=1e-9 * np.abs(ours).max() + 1e-6)


def test_rytov_and_ri_conversion_match_odtbrain():
    odtbrain = pytest.importorskip("odtbrain")
    n = 64
    x = np.arange(n) - n / 2
    r2 = x[:, None] ** 2 + x[None, :] ** 2
    phase = 9.0 * np.exp(-r2 / 150.0)  # several turns: needs unwrapping
    u = ((1 - 0.2 * np.exp(-r2 / 80.0)) * np.exp(1j * phase))[None].astype(np.complex64)
    ours = beam._rytov(u)[0]
    theirs = odtbrain.sinogram_as_rytov(np.repeat(u, 2, 0), align=False)[0]
    theirs = theirs - 2j * np.pi * np.round(np.median(theirs.imag) / (2 * np.pi))
    np.testing.assert_allclose(ours, theirs, atol=1e-4)
    f = np.linspace(-5, 40, 11)
    lam, nm = 0.532, 1.337
    km = 2 * np.pi * nm / lam
    np.testing.assert_allclose(beam.potential_to_ri(f, km, nm), odtbrain.odt_to_ri(f.astype(complex), lam, nm).real, rtol=1e-6)


def test_forward_model_matches_mie_scattering():
    """Scattering amplitudes of a weak bead at normal incidence agree with Mie theory (scalar average of S1, S2)."""
    miepython = pytest.importorskip("miepython")
    nm, lam, n, p, dz, radius, ri = 1.337, 0.532, 128, 0.1, 0.2, 2.0, 1.35
    km = 2 * np.pi * nm / lam
    grid = beam._Grid(n, p, 30, dz)
    c = grid.x[n // 2]
    inst = beam._Instrument(n, p, dz, 32, dz, 0.0, grid.z[15], lam, 1.25, 0.0, nm, np.array([[0.0, 0.0]]))
    d2 = (grid.x[:, None, None] - c) ** 2 + (grid.x[None, :, None] - c) ** 2 + (grid.z[None, None, :] - grid.z[15]) ** 2
    spec = inst.propagate((ri - nm) * (d2 <= radius**2).astype(np.float32), grid.z[0])[0]
    q = 2 * np.pi * sfft.fftfreq(n, p)
    us = spec.copy()
    us[0, 0] -= n * n
    us = us * p * p * np.exp(1j * q[:, None] * c + 1j * q[None, :] * c)
    idx = np.arange(1, int(0.7 * km / q[1]))  # scattering angles up to ~45 deg
    cos = np.sqrt(1 - (q[idx] / km) ** 2)
    s1, s2 = miepython.S1_S2(ri / nm, km * radius, cos, norm="wiscombe")
    mie = -2 * np.pi * np.conj(0.5 * (s1 + s2)) / (km * km * cos)
    strong = np.abs(mie) > 0.2 * np.abs(mie).max()
    np.testing.assert_allclose(us[idx, 0][strong], mie[strong], rtol=0.15)
