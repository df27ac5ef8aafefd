"""ODT imaging model: band-limited transfer function with the missing cone, non-negativity fill,
noise and time-lapse fringe artifacts.

In the first Born/Rytov approximation a tomographic microscope measures the object's scattering
potential (here: the RI contrast n - n_medium) on the set of spatial frequencies
``K = k_out - k_in`` where both wave vectors lie on the Ewald sphere of radius ``n_medium / lambda``
and inside the detection (objective) and illumination (condenser) pupils. The support is a solid of
revolution about k_z: laterally it ends at ``(NA_obj + NA_cond) / lambda``; axially, at lateral
frequency ``k_xy`` it spans ``|k_z| <= m(k_xy)`` with ``m(0) = 0``. The frequencies around the k_z
axis are never measured (the *missing cone*): objects elongate along z and their RI is
underestimated. Reconstruction software partly fills the cone with a non-negativity constraint.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import scipy.fft as sfft

__all__ = [
    "axial_support_profile",
    "transfer_function",
    "simulate_odt",
    "fringe_pattern",
    "OdtOptics",
]

_WORKERS = 1


@dataclass(frozen=True)
class OdtOptics:
    """The optical parameters the transfer function needs."""

    wavelength_um: float
    na_objective: float
    na_condenser: float
    medium_ri: float

    @classmethod
    def from_preset(cls, preset) -> OdtOptics:
        return cls(preset.wavelength_um, preset.na_objective, preset.na_condenser, preset.medium_ri)


@lru_cache(maxsize=32)
def axial_support_profile(optics: OdtOptics, n_bins: int = 512, n_pupil: int = 48) -> tuple[np.ndarray, np.ndarray]:
    """Half-width ``m(k_xy)`` of the measured k_z band, sampled on ``n_bins`` lateral frequencies.

    Computed by sampling incident wave vectors over the condenser pupil and scattered ones over the
    objective pupil (both on the Ewald sphere), then taking, per lateral frequency bin, the largest
    ``|k_z|`` reached (the support of a real object is symmetric under K -> -K).

    Returns:
        (k_xy, m): lateral frequencies (cycles/um) and the half-width of the k_z band there.
    """
    k0 = optics.medium_ri / optics.wavelength_um
    r_in = optics.na_condenser / optics.wavelength_um
    r_out = optics.na_objective / optics.wavelength_um

    def disk(radius: float) -> np.ndarray:
        g = np.linspace(-radius, radius, n_pupil)
        gx, gy = np.meshgrid(g, g, indexing="ij")
        keep = gx**2 + gy**2 <= radius**2 + 1e-12
        return np.stack([gx[keep], gy[keep]], axis=1)

    kin = disk(r_in)
    kout = disk(r_out)
    kz_in = np.sqrt(k0**2 - (kin**2).sum(1))
    kz_out = np.sqrt(k0**2 - (kout**2).sum(1))
    kmax = r_in + r_out
    edges = np.linspace(0.0, kmax, n_bins + 1)
    m = np.zeros(n_bins)
    # chunk over incident vectors to keep memory small
    for start in range(0, len(kin), 256):
        ki = kin[start : start + 256]
        dxy = np.hypot(kout[None, :, 0] - ki[:, None, 0], kout[None, :, 1] - ki[:, None, 1]).ravel()
        dz = np.abs(kz_out[None, :] - kz_in[start : start + 256, None]).ravel()
        idx = np.minimum((dxy / kmax * n_bins).astype(np.int64), n_bins - 1)
        np.maximum.at(m, idx, dz)
    centres = 0.5 * (edges[:-1] + edges[1:])
    m = np.maximum.accumulate(m)  # the band grows monotonically with k_xy (fills sampling gaps)
    # exact limits: m(0) = 0 (the missing cone) and the largest reach at the lateral cut-off
    centres = np.concatenate([[0.0], centres, [kmax]])
    m = np.concatenate([[0.0], m, [m[-1]]])
    return centres, m


def _frequencies(shape: tuple[int, int, int], spacing: tuple[float, float, float]):
    fx = sfft.fftfreq(shape[0], spacing[0]).astype(np.float32)
    fy = sfft.fftfreq(shape[1], spacing[1]).astype(np.float32)
    fz = sfft.rfftfreq(shape[2], spacing[2]).astype(np.float32)
    return fx, fy, fz


@lru_cache(maxsize=16)
def _transfer_cached(shape, spacing, optics: OdtOptics, soft: float) -> np.ndarray:
    fx, fy, fz = _frequencies(shape, spacing)
    kxy = np.sqrt(fx[:, None] ** 2 + fy[None, :] ** 2)
    kc = (optics.na_objective + optics.na_condenser) / optics.wavelength_um
    grid, m = axial_support_profile(optics)
    mz = np.interp(kxy, grid, m).astype(np.float32)  # (X, Y) half-width of the k_z band
    # soft edges (raised cosine over `soft` cycles/um, inside the support) against hard-edge ringing
    lat = np.clip((kc - kxy) / (soft + 0.15 * kc), 0.0, 1.0)
    lat = (0.5 - 0.5 * np.cos(np.pi * lat)).astype(np.float32)
    ax = np.clip((mz[:, :, None] - np.abs(fz)[None, None, :]) / soft, 0.0, 1.0)
    ax = 0.5 - 0.5 * np.cos(np.pi * ax)
    tf = (lat[:, :, None] * ax).astype(np.float32)
    tf[0, 0, 0] = 1.0  # the mean (undiffracted light) is measured
    tf.setflags(write=False)
    return tf


@lru_cache(maxsize=16)
def _fill_region_cached(shape, spacing, optics: OdtOptics) -> np.ndarray:
    fx, fy, fz = _frequencies(shape, spacing)
    kxy = np.sqrt(fx[:, None] ** 2 + fy[None, :] ** 2)
    kc = (optics.na_objective + optics.na_condenser) / optics.wavelength_um
    _, m = axial_support_profile(optics)
    region = (kxy <= kc)[:, :, None] & (np.abs(fz) <= m.max())[None, None, :]
    region.setflags(write=False)
    return region


def fill_region(shape: tuple[int, int, int], spacing_um: tuple[float, float, float], optics: OdtOptics) -> np.ndarray:
    """Where the non-negativity fill may create spectrum: the cylinder k_xy <= k_c, |k_z| <= max m."""
    return _fill_region_cached(tuple(int(s) for s in shape), tuple(float(s) for s in spacing_um), optics)


@lru_cache(maxsize=16)
def _recovery_cached(shape, spacing, optics: OdtOptics, decay: float) -> np.ndarray:
    fx, fy, fz = _frequencies(shape, spacing)
    kxy = np.sqrt(fx[:, None] ** 2 + fy[None, :] ** 2)
    grid, m = axial_support_profile(optics)
    mz = np.interp(kxy, grid, m).astype(np.float32)
    beyond = np.clip(np.abs(fz)[None, None, :] - mz[:, :, None], 0, None)
    w = np.exp(-beyond / decay).astype(np.float32) * fill_region(shape, spacing, optics)
    w.setflags(write=False)
    return w


def transfer_function(
    shape: tuple[int, int, int], spacing_um: tuple[float, float, float], optics: OdtOptics, soft: float = 0.12
) -> np.ndarray:
    """The ODT transfer function on the ``rfftn`` grid of a (X, Y, Z) volume (values in [0, 1])."""
    return _transfer_cached(tuple(int(s) for s in shape), tuple(float(s) for s in spacing_um), optics, float(soft))


def fringe_pattern(
    shape: tuple[int, int, int], spacing_um: tuple[float, float, float], rng: np.random.Generator, amplitude: float
) -> np.ndarray:
    """Interference fringes as seen in late time-lapse frames (the paper's Fig. 4a, white arrows).

    One or two families of straight or gently curved stripes (period 1.2-4 um) under a broad
    lateral envelope, extended along z; float32 RI units, zero mean-ish.
    """
    X, Y, Z = shape
    x = (np.arange(X, dtype=np.float32) * spacing_um[0])[:, None]
    y = (np.arange(Y, dtype=np.float32) * spacing_um[1])[None, :]
    size = np.array([X * spacing_um[0], Y * spacing_um[1]], dtype=np.float32)
    out2d = np.zeros((X, Y), np.float32)
    for _ in range(int(rng.integers(1, 3))):
        period = rng.uniform(1.2, 4.0)
        theta = rng.uniform(0, np.pi)
        cx, cy = rng.uniform(0.15, 0.85, 2) * size
        width = rng.uniform(0.25, 0.55) * size.mean()
        curvature = rng.uniform(-0.02, 0.02)
        u = (x - cx) * np.cos(theta) + (y - cy) * np.sin(theta)
        v = -(x - cx) * np.sin(theta) + (y - cy) * np.cos(theta)
        phase = 2 * np.pi * (u + curvature * v**2) / period + rng.uniform(0, 2 * np.pi)
        env = np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * width**2))
        out2d += (np.cos(phase) * env).astype(np.float32)
    z = np.arange(Z, dtype=np.float32) * spacing_um[2]
    zc = rng.uniform(0.3, 0.7) * Z * spacing_um[2]
    zenv = np.exp(-((z - zc) ** 2) / (2 * (0.45 * Z * spacing_um[2]) ** 2)).astype(np.float32)
    return (amplitude * out2d[:, :, None] * zenv[None, None, :]).astype(np.float32)


def simulate_odt(
    contrast: np.ndarray,
    spacing_um: tuple[float, float, float],
    optics: OdtOptics,
    *,
    rng: np.random.Generator | None = None,
    noise_std: float = 0.0,
    nonneg_iterations: int = 0,
    z_factor: int = 1,
    extra: np.ndarray | None = None,
    cone_recovery: float = 0.0,
    recovery_decay: float = 0.15,
) -> np.ndarray:
    """Image an RI-contrast volume (n - n_medium) through the ODT transfer function.

    Args:
        contrast: (X, Y, Zf) float32 RI contrast; may be sampled ``z_factor`` times finer along z
            than the output (the transfer function is band-limited below the output's z-Nyquist, so
            cropping the spectrum is an exact resampling).
        spacing_um: the OUTPUT voxel size (x, y, z).
        optics: wavelength, NAs and medium RI.
        rng: random generator for the noise (required when ``noise_std > 0``).
        noise_std: standard deviation of the additive noise in the output (RI units). The noise is
            drawn in Fourier space inside the support with a mild 1/f weighting, i.e. blotchy
            band-limited noise like a real reconstruction's.
        nonneg_iterations: iterations of the non-negativity fill (contrast >= 0 in real space,
            measured spectrum re-imposed inside the support); 0 disables it.
        z_factor: how many input z-sections make one output section.
        extra: optional (X, Y, Z) float32 added after the reconstruction (e.g. fringes).
        cone_recovery: effective model of a regularised (non-negativity/TV) reconstruction: inside
            the band-limited cylinder, the missing cone is restored with weight
            ``cone_recovery * exp(-(|k_z| - m(k_xy)) / recovery_decay)`` - fully next to the measured
            band, less deep inside the cone. 0 (default) is the bare first-order transfer function.
        recovery_decay: cycles/um over which that recovery fades into the cone.

    Returns:
        (X, Y, Zf // z_factor) float32 reconstructed RI contrast.
    """
    contrast = np.asarray(contrast, dtype=np.float32)
    X, Y, Zf = contrast.shape
    if Zf % z_factor:
        raise ValueError(f"z size {Zf} is not a multiple of z_factor={z_factor}")
    Z = Zf // z_factor
    spec = sfft.rfftn(contrast, workers=_WORKERS)
    nz = Z // 2 + 1
    spec = np.ascontiguousarray(spec[:, :, :nz])
    if z_factor > 1:
        spec = spec / np.float32(z_factor)
    shape = (X, Y, Z)
    tf = transfer_function(shape, spacing_um, optics)
    if cone_recovery > 0:
        # regularised reconstruction recovers the cone next to the measured band best
        rec = _recovery_cached(shape, tuple(float(s) for s in spacing_um), optics, float(recovery_decay))
        tf = tf + np.float32(cone_recovery) * (1 - tf) * rec
    spec *= tf
    if noise_std > 0:
        if rng is None:
            raise ValueError("rng is required when noise_std > 0")
        fx, fy, fz = _frequencies(shape, spacing_um)
        k = np.sqrt(fx[:, None, None] ** 2 + fy[None, :, None] ** 2 + fz[None, None, :] ** 2)
        weight = tf * (1.0 + 0.8 / (1.0 + k / 0.4))
        # an interior rfft plane stands for two planes of the full spectrum
        mult = np.full(nz, 2.0, np.float32)
        mult[0] = 1.0
        if Z % 2 == 0:
            mult[-1] = 1.0
        power = float((weight.astype(np.float64) ** 2 * mult).sum() / (X * Y * Z))
        n = X * Y * Z
        scale = np.float32(noise_std * np.sqrt(n / 2.0 / max(power, 1e-12)))
        noise = rng.standard_normal((X, Y, nz), dtype=np.float32) + 1j * rng.standard_normal((X, Y, nz), dtype=np.float32)
        spec += (noise * (weight * scale)).astype(np.complex64)
    out = sfft.irfftn(spec, s=shape, workers=_WORKERS).astype(np.float32, copy=False)
    if nonneg_iterations > 0:
        # Gerchberg-Papoulis: only the missing cone inside the band-limited cylinder gets filled
        measured = spec
        known = tf > 0.5
        region = fill_region(shape, spacing_um, optics)
        for _ in range(int(nonneg_iterations)):
            np.maximum(out, 0.0, out=out)
            est = sfft.rfftn(out, workers=_WORKERS)
            est *= region
            np.copyto(est, measured, where=known)
            out = sfft.irfftn(est, s=shape, workers=_WORKERS).astype(np.float32, copy=False)
    if extra is not None:
        out += extra
    return out
