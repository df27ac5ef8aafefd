"""Rendering style ``beam``: a physically simulated scanned-illumination ODT instrument.

Ground truth: adherent cells of this module's own model (metaball footprints, height maps, deformed
super-ellipsoid nuclei, spectral and granular textures, lipid droplets, nucleoli, a mitotic cell,
debris) rendered as RI on a simulation grid. Imaging: every illumination angle of a spiral or ring
scan is pushed through the 3D RI by a split-step angular-spectrum multi-slice propagator (beyond the
first Born approximation), refocused to the sample plane and cut by the objective pupil; the camera
adds shot noise, the optical train adds fringes, dust ghosts and background-subtraction errors.
Reconstruction as an instrument does it: Rytov phase (unwrapped), Fourier diffraction theorem
(each angle's spectrum onto its Ewald cap, averaged, linearly interpolated along k_z between caps),
inverse 3D FFT, optional Gerchberg-Papoulis non-negativity, scattering potential -> RI, resampled to
the output grid. The missing cone is never modelled: it comes out of the scan geometry.

Units: micrometres, radians per micrometre for wave numbers, RI dimensionless. Arrays are (X, Y, Z)
unless a leading angle axis A is named.

Own implementation throughout (no ``odtbrain`` / ``nrefocus`` at run time): odtbrain's 3D
backpropagation is written for a rotating sample (or a tilted rotation axis), not for a fixed sample
under scanned illumination, where each angle's data sit on a shifted Ewald cap; and both packages
are optional test-time cross-checks only (``tests/phantoms/test_style_beam.py``), not project dependencies.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.fft as sfft
from scipy import ndimage as ndi

from .base import NUCLEUS_DELTA_RANGE, Acquisition, StyleField, draw_acquisition, style_rng

__all__ = ["DESCRIPTION", "render", "bead_check", "illumination_pattern", "potential_to_ri", "phase_vortices"]

DESCRIPTION = (
    "multi-slice beam propagation through cells under a scanned illumination, Rytov + Fourier "
    "diffraction theorem reconstruction with the instrument's noise, fringes, dust and background errors"
)

_W = 1  # FFT workers: one core per field (the brief's budget)
_GOLDEN = math.pi * (3.0 - math.sqrt(5.0))
_MAX_SIM = 256  # lateral simulation grid cap: bounds the per-field time
_MAX_BOX_Z = 96  # axial planes of the reconstruction box


# ----------------------------------------------------------------------------------------------
# the instrument: illumination scan, multi-slice forward model, Rytov + FDT reconstruction
# ----------------------------------------------------------------------------------------------


def illumination_pattern(kind: str, n: int, rotation: float = 0.0) -> np.ndarray:
    """(n, 2) illumination directions as points of the unit disk (1 = the full illumination NA).

    ``spiral``: golden-angle sunflower (uniform over the disk); ``rings``: the axis plus 2-3
    concentric rings with points in proportion to the radius; ``ring``: the axis plus one ring at the
    full NA (circular scanning).
    """
    if kind == "spiral":
        i = np.arange(n) + 0.5
        r, th = np.sqrt(i / n), i * _GOLDEN
    elif kind == "ring":
        r = np.r_[0.0, np.ones(n - 1)]
        th = np.r_[0.0, 2 * np.pi * np.arange(n - 1) / (n - 1)]
    elif kind == "rings":
        n_rings = 3 if n >= 36 else 2
        radii = np.arange(1, n_rings + 1) / n_rings
        counts = np.maximum(np.round((n - 1) * radii / radii.sum()).astype(int), 3)
        counts[-1] += (n - 1) - counts.sum()
        r = np.concatenate([[0.0]] + [np.full(c, rr) for c, rr in zip(counts, radii)])
        th = np.concatenate([[0.0]] + [2 * np.pi * (np.arange(c) + 0.5 * (j % 2)) / c for j, c in enumerate(counts)])
    else:
        raise ValueError(f"unknown illumination pattern {kind!r}")
    th = th + rotation
    return np.stack([r * np.cos(th), r * np.sin(th)], axis=1)


class _Instrument:
    """One field's ODT instrument on a simulation grid; precomputes everything geometry-only.

    Args:
        n: lateral grid size (n x n, periodic) with ``pitch`` um.
        dz_slice: multi-slice step (um) of the forward model.
        nz_box, dz_box, z_box0: reconstruction box, plane j at z = z_box0 + j * dz_box.
        z_focus: the plane the fields are refocused to (um, same frame as z_box0).
        pattern: (A, 2) illumination directions in the unit disk, scaled by ``na_scan``.
    """

    gap_factor = 4.0  # k_z gaps bridged by interpolation: up to this many illumination spacings
    gap_min = 2.0  # ... and always up to this many k_z steps

    def __init__(self, n, pitch, dz_slice, nz_box, dz_box, z_box0, z_focus, wavelength, na_obj, na_scan, medium,
                 pattern):
        self.n, self.pitch, self.dz_slice = int(n), float(pitch), float(dz_slice)
        self.nz, self.dz_box, self.z_box0, self.z_focus = int(nz_box), float(dz_box), float(z_box0), float(z_focus)
        self.medium = float(medium)
        self.k0 = 2 * np.pi / wavelength
        self.km = self.k0 * medium
        q = 2 * np.pi * sfft.fftfreq(self.n, self.pitch)
        self.kin = self.k0 * na_scan * np.asarray(pattern, np.float64)
        self.kzin = np.sqrt(self.km**2 - (self.kin**2).sum(1))
        A = len(self.kin)
        # carrier frame: the envelope a = u exp(-i k_in.r) holds frequencies q; the absolute ones are q + k_in,
        # so a tilted plane wave needs no finer grid than the scattered field does
        kx = q[None, :, None] + self.kin[:, 0, None, None]
        ky = q[None, None, :] + self.kin[:, 1, None, None]
        kr2 = kx**2 + ky**2
        kz = np.sqrt((self.km**2 - kr2).astype(np.complex128))  # evanescent: +i|kz|, decays
        self.dkz = kz - self.kzin[:, None, None]  # (A, n, n) complex
        self.pupil = kr2 <= (self.k0 * na_obj) ** 2
        self.h_slice = np.exp(1j * self.dkz * self.dz_slice).astype(np.complex64)
        # obliquity: a slab's first-order scattering into direction k_out carries k_m / k_z,out (the Green's
        # function); a bare phase screen assumes 1 (paraxial) and gives tilted illumination cos(theta) too
        # little phase. The illumination direction gets it exactly and unitarily (screen exp(i w_in phi)),
        # the scattered directions relative to it (w_out / w_in, capped at 80 deg, none into evanescence).
        self.w_in = (self.km / self.kzin).astype(np.float32)
        w_out = np.where(kz.real > 0, self.km / np.maximum(kz.real, 0.17 * self.km), 0)
        self.r_slice = (w_out / self.w_in[:, None, None]).astype(np.float32)
        self.kz_out = np.where(self.pupil, kz.real, 0.0).astype(np.float32)
        self.x = ((np.arange(self.n) + 0.5) * self.pitch).astype(np.float32)
        self._plan(A, na_scan)

    # -- Fourier diffraction theorem: where each angle's data land in 3D k-space ------------------
    def _plan(self, A: int, na_scan: float) -> None:
        """Gridding plan: sample -> k_z-sorted groups (overlaps averaged) -> linear interpolation along k_z.

        Laterally every sample sits on the grid (K_xy = q in the carrier frame); only K_z is off-grid.
        Per lateral column the caps of neighbouring angles are interpolated linearly in K_z (an object
        confined to a slab has a smooth K_z spectrum); outside the outermost caps nothing is invented:
        that is the missing cone.
        """
        n, nz = self.n, self.nz
        half = nz // 2
        self.dKz = 2 * np.pi / (nz * self.dz_box)
        Kz = (self.dkz.real / self.dKz).astype(np.float64)
        sel = self.pupil & (np.abs(Kz) < half - 0.5)  # beyond the box's axial Nyquist: low-passed away
        self.src = np.flatnonzero(sel)
        _, ix, iy = np.unravel_index(self.src, sel.shape)
        kzu = Kz.reshape(-1)[self.src]
        # a non-absorbing object has F(-K) = conj F(K): every sample also fills its mirror
        cols = np.concatenate([ix * n + iy, ((-ix) % n) * n + ((-iy) % n)])
        kzs = np.concatenate([kzu, -kzu])
        key = cols * (nz + 4.0) + (kzs + half + 2.0)
        self.order = np.argsort(key, kind="stable")
        skey = key[self.order]
        new = np.r_[True, np.diff(skey) > 1e-3]  # samples closer than 1e-3 of a k_z step are one (averaged)
        self.gid = np.cumsum(new) - 1
        self.ngroups = int(self.gid[-1]) + 1
        self.counts = np.bincount(self.gid, minlength=self.ngroups).astype(np.float64)
        gkey, gcol, gkz = skey[new], cols[self.order][new], kzs[self.order][new]
        nzh = half + 1
        qcol = np.repeat(np.arange(n * n), nzh)
        qj = np.tile(np.arange(nzh, dtype=np.float64), n * n)
        qkey = qcol * (nz + 4.0) + (qj + half + 2.0)
        pos = np.searchsorted(gkey, qkey, side="left")
        left, right = pos - 1, np.minimum(pos, self.ngroups - 1)
        ok_l = (left >= 0) & (gcol[np.maximum(left, 0)] == qcol)
        ok_r = (pos < self.ngroups) & (gcol[right] == qcol)
        kl, kr = gkz[np.maximum(left, 0)], gkz[right]
        # largest k_z gap bridged: a few times the cap spacing the scan density gives
        dk_in = self.k0 * na_scan * math.sqrt(math.pi / max(A, 1))
        gap = max(self.gap_min, self.gap_factor * dk_in / self.dKz)
        both = ok_l & ok_r & (kr - kl <= gap)
        near_r = ok_r & ~both & (kr - qj <= 0.5)
        near_l = ok_l & ~both & ~near_r & (qj - kl <= 0.5)
        self.q_both = np.flatnonzero(both)
        self.il, self.ir = left[both], right[both]
        self.t = ((qj[both] - kl[both]) / (kr[both] - kl[both])).astype(np.float32)
        self.q_near = np.flatnonzero(near_r | near_l)
        self.inear = np.where(near_r, right, left)[self.q_near]
        measured = np.zeros(n * n * nzh, bool)
        measured[self.q_both] = True
        measured[self.q_near] = True
        self.measured = measured.reshape(n, n, nzh)
        self.measured[:, :, -1] = False  # the Nyquist plane is left empty
        self.measured_fraction = float(self.measured.mean())
        jz = np.arange(nzh) * self.dKz
        # data are gridded in a frame centred on the focal plane, shifted into the box here
        self.demod = np.exp(-1j * jz * (self.z_focus - self.z_box0)).astype(np.complex64)

    def grid(self, G: np.ndarray) -> np.ndarray:
        """(A, n, n) cap values F(K) (focal-plane frame) -> (n, n, nz//2+1) rfft half-spectrum of the box."""
        v = G.reshape(-1)[self.src]
        v = np.concatenate([v, np.conj(v)])[self.order]
        g = (np.bincount(self.gid, v.real, self.ngroups) + 1j * np.bincount(self.gid, v.imag, self.ngroups)) / self.counts
        g = g.astype(np.complex64)
        out = np.zeros(self.n * self.n * (self.nz // 2 + 1), np.complex64)
        out[self.q_both] = (1 - self.t) * g[self.il] + self.t * g[self.ir]
        out[self.q_near] = g[self.inear]
        out = out.reshape(self.n, self.n, -1)
        out[:, :, -1] = 0
        return out * self.demod

    def cap_values(self, phi: np.ndarray) -> np.ndarray:
        """Rytov phases (A, n, n) -> FDT values on the caps: F(K) = -2i k_z FT2(phi) / dz_box (grid units)."""
        P = sfft.fft2(phi, axes=(1, 2), workers=_W)
        return ((-2j / self.dz_box) * self.kz_out) * P

    # -- forward model --------------------------------------------------------------------------
    def propagate(self, dn: np.ndarray, z0: float) -> np.ndarray:
        """Multi-slice propagation through ``dn`` (n, n, S) = RI - medium, slice s centred at z0 + s*dz_slice.

        Split-step angular spectrum with a wide-angle screen: per slice the field a picks up
        d = (exp(i w_in k0 dn dz) - 1) a (w_in = k_m / k_z,in: the tilted beam's longer path), whose
        spectrum joins the field weighted by w_out / w_in (1 for the illumination direction, so that part
        is an exact unitary phase screen); then the exact (non-paraxial, evanescent-damping) propagator
        carries the field to the next slice centre. All orders of scattering are kept (the full field
        scatters, slice after slice). After the last slice the field is propagated (back) to the focal
        plane and cut by the objective pupil. Checked against Mie theory (scattering amplitudes of a bead,
        see tests). Returns the (A, n, n) complex spectra at the focal plane (background field = 1).
        """
        A, S = len(self.kin), dn.shape[2]
        spec = np.zeros((A, self.n, self.n), np.complex64)
        spec[:, 0, 0] = self.n * self.n  # the unit plane wave (carrier frame)
        w = self.w_in[:, None, None]
        d = np.empty((A, self.n, self.n), np.complex64)
        x = np.empty((A, self.n, self.n), np.float32)
        h = np.empty((A, self.n, self.n), np.float32)
        for s in range(S):
            np.multiply(w, (np.float32(self.k0 * self.dz_slice) * dn[:, :, s].astype(np.float32))[None], out=x)
            a = sfft.ifft2(spec, axes=(1, 2), workers=_W) if s else np.ones((A, self.n, self.n), np.complex64)
            np.multiply(x, 0.5, out=h)
            np.sin(h, out=h)
            np.multiply(h, h, out=h)
            d.real = h
            d.real *= -2  # cos x - 1, without cancellation
            d.imag = np.sin(x, out=x)
            d *= a
            d = sfft.fft2(d, axes=(1, 2), workers=_W, overwrite_x=True)
            d *= self.r_slice
            spec += d
            if s < S - 1:
                spec *= self.h_slice
        z_last = z0 + (S - 1) * self.dz_slice
        refocus = np.where(self.pupil, np.exp(1j * self.dkz.real * (self.z_focus - z_last)), 0).astype(np.complex64)
        return spec * refocus

    def pupil_noise(self, rng: np.random.Generator) -> np.ndarray:
        """Complex white noise inside each angle's pupil, as spectra (A, n, n) (unit variance per pixel if
        the pupil filled the grid; callers calibrate its strength in RI).

        Shot noise of an off-axis hologram is white in intensity; the sideband filter passes it as
        complex noise confined to the pupil: added here to the field, before the Rytov phase.
        """
        shape = (len(self.kin), self.n, self.n)
        z = rng.standard_normal(shape, np.float32) + 1j * rng.standard_normal(shape, np.float32)
        return (z * self.pupil * (self.n / math.sqrt(2.0))).astype(np.complex64)

    def rms_ri(self, F: np.ndarray) -> float:
        """RMS (about the mean) of the RI a half-spectrum F gives, by Parseval (linearised f -> n)."""
        w = np.full(F.shape[2], 2.0)
        w[0] = 1.0
        w[-1] = 1.0
        power = float((np.abs(F) ** 2 * w).sum() - abs(F[0, 0, 0]) ** 2)
        ntot = self.n * self.n * self.nz
        return self.medium / (2 * self.km**2) * math.sqrt(max(power, 0.0)) / ntot

    # -- reconstruction -------------------------------------------------------------------------
    def reconstruct(self, phi: np.ndarray, gp_iterations: int = 0) -> np.ndarray:
        """Rytov phases (A, n, n) -> RI (n, n, nz) of the box (float32)."""
        F = self.grid(self.cap_values(phi))
        shape = (self.n, self.n, self.nz)
        f = sfft.irfftn(F, s=shape, axes=(0, 1, 2), workers=_W)
        if gp_iterations:
            keep = F[self.measured]
            for _ in range(int(gp_iterations)):
                np.maximum(f, 0, out=f)  # n >= n_medium
                S = sfft.rfftn(f, axes=(0, 1, 2), workers=_W)
                S[self.measured] = keep  # measured spectrum re-imposed, the rest may fill the cone
                f = sfft.irfftn(S, s=shape, axes=(0, 1, 2), workers=_W)
        return potential_to_ri(f, self.km, self.medium)


def potential_to_ri(f: np.ndarray, km: float, medium: float) -> np.ndarray:
    """Scattering potential f = k_m^2 ((n / n_m)^2 - 1) (rad^2/um^2) -> RI n = n_m sqrt(1 + f / k_m^2), float32."""
    return (medium * np.sqrt(np.maximum(1 + f / km**2, 0))).astype(np.float32)


def phase_vortices(phase: np.ndarray) -> np.ndarray:
    """Number of phase vortices (field zeros, where the Rytov phase is undefined) per (A, n, n) map."""
    w = lambda x: np.angle(np.exp(1j * x))  # noqa: E731
    p = phase
    circ = (w(p[:, 1:, :-1] - p[:, :-1, :-1]) + w(p[:, 1:, 1:] - p[:, 1:, :-1])
            - w(p[:, 1:, 1:] - p[:, :-1, 1:]) - w(p[:, :-1, 1:] - p[:, :-1, :-1]))
    return (np.abs(circ) > np.pi).sum(axis=(1, 2))


def _unwrap(phase: np.ndarray) -> np.ndarray:
    """Unwrap (A, n, n) wrapped phases: periodic least-squares (Ghiglia & Romero) by FFT, made congruent.

    The wrapped phase differences are integrated by a Poisson solve on the periodic grid (the field
    is periodic there); their mean (a tilt, which a periodic solve cannot hold) is added back as a
    ramp; the result is snapped to the measured phase plus whole turns. Exact where the phase steps
    by less than pi per pixel; around field zeros (strong scatterers) it errs locally, as unwrappers do.
    Used instead of skimage's unwrap_phase (a per-angle loop, several times slower) for the time budget;
    the two agree on fields without vortices (tests).
    """
    A, n, _ = phase.shape
    gx = np.angle(np.exp(1j * (np.roll(phase, -1, 1) - phase))).astype(np.float32)
    gy = np.angle(np.exp(1j * (np.roll(phase, -1, 2) - phase))).astype(np.float32)
    sx, sy = gx.mean((1, 2)), gy.mean((1, 2))
    gx -= sx[:, None, None]
    gy -= sy[:, None, None]
    div = gx - np.roll(gx, 1, 1) + gy - np.roll(gy, 1, 2)
    k = 2 * np.pi * np.arange(n) / n
    lap = (2 * np.cos(k)[:, None] - 2) + (2 * np.cos(k[: n // 2 + 1])[None, :] - 2)
    lap[0, 0] = 1.0
    F = sfft.rfft2(div, axes=(1, 2), workers=_W) / lap
    F[:, 0, 0] = 0
    ls = sfft.irfft2(F, s=(n, n), axes=(1, 2), workers=_W)
    i = np.arange(n, dtype=np.float32)
    ls += sx[:, None, None] * i[None, :, None] + sy[:, None, None] * i[None, None, :]
    return phase + (2 * np.pi) * np.round((ls - phase) / (2 * np.pi))


def _rytov(a: np.ndarray) -> np.ndarray:
    """Complex Rytov phase log(u/u0) of (A, n, n) fields with u0 = 1: log amplitude + i * unwrapped phase.

    The 2 pi ambiguity of each unwrapped map is fixed on the background (the most populated half-radian
    phase bin, which is flat medium), as instruments align it.
    """
    p = _unwrap(np.angle(a))
    for i in range(len(a)):
        b = np.floor(p[i] / 0.5).astype(np.int64).ravel()
        mode = (np.argmax(np.bincount(b - b.min())) + b.min() + 0.5) * 0.5
        p[i] -= 2 * np.pi * round(mode / (2 * np.pi))
    return (np.log(np.maximum(np.abs(a), 1e-3)) + 1j * p).astype(np.complex64)


def _measure(inst: _Instrument, dn: np.ndarray, z0: float, *, rng: np.random.Generator | None = None,
             noise_sigma: float = 0.0, field_factor: np.ndarray | None = None, tilts: np.ndarray | None = None,
             offsets: np.ndarray | None = None) -> np.ndarray:
    """Forward model + camera: the complex fields at the focal plane -> Rytov phases (A, n, n).

    ``noise_sigma``: s.d. of complex field noise relative to the unit background; ``field_factor``:
    (n, n) multiplicative residue common to all angles (fringes, dust); ``tilts`` (A, 4): per angle the
    amplitudes (rad) and phases of a one-period sine along x and y over the domain (a slow tilt/bow of
    the background that, unlike a ramp, has no jump at the periodic edge) and ``offsets`` (A,) rad:
    per-angle background-subtraction errors.
    """
    spec = inst.propagate(dn, z0)
    if noise_sigma > 0:
        spec += noise_sigma * inst.pupil_noise(rng)
    a = sfft.ifft2(spec, axes=(1, 2), workers=_W, overwrite_x=True)
    if field_factor is not None:
        a *= field_factor[None]
    if tilts is not None:
        k = 2 * np.pi / (inst.n * inst.pitch)
        ramp = (tilts[:, 0, None, None] * np.sin(k * inst.x[None, :, None] + tilts[:, 2, None, None])
                + tilts[:, 1, None, None] * np.sin(k * inst.x[None, None, :] + tilts[:, 3, None, None]))
        a *= np.exp(1j * (ramp + offsets[:, None, None])).astype(np.complex64)
    return _rytov(a)


# ----------------------------------------------------------------------------------------------
# textures (this style's own): random-phase 1/f^beta noise, a reticular network, chromatin clumps
# ----------------------------------------------------------------------------------------------


def _spectral_noise(rng, shape, spacing, beta, f_low, f_high) -> np.ndarray:
    """Periodic random-phase noise with power ~ 1/f^beta between f_low and f_high (cycles/um), unit s.d."""
    freqs = [sfft.fftfreq(s, d) for s, d in zip(shape[:-1], spacing[:-1])] + [sfft.rfftfreq(shape[-1], spacing[-1])]
    f2 = freqs[0][:, None, None] ** 2 + freqs[1][None, :, None] ** 2 + freqs[2][None, None, :] ** 2
    f = np.sqrt(f2) + 1e-6
    amp = f ** (-beta / 2) * np.exp(-((f_low / f) ** 2)) * np.exp(-((f / f_high) ** 2))
    phase = rng.uniform(0, 2 * np.pi, amp.shape)
    v = sfft.irfftn(amp * np.exp(1j * phase), s=shape, workers=_W)
    v -= v.mean()
    return (v / (v.std() + 1e-12)).astype(np.float32)


class _Textures:
    """Per-field periodic texture volumes sampled in each cell's body frame (so they move with it)."""

    spacing = (0.2, 0.2, 0.25)
    shape = (160, 160, 48)

    def __init__(self, rng):
        sp, sh = self.spacing, self.shape
        beta_c = rng.uniform(1.4, 3.2)
        n1 = _spectral_noise(rng, sh, sp, beta_c, 0.05, 2.0)
        band = _spectral_noise(rng, sh, sp, 0.0, rng.uniform(0.6, 0.9), rng.uniform(1.0, 1.4))
        ridge = np.exp(-((band / 0.3) ** 2))  # zero sheets of a band-pass field: a reticular (ER-like) net
        ridge = (ridge - ridge.mean()) / (ridge.std() + 1e-12)
        w = rng.uniform(0.25, 0.7)
        self.cyto = ((1 - w) * n1 + w * ridge).astype(np.float32)
        beta_n = rng.uniform(0.6, 2.2)
        n2 = _spectral_noise(rng, sh, sp, beta_n, 0.1, 3.0)
        clumps = np.maximum(_spectral_noise(rng, sh, sp, 1.0, 0.3, 2.5) - 1.0, 0)
        clumps = clumps / (clumps.std() + 1e-12)
        self.chrom = (n2 + rng.uniform(0.3, 1.0) * clumps).astype(np.float32)
        self.chrom -= self.chrom.mean()
        self.params = {"cyto_beta": round(beta_c, 3), "cyto_network_weight": round(w, 3), "chromatin_beta": round(beta_n, 3)}

    def sample(self, vol: np.ndarray, u, v, z, offset) -> np.ndarray:
        coords = np.stack([(u + offset[0]) / self.spacing[0], (v + offset[1]) / self.spacing[1],
                           (z + offset[2]) / self.spacing[2]])
        return ndi.map_coordinates(vol, coords, order=1, mode="grid-wrap").astype(np.float32)


# ----------------------------------------------------------------------------------------------
# the cell model (this style's own)
# ----------------------------------------------------------------------------------------------


class _Nucleus:
    """A deformed super-ellipsoid in the cell's body frame (um): lateral centre, rotation, semi-axes."""

    def __init__(self, rng, cx, cy, zc, ax, ay, cz, rot):
        self.cx, self.cy, self.zc, self.ax, self.ay, self.cz, self.rot = cx, cy, zc, ax, ay, cz, rot
        self.e_xy = rng.uniform(2.0, 3.0)
        self.e_z = rng.uniform(2.0, 2.6)
        self.harm = [(k, rng.uniform(0, 0.07 if k < 4 else 0.035), rng.uniform(0, 2 * np.pi)) for k in (2, 3, 4, 5)]
        self.dent = (rng.uniform(0, 2 * np.pi), rng.uniform(0.1, 0.3), rng.uniform(0.3, 0.6)) if rng.random() < 0.3 else None
        self.tilt = (rng.uniform(-0.08, 0.08), rng.uniform(0, 2 * np.pi))

    def local(self, u, v):
        du, dv = u - self.cx, v - self.cy
        c, s = math.cos(self.rot), math.sin(self.rot)
        return (c * du + s * dv) / self.ax, (-s * du + c * dv) / self.ay

    def radius(self, a, b):
        th = np.arctan2(b, a)
        r = 1.0
        for k, amp, ph in self.harm:
            r = r + amp * np.cos(k * th + ph)
        if self.dent is not None:
            d = np.angle(np.exp(1j * (th - self.dent[0])))
            r = r - self.dent[1] * np.exp(-(d**2) / (2 * self.dent[2] ** 2))
        return r

    def lateral_rho(self, u, v):
        """Normalised lateral radius (1 on the outline) and the local coordinates a, b (2D)."""
        a, b = self.local(u, v)
        rxy = (np.abs(a) ** self.e_xy + np.abs(b) ** self.e_xy) ** (1 / self.e_xy)
        r = self.radius(a, b)
        return rxy / r, a, b

    def margin(self, u, v, zb):
        """r(theta) - rho3 (> 0 inside), broadcast over u, v (...) and zb (...)."""
        a, b = self.local(u, v)
        rxy = (np.abs(a) ** self.e_xy + np.abs(b) ** self.e_xy) ** (1 / self.e_xy)
        r = self.radius(a, b)
        w = (zb - self.zc) / self.cz + self.tilt[0] * (a * math.cos(self.tilt[1]) + b * math.sin(self.tilt[1]))
        rho3 = (rxy ** self.e_z + np.abs(w) ** self.e_z) ** (1 / self.e_z)
        return r - rho3

    @property
    def extent(self):
        return 1.4 * max(self.ax, self.ay)


class _Cell:
    """One cell: shape in its body frame, per-frame pose (drift, rotation, smooth deformation)."""

    def __init__(self, kind, centre, rng, frames, world):
        self.kind = kind
        self.id = 0
        self.c0 = np.asarray(centre, float)
        s = world.scale
        self.nucleus = None
        self.rods = []
        self.blobs = np.zeros((0, 6))
        self.ruffles = np.zeros((0, 4))
        zc_max = world.depth - world.z_cs - 0.4  # height budget above the coverslip
        if kind in ("spread", "elongated"):
            ax = rng.uniform(3.4, 6.2) * s
            ay = ax * rng.uniform(0.6, 0.95)
            if kind == "elongated":
                ay = ax * rng.uniform(0.45, 0.7)
            cz = min(rng.uniform(1.4, 2.7), 0.5 * (zc_max - 1.2))
            gap = rng.uniform(0.2, 0.7)
            self.nucleus = _Nucleus(rng, *rng.uniform(-0.2, 0.2, 2) * ax, gap + cz, ax, ay, cz, rng.uniform(0, np.pi))
            R = rng.uniform(9.0, 14.0) * s
            blobs = [(0.0, 0.0, 0.5 * R, 0.5 * R * rng.uniform(0.7, 1.0), rng.uniform(0, np.pi), 1.0)]
            if kind == "elongated":
                rot = self.nucleus.rot
                L = R * rng.uniform(1.4, 2.2)
                blobs = [(0.0, 0.0, 0.55 * L, 0.28 * R, rot, 1.0)]
                for sign in (-1, 1):
                    d = L * rng.uniform(0.55, 0.9)
                    blobs.append((sign * d * math.cos(rot), sign * d * math.sin(rot), 0.25 * R, 0.15 * R, rot, rng.uniform(0.6, 1.0)))
            for _ in range(int(rng.integers(1 if kind == "elongated" else 2, 6))):
                th = rng.uniform(0, 2 * np.pi)
                d = R * rng.uniform(0.35, 0.8)
                blobs.append((d * math.cos(th), d * math.sin(th), R * rng.uniform(0.15, 0.35), R * rng.uniform(0.12, 0.3),
                              th + rng.uniform(-0.3, 0.3), rng.uniform(0.5, 1.0)))
            self.blobs = np.array(blobs)
            self.thr = rng.uniform(0.28, 0.42)
            k = 2 * np.pi / rng.uniform(1.5, 6.0, 5)
            th = rng.uniform(0, 2 * np.pi, 5)
            self.ruffles = np.stack([k * np.cos(th), k * np.sin(th), rng.uniform(0, 2 * np.pi, 5), rng.uniform(0.0, 0.05, 5)], 1)
            self.h_lam = rng.uniform(0.25, 0.7)
            self.h_body = min(rng.uniform(2.0, 4.5), zc_max)
            self.cap = rng.uniform(0.3, 0.9)
            # beyond 2 s.d. a blob is below every threshold; the nucleus kernel reaches ~2.2 semi-axes
            reach = [math.hypot(b[0], b[1]) + 2.2 * max(b[2], b[3]) for b in blobs]
            self.radius = max(max(reach), 2.4 * (max(ax, ay) + 1.8)) + 0.5
        else:  # rounded / suspended, or mitotic: a near-spheroid resting on (or just above) the coverslip
            rz = min(rng.uniform(4.0, 7.0) * s, 0.5 * zc_max)
            rx, ry = rz * rng.uniform(1.0, 1.25), rz * rng.uniform(0.95, 1.15)
            self.ell = (rx, ry, rz, rz + rng.uniform(0.0, 0.3), rng.uniform(0, np.pi))
            self.radius = max(rx, ry) + 0.5
            if kind == "rounded":
                f = rng.uniform(0.5, 0.68)
                off = rng.uniform(-0.15, 0.15, 2) * rx
                self.nucleus = _Nucleus(rng, off[0], off[1], self.ell[3] + rng.uniform(-0.1, 0.1) * rz, f * rx, f * ry * rng.uniform(0.85, 1.0),
                                        f * rz * rng.uniform(0.85, 1.0), rng.uniform(0, np.pi))
            else:
                self._chromosomes(rng)
        # refractive indices
        self.n_cyto = rng.uniform(1.355, 1.375) if kind != "mitotic" else rng.uniform(1.362, 1.378)
        self.lamella_drop = rng.uniform(0.0, 0.008)
        self.peri = rng.uniform(0.0, 0.006)  # perinuclear enrichment (ER/Golgi)
        self.delta = rng.uniform(*NUCLEUS_DELTA_RANGE)
        self.cyto_tex = rng.uniform(0.002, 0.006)
        self.chrom_tex = rng.uniform(0.0015, 0.005)
        self.rim = rng.uniform(0.0, 0.005)  # peripheral heterochromatin
        self.tex_offset = rng.uniform(0, 100, 3)
        self.chrom_delta = rng.uniform(0.01, 0.03)
        self.nucleoli = []
        if self.nucleus is not None:
            nu = self.nucleus
            for _ in range(int(rng.integers(1, 5))):
                rr, th = rng.uniform(0, 0.55), rng.uniform(0, 2 * np.pi)
                a, b = rr * math.cos(th), rr * math.sin(th)
                c, s_ = math.cos(nu.rot), math.sin(nu.rot)
                pu = nu.cx + c * a * nu.ax - s_ * b * nu.ay
                pv = nu.cy + s_ * a * nu.ax + c * b * nu.ay
                pz = nu.zc + rng.uniform(-0.3, 0.3) * nu.cz
                size = rng.uniform(0.4, 0.95) * np.array([1.0, rng.uniform(0.6, 1.0), rng.uniform(0.6, 0.9)])
                lobe = rng.uniform(-0.6, 0.6, 3) * size
                self.nucleoli.append((np.array([pu, pv, pz]), size, rng.uniform(0, np.pi), lobe, rng.uniform(0.01, 0.03)))
        # poses: persistent drift, rotation, smooth in-plane deformation bumps
        self.pos = np.zeros((frames, 2))
        self.theta = np.zeros(frames)
        self.pos[0] = self.c0
        self.theta[0] = rng.uniform(0, 2 * np.pi)
        vel, om = rng.normal(0, 0.5, 2), rng.normal(0, 0.05)
        for t in range(1, frames):
            vel = 0.7 * vel + rng.normal(0, 0.35, 2)
            om = 0.7 * om + rng.normal(0, 0.03)
            self.pos[t] = self.pos[t - 1] + vel
            self.theta[t] = self.theta[t - 1] + om
        nb = int(rng.integers(2, 4))
        self.bumps = [(rng.uniform(-0.5, 0.5, 2) * self.radius, rng.uniform(2.0, 5.0), rng.normal(0, 0.5, 2),
                       rng.uniform(0.3, 1.2), rng.uniform(0, 2 * np.pi)) for _ in range(nb)]
        self.breath = (rng.uniform(0, 0.03), rng.uniform(0.3, 1.0), rng.uniform(0, 2 * np.pi))
        self._inclusions(rng, world)

    # -- geometry --
    def _chromosomes(self, rng):
        """Metaphase plate of condensed rods (body frame); the label of a mitotic cell."""
        rx, ry, rz, zc, _ = self.ell
        Rp = min(rng.uniform(2.5, 4.0), 0.6 * rz)
        normal_az = rng.uniform(0, np.pi)
        nvec = np.array([math.cos(normal_az), math.sin(normal_az), rng.uniform(-0.3, 0.3)])
        nvec /= np.linalg.norm(nvec)
        e1 = np.cross(nvec, [0, 0, 1.0])
        e1 /= np.linalg.norm(e1)
        e2 = np.cross(nvec, e1)
        for _ in range(int(rng.integers(20, 46))):
            r, th = Rp * math.sqrt(rng.uniform()), rng.uniform(0, 2 * np.pi)
            c = np.array([0.0, 0.0, zc]) + r * (math.cos(th) * e1 + math.sin(th) * e2) + rng.normal(0, 0.25) * nvec
            phi = rng.uniform(0, 2 * np.pi)
            d = (math.cos(phi) * e1 + math.sin(phi) * e2 + rng.normal(0, 0.3) * nvec)
            d /= np.linalg.norm(d)
            half = rng.uniform(0.4, 1.2)
            self.rods.append((c - half * d, c + half * d, rng.uniform(0.22, 0.35)))

    def footprint(self, u, v):
        g = np.zeros(np.broadcast(u, v).shape)
        for cx, cy, sa, sb, rot, w in self.blobs:
            du, dv = u - cx, v - cy
            c, s = math.cos(rot), math.sin(rot)
            g = g + w * np.exp(-0.5 * (((c * du + s * dv) / sa) ** 2 + ((-s * du + c * dv) / sb) ** 2))
        nu = self.nucleus
        a, b = nu.local(u, v)
        m = 1.8  # cytoplasm reaches at least ~1.8 um beyond the nucleus
        rr = (a * nu.ax / (nu.ax + m)) ** 2 + (b * nu.ay / (nu.ay + m)) ** 2
        g = g + min(0.95, 1.5 * self.thr) ** rr
        ruffle = 1.0
        for kx, ky, ph, amp in self.ruffles:
            ruffle = ruffle + amp * np.cos(kx * u + ky * v + ph)
        return g * ruffle

    def height(self, u, v, g):
        s = np.clip((g - self.thr) / (1.0 - self.thr), 0, 1) ** 0.8
        h = self.h_lam + (self.h_body - self.h_lam) * s
        nu = self.nucleus
        rho, _, _ = nu.lateral_rho(u, v)
        dome = nu.zc + self.cap + nu.cz * np.sqrt(np.clip(1 - rho**2, 0, 1)) - 2.5 * nu.cz * np.maximum(rho - 1, 0)
        k = 0.4
        return k * np.logaddexp(h / k, dome / k)

    def ellipsoid_margin(self, u, v, zb):
        rx, ry, rz, zc, rot = self.ell
        c, s = math.cos(rot), math.sin(rot)
        a, b = (c * u + s * v) / rx, (-s * u + c * v) / ry
        return (1 - np.sqrt(a**2 + b**2 + ((zb - zc) / rz) ** 2)) * rz

    def inside(self, u, v, zb, margin=0.0):
        """Boolean: body points inside the cytoplasm (at least ``margin`` um in) and outside the nucleus."""
        if self.kind in ("spread", "elongated"):
            g = self.footprint(u, v)
            h = self.height(u, v, g)
            ok = (g > self.thr + 0.05) & (zb > margin) & (zb < h - margin)
        else:
            ok = self.ellipsoid_margin(u, v, zb) > margin
        if self.nucleus is not None:
            ok &= self.nucleus.margin(u, v, zb) < -margin / max(self.nucleus.cz, 1.0)
        return ok

    def _inclusions(self, rng, world):
        """Lipid droplets and granules/vesicles at body-frame points inside the cytoplasm."""
        R = self.radius
        pts = np.stack([rng.uniform(-R, R, 4000), rng.uniform(-R, R, 4000), rng.uniform(0, world.depth - world.z_cs, 4000)], 1)
        ok = self.inside(pts[:, 0], pts[:, 1], pts[:, 2], margin=0.25)
        pts = pts[ok]
        n_drop = int(min(rng.integers(0, 13), len(pts)))
        self.droplets = [(pts[i], rng.uniform(0.2, 0.6), rng.uniform(1.40, 1.46)) for i in range(n_drop)]
        pts = pts[n_drop:]
        n_gran = int(min(len(pts), rng.integers(60, 400)))
        self.granules = pts[:n_gran]
        vesicle = rng.random(n_gran) < world.vesicle_fraction
        self.granule_amp = np.where(vesicle, -rng.uniform(0.004, 0.012, n_gran), rng.uniform(0.004, 0.015, n_gran))

    # -- pose --
    def to_body(self, X, Y, t):
        c, s = math.cos(self.theta[t]), math.sin(self.theta[t])
        dx, dy = X - self.pos[t][0], Y - self.pos[t][1]
        u, v = c * dx + s * dy, -s * dx + c * dy
        sc = 1 + self.breath[0] * math.sin(self.breath[1] * t + self.breath[2])
        u, v = u / sc, v * sc
        for p, sig, amp, w, ph in self.bumps:
            a = math.sin(w * t + ph)
            e = np.exp(-((u - p[0]) ** 2 + (v - p[1]) ** 2) / (2 * sig**2))
            u, v = u - a * amp[0] * e, v - a * amp[1] * e  # first-order inverse of a small displacement
        return u, v

    def to_lab(self, P, t):
        u, v = P[..., 0].copy(), P[..., 1].copy()
        for p, sig, amp, w, ph in self.bumps:
            a = math.sin(w * t + ph)
            e = np.exp(-((u - p[0]) ** 2 + (v - p[1]) ** 2) / (2 * sig**2))
            u, v = u + a * amp[0] * e, v + a * amp[1] * e
        sc = 1 + self.breath[0] * math.sin(self.breath[1] * t + self.breath[2])
        u, v = u * sc, v / sc
        c, s = math.cos(self.theta[t]), math.sin(self.theta[t])
        return np.stack([self.pos[t][0] + c * u - s * v, self.pos[t][1] + s * u + c * v], -1)


class _World:
    """The cells and debris of one field (lab frame = the simulation domain, um)."""

    def __init__(self, rng, size, pad, depth, frames, n_cells=None, kinds=None):
        self.size, self.pad, self.depth = size, pad, depth  # size: simulation domain (field + 2 pad)
        field = size - 2 * pad
        self.scale = float(np.clip(field / 45.0, 0.6, 1.15))
        self.z_cs = rng.uniform(0.5, 1.6)  # coverslip plane
        self.vesicle_fraction = rng.uniform(0.15, 0.5)
        n_draw = int(rng.integers(1, 7))
        n_cells = int(n_cells or n_draw)
        mitotic = rng.random() < 0.18
        self.cells: list[_Cell] = []
        for i in range(n_cells):
            if i == 0:
                kind = str(rng.choice(["spread", "spread", "elongated", "rounded"]))
                centre = pad + field * rng.uniform(0.3, 0.7, 2)
            else:
                kind = "mitotic" if (mitotic and i == 1) else str(rng.choice(["spread", "spread", "elongated", "rounded"]))
                centre = self._place(rng, field, pad)
            if kinds is not None:
                kind = kinds[i % len(kinds)]
            cell = _Cell(kind, centre, rng, frames, self)
            if i > 0 and kind != "mitotic" and rng.random() < 0.4:
                self._touch(cell, rng)  # a small cluster: cells and nuclei in contact
            cell.id = i + 1
            self.cells.append(cell)
        self.debris = []
        for _ in range(int(rng.poisson(2.0))):
            c = np.array([*rng.uniform(pad, size - pad, 2), 0.0])
            c[2] = self.z_cs + rng.uniform(0.3, 0.8) if rng.random() < 0.7 else rng.uniform(self.z_cs, depth - 1.0)
            parts = [(c + rng.normal(0, 0.4, 3) * (j > 0), rng.uniform(0.25, 0.8)) for j in range(int(rng.integers(1, 4)))]
            drift = np.cumsum(np.vstack([np.zeros(2), rng.normal(0, 0.4, (frames - 1, 2))]), 0)
            self.debris.append((parts, rng.uniform(1.37, 1.43), drift))

    def _place(self, rng, field, pad):
        if rng.random() < 0.3:  # cut by the field edge
            side = rng.integers(4)
            along = pad + field * rng.uniform(0.1, 0.9)
            across = pad + field * (rng.uniform(-0.05, 0.12) if side % 2 == 0 else rng.uniform(0.88, 1.05))
            return (along, across) if side < 2 else (across, along)
        return pad + field * rng.uniform(0.08, 0.92, 2)

    def _touch(self, cell, rng):
        """Move ``cell`` so its nucleus touches the nucleus of an earlier cell."""
        other = self.cells[int(rng.integers(len(self.cells)))]
        if cell.nucleus is None or other.nucleus is None:
            return
        th = rng.uniform(0, 2 * np.pi)
        d = (0.85 * (min(cell.nucleus.ax, cell.nucleus.ay) + min(other.nucleus.ax, other.nucleus.ay))
             * rng.uniform(0.95, 1.12))
        # centre of the other nucleus in the lab frame
        on = other.to_lab(np.array([other.nucleus.cx, other.nucleus.cy]), 0)
        target = on + d * np.array([math.cos(th), math.sin(th)])
        own = cell.to_lab(np.array([cell.nucleus.cx, cell.nucleus.cy]), 0) - cell.pos[0]
        shift = target - own - cell.pos[0]
        cell.pos = cell.pos + shift
        cell.c0 = cell.pos[0].copy()


# ----------------------------------------------------------------------------------------------
# rendering the ground truth (simulation grid) and the label (output grid)
# ----------------------------------------------------------------------------------------------


class _Grid:
    """Cell-centred sampling of the lab frame: x_i = x0 + (i + 0.5) * dx, z_k = z0 + (k + 0.5) * dz."""

    def __init__(self, nx, dx, nz, dz, x0=0.0, z0=0.0):
        self.nx, self.dx, self.nz, self.dz, self.x0, self.z0 = nx, dx, nz, dz, x0, z0
        self.x = x0 + (np.arange(nx) + 0.5) * dx
        self.z = z0 + (np.arange(nz) + 0.5) * dz

    def box(self, cx, cy, r):
        i0 = int(np.clip(math.floor((cx - r - self.x0) / self.dx), 0, self.nx))
        i1 = int(np.clip(math.ceil((cx + r - self.x0) / self.dx) + 1, 0, self.nx))
        j0 = int(np.clip(math.floor((cy - r - self.x0) / self.dx), 0, self.nx))
        j1 = int(np.clip(math.ceil((cy + r - self.x0) / self.dx) + 1, 0, self.nx))
        return i0, i1, j0, j1

    def zbox(self, z, r):
        k0 = int(np.clip(math.floor((z - r - self.z0) / self.dz), 0, self.nz))
        k1 = int(np.clip(math.ceil((z + r - self.z0) / self.dz) + 1, 0, self.nz))
        return k0, k1


def _ramp(x):
    return np.clip(0.5 + x, 0.0, 1.0)


def _render_cell(cell, world, tex, grid, t, dn, prio, owner):
    cx, cy = cell.pos[t]
    i0, i1, j0, j1 = grid.box(cx, cy, cell.radius)
    if i1 <= i0 or j1 <= j0:
        return
    X, Y = np.meshgrid(grid.x[i0:i1], grid.x[j0:j1], indexing="ij")
    u, v = cell.to_body(X, Y, t)
    zb = grid.z - world.z_cs
    vox = max(grid.dx, grid.dz)
    if cell.kind in ("spread", "elongated"):
        g = cell.footprint(u, v)
        gx, gy = np.gradient(g, grid.dx)
        sdf = (g - cell.thr) / (np.hypot(gx, gy) + 1e-3)
        h = cell.height(u, v, g)
        occ = (_ramp(sdf / grid.dx)[:, :, None] * _ramp((h[:, :, None] - zb) / grid.dz) * _ramp(zb / grid.dz)).astype(np.float32)
        s = np.clip((g - cell.thr) / (1.0 - cell.thr), 0, 1)
        level = cell.n_cyto - cell.lamella_drop * (1 - s)
    else:
        occ = _ramp(cell.ellipsoid_margin(u[:, :, None], v[:, :, None], zb) / vox).astype(np.float32)
        level = np.full(u.shape, cell.n_cyto)
    occ_n = np.zeros_like(occ)
    if cell.nucleus is not None:
        nu = cell.nucleus
        eps = vox / min(nu.ax, nu.ay, nu.cz)
        occ_n = _ramp(nu.margin(u[:, :, None], v[:, :, None], zb) / eps).astype(np.float32)
        rho, _, _ = nu.lateral_rho(u, v)
        level = level + cell.peri * np.exp(-np.maximum(rho - 1, 0) ** 2 / 0.15)
    occ_c = np.maximum(occ, occ_n)
    idx = np.nonzero(occ_c > 0)
    if len(idx[0]) == 0:
        return
    U, V, Z = u[idx[0], idx[1]], v[idx[0], idx[1]], zb[idx[2]]
    val = level[idx[0], idx[1]] + cell.cyto_tex * tex.sample(tex.cyto, U, V, Z, cell.tex_offset)
    on = occ_n[idx]
    if cell.nucleus is not None and on.max() > 0:
        inn = on > 0
        nval = (cell.n_cyto + cell.peri + cell.delta
                + cell.chrom_tex * tex.sample(tex.chrom, U[inn], V[inn], Z[inn], cell.tex_offset + 37.0))
        depth = np.clip(nu.margin(U[inn], V[inn], Z[inn]) * nu.cz / 0.5, 0, 1)  # ~0 at the envelope, 1 at 0.5 um in
        nval += cell.rim * (1 - depth)
        val[inn] = (1 - on[inn]) * val[inn] + on[inn] * nval
    local = np.zeros(occ.shape, np.float32)
    local[idx] = occ_c[idx] * (val - world.medium)
    p = occ_c + occ_n
    sl = (slice(i0, i1), slice(j0, j1))
    win = p > prio[sl]
    dn[sl][win] = local[win]
    prio[sl][win] = p[win]
    owner[sl][win] = cell.id


def _sphere_into(arr, grid, centre, radius, fn):
    """Apply fn(sub_array, occupancy, k-slice) in the sub-box of a soft sphere (lab frame)."""
    i0, i1, j0, j1 = grid.box(centre[0], centre[1], radius + grid.dx)
    k0, k1 = grid.zbox(centre[2], radius + grid.dz)
    if i1 <= i0 or j1 <= j0 or k1 <= k0:
        return
    d = np.sqrt((grid.x[i0:i1, None, None] - centre[0]) ** 2 + (grid.x[None, j0:j1, None] - centre[1]) ** 2
                + (grid.z[None, None, k0:k1] - centre[2]) ** 2)
    o = _ramp((radius - d) / max(grid.dx, grid.dz)).astype(np.float32)
    fn((slice(i0, i1), slice(j0, j1), slice(k0, k1)), o)


def _ellipsoid_occ(grid, centre, size, rot, sl):
    X = grid.x[sl[0], None, None] - centre[0]
    Y = grid.x[None, sl[1], None] - centre[1]
    Z = grid.z[None, None, sl[2]] - centre[2]
    c, s = math.cos(rot), math.sin(rot)
    r = np.sqrt(((c * X + s * Y) / size[0]) ** 2 + ((-s * X + c * Y) / size[1]) ** 2 + (Z / size[2]) ** 2)
    return _ramp((1 - r) * size.min() / max(grid.dx, grid.dz)).astype(np.float32)


def _capsule_dist(grid, p0, p1, sl):
    X = grid.x[sl[0], None, None]
    Y = grid.x[None, sl[1], None]
    Z = grid.z[None, None, sl[2]]
    d = p1 - p0
    L2 = float(d @ d)
    t = np.clip(((X - p0[0]) * d[0] + (Y - p0[1]) * d[1] + (Z - p0[2]) * d[2]) / L2, 0, 1)
    return np.sqrt((X - p0[0] - t * d[0]) ** 2 + (Y - p0[1] - t * d[1]) ** 2 + (Z - p0[2] - t * d[2]) ** 2)


def _rod_boxes(cell, grid, t, world):
    """Per chromosome rod of a mitotic cell: (sub-box slices, distance to the rod axis there, radius)."""
    out = []
    for p0, p1, rad in cell.rods:
        a, b = _body3_to_lab(cell, p0, t, world), _body3_to_lab(cell, p1, t, world)
        c, r = 0.5 * (a + b), 0.5 * float(np.linalg.norm(b - a)) + rad + max(grid.dx, grid.dz)
        i0, i1, j0, j1 = grid.box(c[0], c[1], r)
        k0, k1 = grid.zbox(c[2], r)
        if i1 <= i0 or j1 <= j0 or k1 <= k0:
            continue
        sl = (slice(i0, i1), slice(j0, j1), slice(k0, k1))
        out.append((sl, _capsule_dist(grid, a, b, sl), rad))
    return out


def _body3_to_lab(cell, P, t, world):
    """Body-frame 3D points (..., 3) -> lab (..., 3)."""
    xy = cell.to_lab(P[..., :2], t)
    return np.concatenate([xy, P[..., 2:3] + world.z_cs], -1)


def _render_truth(world: _World, tex: _Textures, grid: _Grid, t: int) -> tuple[np.ndarray, np.ndarray]:
    """RI - medium (nx, nx, nz) float32 of frame t on ``grid``, and the cytoplasm occupancy weight."""
    shape = (grid.nx, grid.nx, grid.nz)
    dn = np.zeros(shape, np.float32)
    prio = np.zeros(shape, np.float32)
    owner = np.zeros(shape, np.int16)
    for cell in world.cells:
        _render_cell(cell, world, tex, grid, t, dn, prio, owner)
    vox = max(grid.dx, grid.dz)
    for cell in world.cells:
        theta = cell.theta[t]
        for pos, size, rot, lobe, dnuc in cell.nucleoli:
            c = _body3_to_lab(cell, pos, t, world)
            r = float(size.max() + np.abs(lobe).max())
            i0, i1, j0, j1 = grid.box(c[0], c[1], r + vox)
            k0, k1 = grid.zbox(c[2], r + vox)
            if i1 <= i0 or j1 <= j0 or k1 <= k0:
                continue
            sl = (slice(i0, i1), slice(j0, j1), slice(k0, k1))
            o = np.maximum(_ellipsoid_occ(grid, c, size, rot + theta, sl), _ellipsoid_occ(grid, c + lobe, 0.8 * size, rot + theta + 1.0, sl))
            dn[sl] += o * dnuc * (owner[sl] == cell.id) * np.clip(prio[sl] - 1, 0, 1)
        if cell.rods:
            chrom = np.zeros(dn.shape, np.float32)
            for sl, d, rad in _rod_boxes(cell, grid, t, world):
                chrom[sl] = np.maximum(chrom[sl], _ramp((rad - d) / vox))
            dn += chrom * cell.chrom_delta * (owner == cell.id)
        for pos, r, n_drop in cell.droplets:
            c = _body3_to_lab(cell, pos, t, world)

            def put(sl, o, n_drop=n_drop, cid=cell.id):
                m = o * (owner[sl] == cid)
                dn[sl] = (1 - m) * dn[sl] + m * (n_drop - world.medium)

            _sphere_into(dn, grid, c, r, put)
    # granules and vesicles: splat points, blur to their size, keep them in the cytoplasm
    splat = np.zeros(shape, np.float32)
    sig = np.array([world.granule_size / grid.dx, world.granule_size / grid.dx, world.granule_size / grid.dz])
    norm = (2 * np.pi) ** 1.5 * float(np.prod(np.maximum(sig, 0.5)))
    for cell in world.cells:
        if len(cell.granules) == 0:
            continue
        P = _body3_to_lab(cell, cell.granules, t, world)
        fi = np.stack([(P[:, 0] - grid.x0) / grid.dx - 0.5, (P[:, 1] - grid.x0) / grid.dx - 0.5, (P[:, 2] - grid.z0) / grid.dz - 0.5], 1)
        base = np.floor(fi).astype(int)
        frac = fi - base
        for corner in range(8):
            o = np.array([(corner >> 2) & 1, (corner >> 1) & 1, corner & 1])
            w = np.prod(np.where(o, frac, 1 - frac), 1)
            idx = base + o
            ok = np.all((idx >= 0) & (idx < np.array(shape)), 1)
            np.add.at(splat, tuple(idx[ok].T), (w * cell.granule_amp * norm)[ok])
    splat = ndi.gaussian_filter(splat, sig, mode="constant")
    cyto = np.clip(np.minimum(prio, 2 - prio), 0, 1)  # cytoplasm occupancy: prio in [0,1]; 1 - nucleus above
    dn += splat * cyto
    for parts, n_deb, drift in world.debris:
        for c, r in parts:
            cc = c.copy()
            cc[:2] += drift[t]

            def put(sl, o, n_deb=n_deb):
                dn[sl] = np.maximum(dn[sl], o * (n_deb - world.medium))

            _sphere_into(dn, grid, cc, r, put)
    return dn, prio


def _render_label(world: _World, grid: _Grid, t: int) -> np.ndarray:
    """Nucleus instance ids (nx, nx, nz) uint16 on the output grid: nuclei and mitotic chromosome masses."""
    ids = np.zeros((grid.nx, grid.nx, grid.nz), np.uint16)
    best = np.zeros(ids.shape, np.float32)
    zb = grid.z - world.z_cs
    for cell in world.cells:
        if cell.nucleus is not None:
            nu = cell.nucleus
            c = cell.to_lab(np.array([nu.cx, nu.cy]), t)
            i0, i1, j0, j1 = grid.box(c[0], c[1], nu.extent + 1.0)
            k0, k1 = grid.zbox(nu.zc + world.z_cs, 1.4 * nu.cz + 0.5)
            if i1 <= i0 or j1 <= j0 or k1 <= k0:
                continue
            X, Y = np.meshgrid(grid.x[i0:i1], grid.x[j0:j1], indexing="ij")
            u, v = cell.to_body(X, Y, t)
            m = nu.margin(u[:, :, None], v[:, :, None], zb[k0:k1]).astype(np.float32)
            sl = (slice(i0, i1), slice(j0, j1), slice(k0, k1))
            win = (m > 0) & (m + 1 > best[sl])
            ids[sl][win] = cell.id
            best[sl][win] = m[win] + 1
        elif cell.rods:
            for sl, d, rad in _rod_boxes(cell, grid, t, world):
                ids[sl][d < rad] = cell.id
    return ids


# ----------------------------------------------------------------------------------------------
# artefacts of the optical train
# ----------------------------------------------------------------------------------------------


def _fringe_psi(inst: _Instrument, families) -> np.ndarray:
    """Rytov residue of dust-in-the-beam fringes: sum of eps exp(i(k.x + psi)), k rounded onto the grid."""
    x = inst.x
    psi = np.zeros((inst.n, inst.n), np.complex64)
    dk = 2 * np.pi / (inst.n * inst.pitch)
    for period, angle, phase, weight in families:
        k = 2 * np.pi / period
        kx, ky = round(k * math.cos(angle) / dk) * dk, round(k * math.sin(angle) / dk) * dk
        psi += weight * np.exp(1j * (kx * x[:, None] + ky * x[None, :] + phase))
    return psi


def _ghost_psi(inst: _Instrument, ghosts, wavelength) -> np.ndarray:
    """Rytov residue of out-of-focus dust: log of a small occluder's field defocused by d (concentric rings)."""
    x = inst.x
    q = 2 * np.pi * sfft.fftfreq(inst.n, inst.pitch)
    k0 = 2 * np.pi / wavelength
    kz = np.sqrt(np.maximum(k0**2 - q[:, None] ** 2 - q[None, :] ** 2, 0))
    psi = np.zeros((inst.n, inst.n), np.complex64)
    for cx, cy, radius, dist, weight in ghosts:
        r = np.hypot(x[:, None] - cx, x[None, :] - cy)
        occl = 1 - 0.8 * _ramp((radius - r) / inst.pitch)
        h = sfft.ifft2(sfft.fft2(occl, workers=_W) * np.exp(1j * (kz - k0) * dist), workers=_W)
        psi += weight * np.log(np.maximum(np.abs(h), 1e-3)) + 1j * weight * np.angle(h)
    return psi


def _component_amplitude(inst: _Instrument, psi: np.ndarray, z_lo: float, z_hi: float, peak: bool = False) -> float:
    """RI amplitude the reconstruction makes of a Rytov residue ``psi`` (n, n) common to all angles, over
    the slab z_lo..z_hi: sqrt 2 x s.d. (a fringe) or the largest |RI change| (a localised ghost).
    Linear in psi, so this calibrates its strength."""
    P = sfft.fft2(psi, workers=_W)
    F = inst.grid(((-2j / inst.dz_box) * inst.kz_out) * P[None])
    f = sfft.irfftn(F, s=(inst.n, inst.n, inst.nz), axes=(0, 1, 2), workers=_W)
    z = inst.z_box0 + np.arange(inst.nz) * inst.dz_box
    f = f[:, :, (z >= z_lo) & (z <= z_hi)]
    a = np.abs(f - f.mean()).max() if peak else math.sqrt(2) * f.std()
    return float(a * inst.medium / (2 * inst.km**2))


# ----------------------------------------------------------------------------------------------
# the style
# ----------------------------------------------------------------------------------------------


def _resample(ri_box, inst: _Instrument, out: _Grid, pad: float) -> np.ndarray:
    """Box RI (n, n, nz) -> output grid (X, X, Z), linear, with an anti-alias blur where it coarsens."""
    vol = ri_box
    zr = out.dz / inst.dz_box
    xr = out.dx / inst.pitch
    if zr > 1.5:
        vol = ndi.gaussian_filter1d(vol, 0.42 * zr, axis=2, mode="wrap")
    if xr > 1.5:
        vol = ndi.gaussian_filter(vol, (0.42 * xr, 0.42 * xr, 0), mode="wrap")
    off_x = (pad + 0.5 * out.dx) / inst.pitch - 0.5
    off_z = (out.z0 + 0.5 * out.dz - inst.z_box0) / inst.dz_box
    return ndi.affine_transform(vol, (xr, xr, zr), (off_x, off_x, off_z), output_shape=(out.nx, out.nx, out.nz),
                                order=1, mode="nearest").astype(np.float32)


def _instrument_for(acq: Acquisition, rng, z_focus, depth, pad, pattern=None, n_angles=None):
    """Simulation/reconstruction grids for one acquisition; returns the _Instrument and draws."""
    vxy, _, vz = acq.voxel_size_um
    X, _, Z = acq.field_shape
    size = X * vxy + 2 * pad
    na_scan = min(acq.na_illumination, 0.97 * acq.na_objective)  # the unscattered beam must enter the objective
    p_opt = acq.wavelength_um / (2 * (acq.na_objective + na_scan))
    n = int(math.ceil(size / max(vxy, p_opt)))
    n = min(_MAX_SIM, n + n % 2)
    n = int(sfft.next_fast_len(n, real=False))
    n += n % 2
    pitch = size / n
    lam_m = acq.wavelength_um / acq.medium_ri
    nz_sim = int(math.ceil(depth / float(np.clip(0.9 * lam_m, 0.3, 0.42))))  # ~0.2 rad per slice in a cell
    dz_slice = depth / nz_sim  # the multi-slice step = the ground truth's axial sampling
    pad_z = 2.5
    box = depth + 2 * pad_z
    kz_max = acq.medium_ri - math.sqrt(acq.medium_ri**2 - acq.na_objective**2) + acq.medium_ri - math.sqrt(acq.medium_ri**2 - na_scan**2)
    dz_nyq = acq.wavelength_um / (2 * kz_max)
    nz = int(math.ceil(box / max(dz_nyq, box / _MAX_BOX_Z)))
    nz = int(sfft.next_fast_len(nz + nz % 2, real=True))
    nz += nz % 2
    dz_box = box / nz
    kind = str(rng.choice(["spiral", "spiral", "rings", "ring"]))
    na_draw = int(rng.integers(20, 49))
    kind = pattern or kind
    n_angles = int(n_angles or na_draw)
    pattern = illumination_pattern(kind, n_angles, rng.uniform(0, 2 * np.pi))
    inst = _Instrument(n, pitch, dz_slice, nz, dz_box, -pad_z, z_focus, acq.wavelength_um, acq.na_objective,
                       na_scan, acq.medium_ri, pattern)
    draws = {"pattern": kind, "n_angles": n_angles, "na_scan": round(na_scan, 3), "sim_n": n,
             "sim_pitch_um": round(pitch, 4), "sim_nz": nz_sim, "sim_dz_um": round(dz_slice, 4), "box_nz": nz,
             "box_dz_um": round(dz_box, 4)}
    return inst, _Grid(n, pitch, nz_sim, dz_slice), draws


def render(seed: int, index: int, frames: int = 1) -> StyleField:
    """Render field ``index`` of the ``beam`` style.

    Returns a StyleField: ``image`` float32 RI (X, Y, Z) or (X, Y, Z, T), ``label`` uint8 nucleus mask
    (mitotic cells: the chromosome mass), ``nuclei`` uint16 instance ids, ``params`` the draws
    (scan, grids, cells, artefacts, measured background s.d.). A pure function of its arguments.
    """
    rng = style_rng("beam", seed, index)
    acq = draw_acquisition(rng)
    return _render(rng, acq, int(frames))


def _render(rng: np.random.Generator, acq: Acquisition, frames: int, **force) -> StyleField:
    """The field of ``acq`` with the draws of ``rng``; ``force`` pins draws (n_angles, pattern, gp, n_cells,
    kinds) for timing the worst case and for tests."""
    vxy, _, vz = acq.voxel_size_um
    X, _, Z = acq.field_shape
    field = X * vxy
    depth = Z * vz
    pad = float(np.clip(0.1 * field, 2.5, 5.0))
    world = _World(rng, field + 2 * pad, pad, depth, frames, force.get("n_cells"), force.get("kinds"))
    world.medium = acq.medium_ri
    world.granule_size = rng.uniform(0.12, 0.25)
    tex = _Textures(rng)
    z_focus = world.z_cs + rng.uniform(2.0, 3.5)
    inst, sim, draws = _instrument_for(acq, rng, z_focus, depth, pad, force.get("pattern"), force.get("n_angles"))
    out = _Grid(X, vxy, Z, vz, x0=pad)
    gp = int(rng.integers(0, 11))
    gp = int(force.get("gp", gp))
    A = len(inst.kin)
    slab = (world.z_cs, min(depth, world.z_cs + 8.0))  # where the cells are: artefact strengths are set there
    # artefacts drawn per field (calibrated once, in RI, through the same reconstruction); varied per frame below
    deltas = [c.delta for c in world.cells if c.nucleus is not None] or [0.005]
    contrast = max(abs(float(np.mean(deltas))), 0.003)
    fringes = []
    for _ in range(int(rng.choice([0, 1, 1, 2]))):  # dust in the beam: fringes up to the nucleus contrast
        period, angle = rng.uniform(1.0, 10.0), rng.uniform(0, np.pi)
        amp = math.exp(rng.uniform(math.log(0.05), 0.0)) * contrast  # log-uniform: mostly faint, at most the contrast
        unit = _component_amplitude(inst, _fringe_psi(inst, [(period, angle, 0.0, 1e-3)]), *slab) / 1e-3
        fringes.append((period, angle, amp, amp / max(unit, 1e-12)))
    ghost_psi = np.zeros((inst.n, inst.n), np.complex64)
    ghosts = []
    for _ in range(int(rng.integers(0, 4))):  # out-of-focus dust: ring patterns, static
        g = (rng.uniform(pad, pad + field), rng.uniform(pad, pad + field), rng.uniform(1.0, 4.0), rng.uniform(10, 80))
        amp = rng.uniform(1.0, 4.0) * acq.noise_std  # peak RI change: faint, as dust ghosts are
        one = _ghost_psi(inst, [(*g, 1e-3)], acq.wavelength_um)
        ghost_psi += one * (amp / max(_component_amplitude(inst, one, *slab, peak=True), 1e-15))
        ghosts.append({"radius_um": round(g[2], 2), "defocus_um": round(g[3], 1), "amplitude_ri": round(amp, 6)})
    tilt_rad = rng.uniform(0.0, 0.4)  # per-angle slow background tilt/bow (rad, s.d. of its amplitude)
    offset_rad = rng.uniform(0.0, 0.15)
    # noise: the field s.d. that gives the drawn RI noise (linear calibration through the same gridding)
    probe = inst.pupil_noise(np.random.default_rng(int(rng.integers(2**63 - 1))))
    unit_noise = inst.rms_ri(inst.grid(inst.cap_values(sfft.ifft2(probe, axes=(1, 2), workers=_W))))
    del probe
    sigma = acq.noise_std / max(unit_noise, 1e-12)
    frame_seeds = rng.integers(0, 2**63 - 1, size=frames)
    images, labels, ids_all, bg_std = [], [], [], []
    xi = np.clip((out.x / inst.pitch).astype(int), 0, inst.n - 1)
    for t in range(frames):
        frng = np.random.default_rng(int(frame_seeds[t]))
        dn, prio = _render_truth(world, tex, sim, t)
        occupied = np.nonzero(np.abs(dn).max(axis=(0, 1)) > 0)[0]
        k0, k1 = (int(occupied[0]), int(occupied[-1]) + 1) if len(occupied) else (0, 1)
        psi = ghost_psi.copy()
        for period, angle, amp, scale in fringes:  # the dust drifts: phase, direction and strength change
            psi += _fringe_psi(inst, [(period, angle + frng.normal(0, 0.03), frng.uniform(0, 2 * np.pi),
                                       scale * frng.uniform(0.6, 1.3))])
        factor = np.exp(psi).astype(np.complex64) if (fringes or ghosts) else None
        tilts = np.concatenate([frng.normal(0, tilt_rad, (A, 2)), frng.uniform(0, 2 * np.pi, (A, 2))], 1)
        offsets = frng.normal(0, offset_rad, A)
        phi = _measure(inst, dn[:, :, k0:k1], sim.z[k0], rng=frng, noise_sigma=sigma, field_factor=factor, tilts=tilts,
                       offsets=offsets)
        ri = inst.reconstruct(phi, gp)
        img = _resample(ri, inst, out, pad)
        ids = _render_label(world, out, t)
        # background s.d. over columns far from any cell
        empty = ndi.binary_erosion(prio.max(axis=2) == 0, iterations=8)[xi][:, xi]
        if empty.sum() > 50:
            bg_std.append(round(float(img[empty].std()), 6))
        images.append(img)
        ids_all.append(ids)
        labels.append((ids > 0).astype(np.uint8))
    stack = (lambda xs: xs[0]) if frames == 1 else (lambda xs: np.stack(xs, -1))
    params = {
        **draws,
        "gp_iterations": gp,
        "z_focus_um": round(z_focus, 3),
        "coverslip_um": round(world.z_cs, 3),
        "n_cells": len(world.cells),
        "kinds": [str(c.kind) for c in world.cells],
        "nucleus_deltas": [round(c.delta, 5) for c in world.cells if c.nucleus is not None],
        "cytoplasm_ri": [round(c.n_cyto, 4) for c in world.cells],
        "n_debris": len(world.debris),
        "fringes": [{"period_um": round(p, 3), "angle": round(a, 3), "amplitude_ri": round(m, 5)} for p, a, m, _ in fringes],
        "ghosts": ghosts,
        "tilt_rad": round(tilt_rad, 4),
        "offset_rad": round(offset_rad, 4),
        "noise_std_target": acq.noise_std,
        "background_std": bg_std,
        "measured_fraction": round(inst.measured_fraction, 4),
        **tex.params,
    }
    return StyleField(image=stack(images), label=stack(labels), acquisition=acq, style="beam", nuclei=stack(ids_all),
                      params=params)


# ----------------------------------------------------------------------------------------------
# validation: a bead of known RI through exactly the same forward model and reconstruction
# ----------------------------------------------------------------------------------------------


def _fwhm(profile: np.ndarray, spacing: float) -> float:
    """Full width at half maximum (um) of a peaked 1D profile, linear interpolation at the crossings."""
    p = np.asarray(profile, np.float64)
    i = int(np.argmax(p))
    half = 0.5 * p[i]
    lo = i
    while lo > 0 and p[lo - 1] > half:
        lo -= 1
    hi = i
    while hi < len(p) - 1 and p[hi + 1] > half:
        hi += 1
    left = lo - 1 + (half - p[lo - 1]) / (p[lo] - p[lo - 1]) if lo > 0 else lo
    right = hi + (p[hi] - half) / (p[hi] - p[hi + 1]) if hi < len(p) - 1 else hi
    return float((right - left) * spacing)


def bead_check(ri_bead: float = 1.46, diameter_um: float = 5.0, *, medium_ri: float = 1.337, wavelength_um: float = 0.532,
               na_objective: float = 1.2, na_illumination: float = 1.2, pitch_um: float = 0.1, dz_um: float = 0.2,
               n_angles: int = 48, pattern: str = "spiral", gp_iterations: int = 2, field_um: float = 16.0,
               return_volumes: bool = False) -> dict:
    """Image one bead through exactly this style's forward model and reconstruction (no noise, no artefacts).

    Fixed instrument: NA 1.2 objective, NA 1.2 illumination (scanned to 0.97 x the objective NA), 532 nm,
    48-angle spiral, 0.1 um lateral pitch, 0.2 um multi-slice step and reconstruction planes, medium
    1.337, two Gerchberg-Papoulis non-negativity iterations (``gp_iterations=0``: the bare Fourier
    diffraction theorem, missing cone untouched).

    Accuracy is judged in *contrast* terms: ``contrast_error`` = (n_center - n_m) / (n_true - n_m) - 1
    (``absolute_error`` = n_center / n_true - 1 is ~10x smaller and reported alongside). Measured:
    cell-like beads (n <= 1.40, 5 um) come out within 10 % with ``elongation`` 1.03-1.13 (bare FDT:
    10-15 % low, elongation 1.15-1.23: the missing cone). A silica bead (1.46) in water is beyond the
    Rytov approximation at steep illumination (phase vortices appear, ``phase_vortices``): its centre is
    within 10 % (contrast) but its axial profile is distorted and its FWHM elongation falls below 1.
    Exact (Mie) fields of that bead give the same picture through this reconstruction (see the tests).

    Returns a dict: ``ri_center`` (mean of the central 3x3x3 voxels), ``ri_true``, ``ri_medium``,
    ``contrast_error``, ``absolute_error``, ``fwhm_x_um`` and ``fwhm_z_um`` of the reconstructed
    contrast through the centre, ``elongation`` = FWHM_z / FWHM_x, ``phase_max_rad`` (largest Rytov
    phase), ``phase_vortices`` (field zeros over all angles), ``n_angles``, ``gp_iterations``; with
    ``return_volumes`` also ``truth`` and ``recon`` (x, y, z) RI on the reconstruction planes,
    ``spacing`` (um) and ``centre_index``.
    """
    n = int(round(field_um / pitch_um))
    n += n % 2
    depth = field_um
    nz_sim = int(round(depth / dz_um))
    sim = _Grid(n, pitch_um, nz_sim, dz_um)
    pad_z = 2.0
    nz_box = int(round((depth + 2 * pad_z) / dz_um))
    nz_box += nz_box % 2
    centre = np.array([sim.x[n // 2], sim.x[n // 2], sim.z[nz_sim // 2]])  # on a voxel centre
    z_box0 = -pad_z + 0.5 * dz_um  # box planes on the truth's slice centres
    inst = _Instrument(n, pitch_um, dz_um, nz_box, dz_um, z_box0, centre[2], wavelength_um, na_objective,
                       min(na_illumination, 0.97 * na_objective), medium_ri, illumination_pattern(pattern, n_angles))
    # ground truth, anti-aliased by 4x supersampling of each voxel
    r = 0.5 * diameter_um
    occ = np.zeros((n, n, nz_sim), np.float32)
    sub = (np.arange(4) + 0.5) / 4 - 0.5
    for ox in sub:
        for oy in sub:
            for oz in sub:
                d2 = ((sim.x[:, None, None] + ox * pitch_um - centre[0]) ** 2 + (sim.x[None, :, None] + oy * pitch_um - centre[1]) ** 2
                      + (sim.z[None, None, :] + oz * dz_um - centre[2]) ** 2)
                occ += (d2 <= r * r) / 64.0
    dn = (ri_bead - medium_ri) * occ
    occupied = np.nonzero(occ.max(axis=(0, 1)) > 0)[0]
    k0, k1 = int(occupied[0]), int(occupied[-1]) + 1
    phi = _measure(inst, dn[:, :, k0:k1], sim.z[k0])
    ri = inst.reconstruct(phi, gp_iterations)
    zc = int(round((centre[2] - inst.z_box0) / inst.dz_box))  # plane j at z_box0 + j dz
    ic = n // 2
    ri_c = float(ri[ic - 1 : ic + 2, ic - 1 : ic + 2, zc - 1 : zc + 2].mean())
    contrast = ri - medium_ri
    fx = _fwhm(contrast[:, ic, zc], pitch_um)
    fz = _fwhm(contrast[ic, ic, :], inst.dz_box)
    out = {
        "ri_center": ri_c,
        "ri_true": float(ri_bead),
        "ri_medium": float(medium_ri),
        "contrast_error": (ri_c - medium_ri) / (ri_bead - medium_ri) - 1,
        "absolute_error": ri_c / ri_bead - 1,
        "fwhm_x_um": fx,
        "fwhm_z_um": fz,
        "elongation": fz / fx,
        "phase_max_rad": float(np.abs(phi.imag).max()),
        "phase_vortices": int(phase_vortices(phi.imag).sum()),
        "n_angles": n_angles,
        "gp_iterations": gp_iterations,
    }
    if return_volumes:
        truth_box = np.full_like(ri, medium_ri)
        zb = inst.z_box0 + np.arange(nz_box) * inst.dz_box
        for j, z in enumerate(zb):
            k = int(np.floor((z - sim.z0) / dz_um))
            if 0 <= k < nz_sim:
                truth_box[:, :, j] = medium_ri + dn[:, :, k]
        out.update(truth=truth_box, recon=ri, spacing=(pitch_um, pitch_um, inst.dz_box), centre_index=(ic, ic, zc))
    return out
