"""Rendering style ``spectral``: implicit-surface cells, spectral textures, real-space PSF optics.

Cells and nuclei are metaball blends of superellipsoids (compact Wyvill kernels, so a lone
primitive is exactly its superellipsoid and overlapping ones fuse with a smooth fillet), each
perturbed by zonal spherical-harmonic radial noise. Textures are random-phase fields with
power-law (1/f^beta, optionally fibrous along a random direction) and band-pass ("granular")
amplitude spectra. The imaging model works in real space: an anisotropic Gaussian PSF, then the
missing cone is mimicked by subtracting a copy low-passed by an hourglass (double-cone, axis z)
kernel on a coarse grid; noise is a drawn mix of white, spatially correlated and signal-dependent
noise; artefacts are fringes, background tilt, reconstruction rings, dust ghosts and slab flicker.

Lengths are micrometres, refractive indices absolute unless called "contrast" (RI - medium).
Arrays are (X, Y, Z) in voxels of ``acq.voxel_size_um``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
from scipy import fft as sfft
from scipy import ndimage, special

from .base import NUCLEUS_DELTA_RANGE, Acquisition, StyleField, draw_acquisition, style_rng

__all__ = ["DESCRIPTION", "render"]

DESCRIPTION = (
    "implicit-surface cells (superellipsoid metaballs with harmonic noise), 1/f^beta, fibrous and granular "
    "spectral textures, Gaussian PSF with hourglass missing-cone subtraction, mixed noise and artefacts"
)

_F32 = np.float32
_FINE_DZ = 0.3  # um: the truth is rendered at most this fine in z, then box-averaged (anti-aliasing)


# ---------------------------------------------------------------------------------------------
# implicit primitives
# ---------------------------------------------------------------------------------------------
def _rot_z(theta: float) -> np.ndarray:
    c, s = np.cos(theta), np.sin(theta)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def _rot_from_axis(n: np.ndarray, spin: float) -> np.ndarray:
    """A rotation whose third column (body z) is the unit vector ``n``; ``spin`` turns body x about it."""
    n = np.asarray(n, float) / np.linalg.norm(n)
    a = np.array([1.0, 0.0, 0.0]) if abs(n[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    u = np.cross(n, a)
    u /= np.linalg.norm(u)
    v = np.cross(n, u)
    c, s = np.cos(spin), np.sin(spin)
    return np.stack([c * u + s * v, -s * u + c * v, n], axis=1)


def _legendre(l: int, s):
    if l == 1:
        return s
    if l == 2:
        return 1.5 * s * s - 0.5
    if l == 3:
        return (2.5 * s * s - 1.5) * s
    s2 = s * s
    return (4.375 * s2 - 3.75) * s2 + 0.375


@dataclass
class _Prim:
    """A superellipsoid (or torus) in world um: centre, body rotation (columns = body axes), semi-axes.

    ``harm``: zonal harmonics (unit axis in body coordinates, degree 1-4, relative amplitude); the
    radial level is divided by 1 + sum(amp * P_l(u . n)). ``planar`` harmonics use the azimuth only.
    """

    centre: np.ndarray
    rot: np.ndarray
    axes: tuple[float, float, float]
    e: float = 2.0  # lateral (body x-y) exponent
    t: float = 2.0  # axial exponent
    harm: tuple = ()
    planar: bool = False
    torus: bool = False
    value: float = 0.0  # a per-primitive property blended with the metaball weights (RI offset)

    def hbound(self) -> float:
        return float(sum(abs(h[2]) for h in self.harm))

    def half_extent(self, q: float = 1.0) -> np.ndarray:
        """World-axis half-widths of the region where the level is below ``q``."""
        a, b, c = self.axes
        if self.torus:
            a = b = a + b  # ring radius + tube radius
        box = np.abs(self.rot) @ np.array([a, b, c])  # the body box projected: safe for e, t > 2
        return box * q / max(1.0 - self.hbound(), 0.3)

    def level(self, dx, dy, dz):
        """Radial level (< 1 inside, degree-1 homogeneous) at world offsets from the centre (broadcastable)."""
        R = self.rot
        coords = []
        for j in range(3):  # body = R^T d, dropping zero terms keeps z-rotations 2D
            acc = None
            for i, d in enumerate((dx, dy, dz)):
                if abs(R[i, j]) > 1e-12:
                    term = d * _F32(R[i, j])
                    acc = term if acc is None else acc + term
            coords.append(acc if acc is not None else _F32(0.0))
        xb, yb, zb = coords
        a, b, c = self.axes
        if self.torus:
            rho = np.sqrt(xb * xb + yb * yb)
            q = np.sqrt((rho - _F32(a)) ** 2 + zb * zb) * _F32(1.0 / b)
            xs, ys, zs = xb, yb, zb
        else:
            xs, ys, zs = xb * _F32(1.0 / a), yb * _F32(1.0 / b), zb * _F32(1.0 / c)
            if self.e == 2.0:
                lat = xs * xs + ys * ys
            else:
                lat = np.abs(xs) ** _F32(self.e) + np.abs(ys) ** _F32(self.e)
            if self.t == 2.0:
                q = np.sqrt((lat if self.e == 2.0 else lat ** _F32(2.0 / self.e)) + zs * zs)
            else:
                q = (lat ** _F32(self.t / self.e) + np.abs(zs) ** _F32(self.t)) ** _F32(1.0 / self.t)
        if self.harm:
            if self.planar:
                r = np.sqrt(xs * xs + ys * ys) + _F32(1e-6)
                comps = (xs / r, ys / r, None)
            else:
                r = np.sqrt(xs * xs + ys * ys + zs * zs) + _F32(1e-6)
                comps = (xs / r, ys / r, zs / r)
            eps = None
            for n, l, amp in self.harm:
                s = None
                for k in range(3):
                    if comps[k] is not None and abs(n[k]) > 1e-9:
                        term = comps[k] * _F32(n[k])
                        s = term if s is None else s + term
                if s is None:
                    continue
                val = _legendre(l, s) * _F32(amp)
                eps = val if eps is None else eps + val
            if eps is not None:
                q = q / (_F32(1.0) + eps)
        return q


@dataclass
class _Shape:
    """A metaball of primitives: field = sum (1 - (q/Q)^2)^3, inside where the field exceeds its lone-primitive
    value at q = 1. ``floor``: nothing below this z (the substrate). ``scale``: um per level unit (anti-aliasing)."""

    prims: list
    Q: float = 1.5
    floor: float | None = None
    scale: float = 5.0

    def bbox(self):
        lo = np.min([p.centre - p.half_extent(self.Q) for p in self.prims], axis=0)
        hi = np.max([p.centre + p.half_extent(self.Q) for p in self.prims], axis=0)
        if self.floor is not None:
            lo[2] = max(lo[2], self.floor)
        return lo, hi

    def _weight(self, q):
        w = np.maximum(_F32(1.0) - q * q * _F32(1.0 / self.Q**2), _F32(0.0))
        return w * w * w

    def _to_level(self, S):
        # invert the lone-primitive kernel: a single primitive gives back its own level exactly
        return _F32(self.Q) * np.sqrt(np.maximum(_F32(1.0) - np.cbrt(S), _F32(0.0)))

    def level_from_field(self, S):
        """The level (< 1 inside) from the metaball field; exact for a lone primitive."""
        return self._to_level(S)

    def linear_level(self, S):
        """The level linearised about the surface (enough for a one-voxel ramp, and no cube root)."""
        T = (1.0 - 1.0 / self.Q**2) ** 3
        g = 6.0 * (1.0 - 1.0 / self.Q**2) ** 2 / self.Q**2
        return _F32(1.0 + T / g) - S * _F32(1.0 / g)

    def eval_grid(self, x, y, z, want_value: bool = False):
        """Metaball field S (and blended primitive value) on the grid of 1D axes x, y, z (um), shape (nx, ny, nz)."""
        shape = (len(x), len(y), len(z))
        S = np.zeros(shape, _F32)
        V = np.zeros(shape, _F32) if want_value else None
        for p in self.prims:
            h = p.half_extent(self.Q)
            lo, hi = p.centre - h, p.centre + h
            sl = []
            for ax, arr in enumerate((x, y, z)):
                i0, i1 = np.searchsorted(arr, lo[ax]), np.searchsorted(arr, hi[ax])
                sl.append(slice(int(i0), int(i1)))
            if any(s.stop <= s.start for s in sl):
                continue
            dx = (x[sl[0]] - p.centre[0]).astype(_F32)[:, None, None]
            dy = (y[sl[1]] - p.centre[1]).astype(_F32)[None, :, None]
            dz = (z[sl[2]] - p.centre[2]).astype(_F32)[None, None, :]
            w = self._weight(p.level(dx, dy, dz))
            S[sl[0], sl[1], sl[2]] += w
            if V is not None and p.value != 0.0:
                V[sl[0], sl[1], sl[2]] += w * _F32(p.value)
        if V is not None:
            V /= np.maximum(S, _F32(1e-6))
        if self.floor is not None:
            S[:, :, z < self.floor] = 0.0
        return S, V

    def eval_points(self, P: np.ndarray) -> np.ndarray:
        """Level at points (N, 3) um."""
        P = np.asarray(P, _F32)
        S = np.zeros(len(P), _F32)
        for p in self.prims:
            d = P - p.centre.astype(_F32)
            S += self._weight(p.level(d[:, 0], d[:, 1], d[:, 2]))
        F = self._to_level(S)
        if self.floor is not None:
            F = np.where(P[:, 2] < self.floor, _F32(self.Q), F)
        return F


# ---------------------------------------------------------------------------------------------
# cells
# ---------------------------------------------------------------------------------------------
@dataclass
class _Cell:
    """One cell: body and label shapes plus RI parameters (contrast to the medium)."""

    kind: str
    body: _Shape
    nuclei: list  # label shapes
    deltas: list  # per label shape: RI above the local cytoplasm
    cyto: float  # cytoplasm RI - medium
    nucleoli: list = field(default_factory=list)  # (shape, RI above nucleoplasm)
    spheres: list = field(default_factory=list)  # (prim, RI - medium): lipid droplets, vacuoles
    rim: float = 0.0  # peripheral heterochromatin / envelope
    peri: float = 0.0  # dense perinuclear zone (ER, Golgi)
    peri_len: float = 0.8
    pivot: np.ndarray = field(default_factory=lambda: np.zeros(3))
    floating: bool = False
    mitosis: dict | None = None  # parameters to rebuild a dividing cell at stage p


def _harm(rng, n_terms, amp, planar=False, lmin=2, lmax=4):
    out = []
    for _ in range(n_terms):
        if planar:
            phi = rng.uniform(0, 2 * np.pi)
            n = np.array([np.cos(phi), np.sin(phi), 0.0])
        else:
            n = rng.normal(size=3)
            n /= np.linalg.norm(n)
        out.append((n, int(rng.integers(lmin, lmax + 1)), float(rng.uniform(-amp, amp))))
    return tuple(out)


def _nucleus_prims(rng, centre, theta, a, b, c, variant):
    """Nucleus primitives: one superellipsoid, a kidney (bent, dented) or 2-3 lobes; sum of harmonics <= 0.08."""
    R = _rot_z(theta)
    e, t = float(rng.uniform(2.0, 2.8)), float(rng.choice([2.0, rng.uniform(2.0, 2.5)]))
    harm = _harm(rng, 3, 0.025)
    if variant == "ellipsoid":
        return [_Prim(np.array(centre, float), R, (a, b, c), e, t, harm)]
    prims = []
    if variant == "kidney":
        bend = rng.uniform(0.25, 0.5) * b
        for s in (-1.0, 0.0, 1.0):  # three overlapping lobes along a bent arc
            off = R @ np.array([s * 0.45 * a, (abs(s) - 0.5) * bend, 0.0])
            prims.append(_Prim(centre + off, R, (0.62 * a, 0.8 * b, c), 2.0, t, harm))
        return prims
    n_lobes = int(rng.integers(2, 4))
    phi0 = rng.uniform(0, 2 * np.pi)
    for k in range(n_lobes):
        phi = phi0 + 2 * np.pi * k / n_lobes + rng.normal(0, 0.3)
        off = R @ np.array([0.42 * a * np.cos(phi), 0.42 * b * np.sin(phi), 0.0])
        s = rng.uniform(0.55, 0.7)
        prims.append(_Prim(centre + off, R @ _rot_z(phi), (s * a, s * b, c * rng.uniform(0.85, 1.0)), 2.0, t, harm))
    return prims


def _scaled_cover(nuc: list, centre: np.ndarray, f_lat: float, c_extra: float, value: float) -> list:
    """Copies of the nucleus primitives scaled about the nucleus centre: the cell body over the nucleus."""
    out = []
    for p in nuc:
        off = p.centre - centre
        a, b, c = p.axes
        cz = c + c_extra
        out.append(_Prim(centre + off * np.array([f_lat, f_lat, 1.0]), p.rot, (a * f_lat, b * f_lat, cz), p.e, p.t,
                         (), value=value))
    return out


def _nucleoli(rng, nuc_shape: _Shape, centre, axes, theta, n):
    out = []
    R = _rot_z(theta)
    a, b, c = axes
    for _ in range(60):
        if len(out) >= n:
            break
        off = R @ np.array([rng.uniform(-0.5, 0.5) * a, rng.uniform(-0.5, 0.5) * b, rng.uniform(-0.25, 0.25) * c])
        r = float(rng.uniform(0.4, 1.0))
        if nuc_shape.eval_points((centre + off)[None])[0] > 0.55:
            continue
        prims = []
        for _k in range(int(rng.integers(1, 4))):  # irregular: up to three blended blobs
            o2 = rng.normal(0, 0.35 * r, 3) * np.array([1, 1, 0.6])
            prims.append(_Prim(centre + off + o2, _rot_from_axis(rng.normal(size=3), rng.uniform(0, 6.3)),
                               tuple(r * rng.uniform(0.6, 1.0, 3)), 2.0, 2.0, _harm(rng, 2, 0.08)))
        out.append((_Shape(prims, Q=1.4, scale=r), float(rng.uniform(0.008, 0.03))))
    return out


def _organelles(rng, cell: _Cell, medium: float, n_lipid: int, n_vac: int, bias_centre=None):
    """Lipid droplets and vacuoles at random points inside the cytoplasm (rejection sampling)."""
    lo, hi = cell.body.bbox()
    n_try = 40 * (n_lipid + n_vac) + 20
    P = lo + rng.random((n_try, 3)) * (hi - lo)
    inside = cell.body.eval_points(P) < 0.8
    for nuc in cell.nuclei:
        inside &= nuc.eval_points(P) > 1.25
    P = P[inside]
    if bias_centre is not None and len(P):
        # lipids crowd around the nucleus
        d = np.linalg.norm((P - bias_centre)[:, :2], axis=1)
        P = P[np.argsort(d + rng.exponential(4.0, len(d)))]
    k = 0
    for i in range(min(n_lipid, len(P))):
        r = float(rng.uniform(0.2, 0.6))
        cell.spheres.append((_Prim(P[i], np.eye(3), (r, r, r)), float(rng.uniform(1.40, 1.46) - medium)))
        k = i + 1
    rest = P[k:]
    rng.shuffle(rest)
    for i in range(min(n_vac, len(rest))):
        r = float(rng.uniform(0.3, 1.1))
        rot = _rot_from_axis(rng.normal(size=3), 0.0)
        prim = _Prim(rest[i], rot, (r, r * rng.uniform(0.7, 1), r * 0.9), harm=_harm(rng, 1, 0.1))
        cell.spheres.append((prim, float(rng.uniform(0.002, 0.012))))


def _draw_ri(rng, centre_delta: float, medium: float, lo: float = 1.350, hi: float = 1.378) -> tuple[float, float]:
    """(cytoplasm contrast to the medium, nucleus delta): the nucleus stays >= 0.010 above the medium."""
    delta = float(np.clip(centre_delta + rng.normal(0, 0.004), *NUCLEUS_DELTA_RANGE))
    cyto = max(float(rng.uniform(lo, hi)), medium + 0.010 - delta)
    return cyto - medium, delta


def _interphase_extras(rng, cell, medium, nuc_shape, centre, axes, theta):
    cell.nucleoli = _nucleoli(rng, nuc_shape, centre, axes, theta, int(rng.integers(1, 5)))
    cell.rim = float(rng.choice([0.0, rng.uniform(0.002, 0.007)], p=[0.3, 0.7]))
    cell.peri = float(rng.uniform(0.001, 0.008))
    cell.peri_len = float(rng.uniform(0.4, 1.0))
    _organelles(rng, cell, medium, int(rng.integers(0, 16)), int(rng.integers(0, 9)), bias_centre=centre)


def _spread_cell(rng, xy, z_s, s, medium, dctr, squeeze=1.0):
    """Adherent cell: flat lamella(e) + body + dome over a nucleus resting near the substrate."""
    theta = rng.uniform(0, np.pi)
    a = s * squeeze * rng.uniform(4.0, 7.0)
    b = a * rng.uniform(0.62, 0.95)
    c = float(np.clip(rng.uniform(1.5, 3.0), 0.0, 0.6 * a))
    gap = rng.uniform(0.2, 0.8)
    nc = np.array([xy[0], xy[1], z_s + gap + c])
    variant = rng.choice(["ellipsoid", "kidney", "lobed"], p=[0.55, 0.25, 0.2])
    nuc = _nucleus_prims(rng, nc, theta, a, b, c, variant)
    nuc_shape = _Shape(nuc, Q=1.35, floor=z_s + 0.05, scale=b)
    cyto, delta = _draw_ri(rng, dctr, medium)
    Q = float(rng.uniform(1.25, 1.7))
    lam_off = -float(rng.uniform(0.002, 0.008))  # thin regions are less dense
    prims = _scaled_cover(nuc, nc, float(rng.uniform(1.2, 1.5)), max(0.18 * c, gap + rng.uniform(0.3, 1.0)),
                          float(rng.uniform(0.0, 0.004)))
    body_c = nc + _rot_z(theta) @ np.array([rng.uniform(-0.4, 0.4) * a, rng.uniform(-0.3, 0.3) * b, 0.0])
    body_c[2] = z_s
    top = gap + 2 * c  # the body around the nucleus reaches 50-90 % of its top
    rot = _rot_z(theta + rng.normal(0, 0.4))
    axes = (max(1.3 * a, s * rng.uniform(7, 11)), max(1.3 * b, s * rng.uniform(5, 9)), rng.uniform(0.5, 0.9) * top)
    e = float(rng.uniform(2.0, 2.6))
    prims.append(_Prim(body_c, rot, axes, e, 2.0, _harm(rng, 3, 0.08, planar=True), planar=True))
    for _ in range(int(rng.integers(1, 3))):
        lc = body_c + np.array([*rng.normal(0, 2.5 * s, 2), 0.0])
        prims.append(_Prim(lc, _rot_z(rng.uniform(0, np.pi)),
                           (s * rng.uniform(10, 17), s * rng.uniform(7, 13), rng.uniform(0.35, 0.9)),
                           float(rng.uniform(2.0, 3.5)), 2.0, _harm(rng, 5, 0.06, planar=True, lmin=2, lmax=4),
                           planar=True, value=lam_off))
    for _ in range(int(rng.integers(0, 4))):  # processes / lamellipodia radiating from the body
        phi = rng.uniform(0, 2 * np.pi)
        L = s * rng.uniform(4, 10)
        d = np.array([np.cos(phi), np.sin(phi), 0.0])
        axes = (L, s * rng.uniform(1, 3), rng.uniform(0.3, 0.8))
        prims.append(_Prim(body_c + d * (s * 6 + 0.6 * L), _rot_z(phi), axes, 2.0, 2.0, value=lam_off))
    body = _Shape(prims, Q=Q, floor=z_s, scale=s * 8)
    cell = _Cell("spread", body, [nuc_shape], [delta], cyto, pivot=nc.copy())
    _interphase_extras(rng, cell, medium, nuc_shape, nc, (a, b, c), theta)
    return cell


def _rounded_cell(rng, xy, z_s, s, medium, dctr, depth):
    """Rounded / suspended cell: near-spherical, may float above the substrate; nucleus anywhere inside."""
    fl = float(rng.uniform(0.5, 3.0)) if rng.random() < 0.35 else 0.0
    R = float(np.clip(s * rng.uniform(5.0, 8.5), 3.5, max(3.5, (depth - z_s - 0.4 - fl) / 2)))
    if 2 * R + fl > depth - z_s - 0.4:
        fl = 0.0
    cz = z_s + (R * rng.uniform(0.85, 0.97) if fl == 0.0 else R + fl)
    cc = np.array([xy[0], xy[1], cz])
    rot = _rot_from_axis(rng.normal(size=3), rng.uniform(0, 6.3))
    axes = tuple(R * rng.uniform(0.92, 1.05, 3))
    e = float(rng.uniform(1.9, 2.3))
    body = _Shape([_Prim(cc, rot, axes, e, 2.0, _harm(rng, 3, 0.03))], Q=1.3, floor=z_s, scale=R)
    rn = R * rng.uniform(0.45, 0.62)
    nc = cc + rng.normal(0, 1, 3) / np.sqrt(3) * (R - rn) * 0.35
    nc[2] = max(nc[2], z_s + rn + 0.3)
    axes = tuple(rn * rng.uniform(0.85, 1.1, 3))
    rot = _rot_from_axis(rng.normal(size=3), rng.uniform(0, 6.3))
    nuc = _Shape([_Prim(nc, rot, axes, 2.0, 2.0, _harm(rng, 3, 0.025))], Q=1.3, scale=rn)
    cyto, delta = _draw_ri(rng, dctr, medium, 1.355)
    cell = _Cell("rounded", body, [nuc], [delta], cyto,
                 pivot=cc.copy(), floating=fl > 0)
    _interphase_extras(rng, cell, medium, nuc, nc, axes, 0.0)
    return cell


def _spindle_cell(rng, xy, z_s, s, medium, dctr):
    """Elongated (fibroblast-like) cell: body with two tapering tails, elongated nucleus."""
    theta = rng.uniform(0, np.pi)
    R = _rot_z(theta)
    bw = s * rng.uniform(3.0, 5.0)
    a = s * rng.uniform(4.5, 7.5)
    b = min(0.8 * bw, s * rng.uniform(2.3, 3.5))
    c = float(rng.uniform(1.2, 2.2))
    gap = rng.uniform(0.2, 0.6)
    nc = np.array([xy[0], xy[1], z_s + gap + c])
    nuc = [_Prim(nc, R, (a, b, c), float(rng.uniform(2.0, 2.6)), 2.0, _harm(rng, 3, 0.025))]
    nuc_shape = _Shape(nuc, Q=1.35, floor=z_s + 0.05, scale=b)
    lam_off = -float(rng.uniform(0.002, 0.006))
    prims = _scaled_cover(nuc, nc, float(rng.uniform(1.2, 1.4)), max(0.18 * c, gap + rng.uniform(0.3, 0.8)), 0.0)
    bc = np.array([xy[0], xy[1], z_s])
    axes = (s * rng.uniform(7, 10), bw, rng.uniform(1.2, 2.2))
    prims.append(_Prim(bc, R, axes, 2.0, 2.0, _harm(rng, 2, 0.05, planar=True), planar=True))
    for sign in (-1, 1):
        L = s * rng.uniform(6, 13)
        bend = rng.normal(0, 0.25)
        tc = bc + R @ np.array([sign * (s * 6 + 0.7 * L), rng.normal(0, 1.0), 0.0])
        prims.append(_Prim(tc, _rot_z(theta + bend), (L, bw * rng.uniform(0.25, 0.45), rng.uniform(0.3, 0.7)),
                           float(rng.uniform(1.6, 2.2)), 2.0, value=lam_off))
    body = _Shape(prims, Q=float(rng.uniform(1.3, 1.7)), floor=z_s, scale=bw)
    cyto, delta = _draw_ri(rng, dctr, medium, 1.350, 1.376)
    cell = _Cell("spindle", body, [nuc_shape], [delta], cyto,
                 pivot=nc.copy())
    _interphase_extras(rng, cell, medium, nuc_shape, nc, (a, b, c), theta)
    return cell


def _mitotic_params(rng, xy, z_s, s, depth, stage):
    R = float(np.clip(s * rng.uniform(6.0, 8.5), 4.0, max(4.0, (depth - z_s - 0.4) / 2)))
    n = np.array([*rng.normal(0, 1, 2), rng.normal(0, 0.25)])
    return dict(
        xy=np.array(xy, float), z_s=z_s, R=R, axis=n / np.linalg.norm(n), spin=float(rng.uniform(0, 6.3)),
        plate=(float(rng.uniform(3.0, 5.0) * max(s, 0.75)), float(rng.uniform(2.8, 4.6) * max(s, 0.75)),
               float(rng.uniform(0.5, 1.0))),
        ring=rng.random() < 0.3, ring_r=(float(rng.uniform(2.5, 3.8)), float(rng.uniform(0.6, 1.0))),
        sep_max=float(rng.uniform(5.0, 8.0)), d_plate=float(rng.uniform(0.008, 0.02)),
        d_late=float(np.clip(rng.normal(-0.003, 0.004), *NUCLEUS_DELTA_RANGE)),
        harm=_harm(rng, 4, 0.06, lmin=2, lmax=4), stage=stage, cell_harm=_harm(rng, 2, 0.03),
    )


def _smoothstep(a, b, x):
    u = np.clip((x - a) / (b - a), 0.0, 1.0)
    return float(u * u * (3 - 2 * u))


def _mitotic_cell(m: dict, cyto: float, p: float | None = None) -> _Cell:
    """A rounded mitotic cell at stage p (0 metaphase .. 1 two daughter cells); its label is the chromosome mass."""
    p = m["stage"] if p is None else p
    q = _smoothstep(0.35, 1.0, p)  # cytokinesis
    sep = m["sep_max"] * _smoothstep(0.3, 0.85, p)  # anaphase separation of the chromosome sets
    late = _smoothstep(0.8, 1.0, p)  # telophase: chromatin decondenses into daughter nuclei
    n, R = m["axis"], m["R"]
    Rd = R * (1 - 0.2 * q)
    cz = m["z_s"] + Rd * 0.95
    cc = np.array([m["xy"][0], m["xy"][1], cz])
    rot = _rot_from_axis(n, m["spin"])
    flat = n * np.array([1, 1, 0.3])  # daughters stay on the substrate
    Qb = 1.6 - 0.4 * q
    if q < 1e-3:
        prims = [_Prim(cc, rot, (R, R, R * 1.04), 2.1, 2.0, m["cell_harm"])]
    else:
        # two coincident metaballs swell by 1/s0; shrink them so the cell does not inflate as it starts to divide
        T = (1 - 1 / Qb**2) ** 3
        s0 = 1.0 / (Qb * np.sqrt(1 - (T / 2) ** (1 / 3)))
        r = Rd * (s0 + (1 - s0) * q)
        prims = [_Prim(cc + sgn * 0.5 * q * Rd * flat, rot, (r, r, r), 2.1, 2.0, m["cell_harm"]) for sgn in (-1, 1)]
    body = _Shape(prims, Q=Qb, floor=m["z_s"], scale=R)
    nuclei, deltas = [], []
    if m["ring"] and p < 0.3:  # prometaphase rosette seen as a ring
        rr, rt = m["ring_r"]
        nuclei.append(_Shape([_Prim(cc, rot, (rr, rt, rt), torus=True, harm=m["harm"])], Q=1.3, scale=rt))
        deltas.append(m["d_plate"])
    else:
        a, b, c = m["plate"]
        rn = 0.55 * Rd
        axes = tuple(np.array([a, b, c]) * (1 - late) + np.array([rn, rn * 0.9, rn * 0.8]) * late)
        offs = [0.0] if sep < 2.5 * c else [-0.5 * sep, 0.5 * sep]
        for o in offs:
            nuclei.append(_Shape([_Prim(cc + o * flat, rot, axes, 2.4, 2.0, m["harm"])], Q=1.3, scale=min(axes)))
            deltas.append(m["d_plate"] * (1 - late) + m["d_late"] * late)
    return _Cell("mitotic", body, nuclei, deltas, cyto, pivot=cc.copy(), mitosis=m)


def _debris(rng, L, z_s, depth, medium):
    """Small dense fragments anywhere (no label)."""
    out = []
    for _ in range(int(rng.poisson(1.5))):
        c = np.array([rng.uniform(0, L), rng.uniform(0, L), z_s + (rng.uniform(0.3, 1.0) if rng.random() < 0.7
                                                                  else rng.uniform(1, depth - z_s - 1))])
        r = float(rng.uniform(0.3, 1.4))
        prims = []
        for _k in range(int(rng.integers(1, 4))):
            cen = c + rng.normal(0, 0.4 * r, 3)
            rot = _rot_from_axis(rng.normal(size=3), 0.0)
            prims.append(_Prim(cen, rot, tuple(r * rng.uniform(0.5, 1, 3)), 2.0, 2.0, _harm(rng, 2, 0.12)))
        out.append((_Shape(prims, Q=1.4, scale=r), float(rng.uniform(1.37, 1.43) - medium)))
    return out


def _nucleus_radius(cell: _Cell) -> float:
    lo, hi = cell.nuclei[0].bbox()
    return float(0.5 * max(hi[0] - lo[0], hi[1] - lo[1]) / cell.nuclei[0].Q)


def _draw_layout(rng, acq: Acquisition):
    """Cells (1-7), debris and the substrate height for one field."""
    L = acq.field_size_um[0]
    depth = acq.field_size_um[2]
    z_s = float(rng.uniform(0.8, 2.5))
    s = float(np.clip(L / 46.0, 0.6, 1.08))
    medium = acq.medium_ri
    dctr = float(rng.uniform(-0.011, 0.002))  # per-field centre of the nucleus-cytoplasm difference
    n_max = int(np.clip(round(7 * (L / 50.0) ** 2), 1, 7))
    n_target = int(min(n_max, rng.choice(np.arange(1, 8), p=[0.16, 0.2, 0.18, 0.15, 0.12, 0.11, 0.08])))
    cells: list[_Cell] = []
    clusters: list[list[int]] = []
    has_mitotic = False

    def make(kind, xy):
        if kind == "spread":
            return _spread_cell(rng, xy, z_s, s, medium, dctr)
        if kind == "rounded":
            return _rounded_cell(rng, xy, z_s, s, medium, dctr, depth)
        if kind == "spindle":
            return _spindle_cell(rng, xy, z_s, s, medium, dctr)
        m = _mitotic_params(rng, xy, z_s, s, depth, float(rng.uniform(0.0, 0.6)))
        return _mitotic_cell(m, float(rng.uniform(1.366, 1.378) - medium))

    def far_enough(c: _Cell, others) -> bool:
        for o in others:
            d = np.linalg.norm(c.pivot[:2] - o.pivot[:2])
            if d < 1.05 * (_nucleus_radius(c) + _nucleus_radius(o)):
                return False
        return True

    def cluster(xy, n):
        """2-4 adherent cells whose nuclei touch (centre distances about the sum of their radii)."""
        members = [_spread_cell(rng, xy, z_s, s, medium, dctr, squeeze=0.85)]
        phi = rng.uniform(0, 2 * np.pi)
        for k in range(1, n):
            base = members[int(rng.integers(0, len(members)))]
            for _ in range(12):
                ang = phi + rng.normal(0, 0.9) + k * 2.1
                d = np.array([np.cos(ang), np.sin(ang)])
                probe = _spread_cell(rng, base.pivot[:2], z_s, s, medium, dctr, squeeze=0.85)
                # distance along d at which the two nucleus outlines meet (probe by their level functions)
                dist = _touch_distance(base.nuclei[0], probe.nuclei[0], d) * rng.uniform(0.97, 1.03)
                new = _translate_cell(probe, np.array([*(d * dist), 0.0]))
                if far_enough(new, [m for m in members if m is not base]):
                    members.append(new)
                    break
        return members

    # first unit: a nucleus well inside the field
    kind0 = rng.choice(["spread", "rounded", "spindle", "cluster"], p=[0.5, 0.15, 0.2, 0.15])
    xy0 = rng.uniform(0.38, 0.62, 2) * L
    if kind0 == "cluster" and n_target >= 2:
        members = cluster(xy0, int(min(n_target, rng.integers(2, 5))))
        clusters.append(list(range(len(members))))
        cells += members
    else:
        cells.append(make("spread" if kind0 == "cluster" else kind0, xy0))
    tries = 0
    while len(cells) < n_target and tries < 40:
        tries += 1
        kinds, p = ["spread", "rounded", "spindle", "cluster", "mitotic"], [0.38, 0.14, 0.18, 0.15, 0.15]
        kind = rng.choice(kinds, p=p)
        if kind == "mitotic" and has_mitotic:
            continue
        xy = rng.uniform(-0.05, 1.05, 2) * L  # may be cut by the field edge
        if kind == "cluster":
            n = int(min(n_target - len(cells), rng.integers(2, 5)))
            if n < 2:
                continue
            members = cluster(xy, n)
            if all(far_enough(m, cells) for m in members):
                clusters.append(list(range(len(cells), len(cells) + len(members))))
                cells += members
            continue
        c = make(kind, xy)
        if far_enough(c, cells):
            cells.append(c)
            has_mitotic |= kind == "mitotic"
    debris = _debris(rng, L, z_s, depth, medium)
    return dict(cells=cells, debris=debris, z_s=z_s, size_scale=s, delta_centre=dctr, clusters=clusters)


def _touch_distance(a: _Shape, b: _Shape, d: np.ndarray) -> float:
    """Centre distance along the lateral unit vector d at which the outlines of a and b (same centre) meet."""
    ca = _shape_centre(a)
    cb = _shape_centre(b)
    ts = np.linspace(0.0, 20.0, 401)
    pa = ca + np.outer(ts, [d[0], d[1], 0.0])
    pb = cb - np.outer(ts, [d[0], d[1], 0.0])
    ra = ts[np.argmax(a.eval_points(pa) >= 1.0)]
    rb = ts[np.argmax(b.eval_points(pb) >= 1.0)]
    return float(ra + rb)


def _shape_centre(sh: _Shape) -> np.ndarray:
    return np.mean([p.centre for p in sh.prims], axis=0)


def _transform_prim(p: _Prim, pivot, shift, R, stretch) -> _Prim:
    off = R @ ((p.centre - pivot) * stretch)
    s = float(np.sqrt(stretch[0] * stretch[1]))
    axes = (p.axes[0] * s, p.axes[1] * s, p.axes[2] * stretch[2])
    return replace(p, centre=pivot + shift + off, rot=R @ p.rot, axes=axes)


def _transform_shape(sh: _Shape, pivot, shift, R, stretch) -> _Shape:
    return replace(sh, prims=[_transform_prim(p, pivot, shift, R, stretch) for p in sh.prims])


def _translate_cell(c: _Cell, shift: np.ndarray) -> _Cell:
    return _move_cell(c, shift, 0.0, np.ones(3), 0.0, 1.0)


def _move_cell(c: _Cell, shift, theta, stretch, nuc_theta, wobble) -> _Cell:
    """The cell after a drift, a rotation about z, a stretch, a turn of the nucleus and a harmonic wobble."""
    R = _rot_z(theta)
    piv = c.pivot

    def wob(sh):
        prims = [replace(p, harm=tuple((n, l, amp * wobble) for n, l, amp in p.harm)) for p in sh.prims]
        return replace(sh, prims=prims)

    body = wob(_transform_shape(c.body, piv, shift, R, stretch))
    nuclei = []
    for nsh in c.nuclei:
        moved = _transform_shape(nsh, piv, shift, R, stretch)
        cen = _shape_centre(moved)
        nuclei.append(wob(_transform_shape(moved, cen, np.zeros(3), _rot_z(nuc_theta), np.ones(3))))
    nucleoli = []
    for sh, d in c.nucleoli:
        moved = _transform_shape(sh, piv, shift, R, stretch)
        cen = _shape_centre(nuclei[0]) if nuclei else piv
        nucleoli.append((_transform_shape(moved, cen, np.zeros(3), _rot_z(nuc_theta), np.ones(3)), d))
    spheres = [(_transform_prim(p, piv, shift, R, np.ones(3)), v) for p, v in c.spheres]
    return replace(c, body=body, nuclei=nuclei, nucleoli=nucleoli, spheres=spheres, pivot=piv + shift)


# ---------------------------------------------------------------------------------------------
# textures: random-phase fields with drawn amplitude spectra
# ---------------------------------------------------------------------------------------------
def _kgrid(shape, spacing):
    kx = sfft.fftfreq(shape[0], spacing[0]).astype(_F32)[:, None, None]
    ky = sfft.fftfreq(shape[1], spacing[1]).astype(_F32)[None, :, None]
    kz = sfft.rfftfreq(shape[2], spacing[2]).astype(_F32)[None, None, :]
    return kx, ky, kz


def _amplitude(kx, ky, kz, spec: dict) -> np.ndarray:
    """Amplitude spectrum: power law (optionally fibrous along a unit vector) or band-pass, unit total power."""
    k2 = kx * kx + ky * ky + kz * kz
    if spec.get("fibre") is not None:
        d = spec["fibre"]
        kd = kx * _F32(d[0]) + ky * _F32(d[1]) + kz * _F32(d[2])
        k2 = k2 + _F32(spec["aniso"]) * kd * kd  # fast decay along the fibre: structures stretched along it
    if spec["kind"] == "power":
        A = (k2 + _F32(spec["k0"] ** 2)) ** _F32(-spec["beta"] / 4.0)
        if spec.get("kmax"):
            A *= np.exp(-k2 * _F32(1.0 / spec["kmax"] ** 2))
    else:
        k = np.sqrt(k2)
        A = np.exp(-((k - _F32(spec["kc"])) ** 2) * _F32(0.5 / spec["kw"] ** 2))
    A.flat[0] = 0.0
    A *= _F32(1.0 / np.sqrt(float(np.sum(A.astype(np.float64) ** 2)) + 1e-30))
    return A


def _random_field(rng, shape, spacing, specs, weights) -> np.ndarray:
    """Zero-mean unit-std real field: one random phase per frequency under the weighted sum of amplitude spectra."""
    kx, ky, kz = _kgrid(shape, spacing)
    A = None
    for spec, w in zip(specs, weights):
        a = _amplitude(kx, ky, kz, spec) * _F32(w)
        A = a if A is None else A + a
    phase = rng.random(A.shape, dtype=_F32) * _F32(2 * np.pi)
    spec = np.empty(A.shape, np.complex64)
    spec.real = A * np.cos(phase)
    spec.imag = A * np.sin(phase)
    del phase, A
    f = sfft.irfftn(spec, s=shape, workers=1, overwrite_x=True).astype(_F32, copy=False)
    sd = float(f[::2, ::2, ::2].std())
    f *= _F32(1.0 / max(sd, 1e-12))
    return f


def _texture_spec(rng, L: float, fine: bool) -> tuple[list, list, dict]:
    """A drawn texture family: power law (beta 1-4, sometimes fibrous) plus a granular band-pass part."""
    beta = float(rng.uniform(1.0, 4.0))
    p = {"kind": "power", "beta": beta, "k0": 1.0 / L}
    info = {"beta": round(beta, 3)}
    if rng.random() < 0.35:
        d = rng.normal(size=3) * np.array([1, 1, 0.4])
        p["fibre"] = d / np.linalg.norm(d)
        p["aniso"] = float(rng.uniform(3, 30))
        info["fibrous"] = round(p["aniso"], 2)
    kc = 1.0 / float(rng.uniform(0.3, 0.9) if fine else rng.uniform(0.5, 1.5))
    g = {"kind": "band", "kc": kc, "kw": kc * float(rng.uniform(0.15, 0.4))}
    wg = float(rng.uniform(0.0, 1.0))
    info["granular"] = round(wg, 3)
    return [p, g], [1.0, wg], info


def _upsample_linear(a: np.ndarray, shape, factors) -> np.ndarray:
    """Separable linear interpolation of a block-centred coarse grid onto the full grid."""
    out = a
    for axis in (2, 1, 0):  # the largest step last, along axis 0 where a gather copies whole rows
        n, f = shape[axis], factors[axis]
        if f == 1 and out.shape[axis] == n:
            continue
        pos = (np.arange(n) - (f - 1) / 2.0) / f
        i0 = np.clip(np.floor(pos).astype(int), 0, out.shape[axis] - 1)
        i1 = np.clip(i0 + 1, 0, out.shape[axis] - 1)
        w = np.clip(pos - np.floor(pos), 0, 1).astype(_F32)
        w[pos < 0] = 0
        sh = [1, 1, 1]
        sh[axis] = n
        w = w.reshape(sh)
        a0, a1 = np.take(out, i0, axis=axis), np.take(out, i1, axis=axis)
        a1 -= a0
        a1 *= w
        a0 += a1
        out = a0
    return out.astype(_F32, copy=False)


def _block_mean(a: np.ndarray, f) -> np.ndarray:
    pads = [(0, (-n) % k) for n, k in zip(a.shape, f)]
    if any(p[1] for p in pads):
        a = np.pad(a, pads, mode="edge")
    X, Y, Z = a.shape
    return a.reshape(X // f[0], f[0], Y // f[1], f[1], Z // f[2], f[2]).mean(axis=(1, 3, 5), dtype=_F32)


# ---------------------------------------------------------------------------------------------
# compositing the truth
# ---------------------------------------------------------------------------------------------
class _Grid:
    """Voxel-centre coordinates (um) of the output grid, or of its z-slab k0:k1; ``zf`` is the finer z of the truth."""

    def __init__(self, acq: Acquisition, k0: int = 0, k1: int | None = None):
        self.full_shape = acq.field_shape
        k1 = acq.field_shape[2] if k1 is None else k1
        self.k0 = k0
        self.shape = (acq.field_shape[0], acq.field_shape[1], k1 - k0)
        self.vox = acq.voxel_size_um
        self.x = (np.arange(self.shape[0]) + 0.5) * self.vox[0]
        self.y = (np.arange(self.shape[1]) + 0.5) * self.vox[1]
        self.z = (np.arange(k0, k1) + 0.5) * self.vox[2]
        self.ns = max(1, int(np.ceil(self.vox[2] / _FINE_DZ - 1e-9)))
        self.zf = (np.arange(k0 * self.ns, k1 * self.ns) + 0.5) * self.vox[2] / self.ns

    def box(self, lo, hi):
        """Index slices (of this grid) covering [lo, hi] um, or None when outside it."""
        sl = []
        for ax, arr in enumerate((self.x, self.y, self.z)):
            v = self.vox[ax]
            off = self.k0 if ax == 2 else 0
            i0 = int(np.clip(np.floor(lo[ax] / v) - off, 0, len(arr)))
            i1 = int(np.clip(np.ceil(hi[ax] / v) + 1 - off, 0, len(arr)))
            if i1 <= i0:
                return None
            sl.append(slice(i0, i1))
        return tuple(sl)

    def occupancy(self, shape: _Shape, lo=None, hi=None, want_value=False, want_level=False):
        """Anti-aliased occupancy of ``shape`` on the output grid: (box slices, occ, value, level) or None."""
        if lo is None:
            lo, hi = shape.bbox()
        sl = self.box(lo, hi)
        if sl is None:
            return None
        zf = self.zf[sl[2].start * self.ns: sl[2].stop * self.ns]
        S, V = shape.eval_grid(self.x[sl[0]], self.y[sl[1]], zf, want_value)
        F = shape.level_from_field(S) if want_level else shape.linear_level(S)
        del S
        # distance ~ (F - 1) * scale: a one-voxel ramp laterally; z is supersampled instead
        k = _F32(shape.scale / self.vox[0])
        occ = F * (-k)
        occ += _F32(0.5) + k
        np.clip(occ, 0.0, 1.0, out=occ)
        if self.ns > 1:
            occ = _zmean(occ, self.ns)
            if V is not None:
                V = _zmean(V, self.ns)
            if want_level:
                F = F[:, :, self.ns // 2::self.ns]
        return sl, occ, V, (F if want_level else None)


def _zmean(a: np.ndarray, n: int) -> np.ndarray:
    """Mean over consecutive groups of n along z (the supersampled truth back on the output grid)."""
    out = a[:, :, 0::n].copy()
    for j in range(1, n):
        out += a[:, :, j::n]
    out *= _F32(1.0 / n)
    return out


def _compose(acq: Acquisition, cells, debris, tex: dict, look: dict, id_base: list):
    """Truth contrast (RI - medium), nucleus label and instance ids (X, Y, Z) on the output grid.

    Only the z-slab holding objects is composed (the rest is medium), which halves the work.
    """
    vz = acq.voxel_size_um[2]
    nz = acq.field_shape[2]
    los, his = zip(*([c.body.bbox() for c in cells] + [sh.bbox() for sh, _ in debris]))
    k0 = int(np.clip(np.floor(min(lo[2] for lo in los) / vz) - 1, 0, nz - 1))
    k1 = int(np.clip(np.ceil(max(hi[2] for hi in his) / vz) + 2, k0 + 1, nz))
    full = acq.field_shape
    c_full = np.zeros(full, _F32)
    label_full = np.zeros(full, bool)
    nuclei_full = np.zeros(full, np.uint16)
    # the textures cover the slab tex["k0"]:...; objects outside it were cut by the field anyway
    kt0 = tex["k0"]
    k0 = int(np.clip(k0, kt0, kt0 + tex["cyto"].shape[2] - 1))
    k1 = int(np.clip(k1, k0 + 1, kt0 + tex["cyto"].shape[2]))
    tex = {k: v[:, :, k0 - kt0:k1 - kt0] for k, v in tex.items() if k != "k0"}
    grid = _Grid(acq, k0, k1)
    shp = grid.shape
    occ_c = np.zeros(shp, _F32)
    cyto_sum = np.zeros(shp, _F32)
    occ_sum = np.zeros(shp, _F32)
    occ_n = np.zeros(shp, _F32)
    dlt = np.zeros(shp, _F32)
    best = np.zeros(shp, _F32)
    ids = np.zeros(shp, np.uint16)
    add = np.zeros(shp, _F32)
    peri = np.zeros(shp, _F32)
    ov_w = np.zeros(shp, _F32)
    ov_v = np.zeros(shp, _F32)
    for cell, base_id in zip(cells, id_base):
        r = grid.occupancy(cell.body, want_value=True)
        if r is not None:
            sl, o, V, _ = r
            np.maximum(occ_c[sl], o, out=occ_c[sl])
            cyto_sum[sl] += o * (_F32(cell.cyto) + V)
            occ_sum[sl] += o
        for k, (nsh, delta) in enumerate(zip(cell.nuclei, cell.deltas)):
            lo, hi = nsh.bbox()
            m = 2.5 * cell.peri_len if cell.peri else 0.0
            r = grid.occupancy(nsh, lo - m, hi + m, want_level=True)
            if r is None:
                continue
            sl, o, _, F = r
            occ_n[sl] += o
            dlt[sl] += o * _F32(delta)
            upd = o > best[sl]
            best[sl] = np.where(upd, o, best[sl])
            ids[sl] = np.where(upd, np.uint16(base_id + k), ids[sl])
            np.maximum(occ_c[sl], o, out=occ_c[sl])  # the nucleus always lies in its cell ...
            short = np.maximum(o - occ_sum[sl], _F32(0.0))  # ... with that cell's cytoplasm as its reference
            cyto_sum[sl] += short * _F32(cell.cyto)
            occ_sum[sl] += short
            rs = nsh.scale
            if cell.rim:
                # peripheral heterochromatin / envelope: a shell just inside the nuclear surface
                dist_in = (_F32(1.0) - np.minimum(F, _F32(1.0))) * _F32(rs)
                add[sl] += o * _F32(cell.rim) * np.exp(-dist_in * _F32(1.0 / 0.35))
            if cell.peri:
                dist_out = np.maximum(F - _F32(1.0), _F32(0.0)) * _F32(rs)
                peri[sl] += _F32(cell.peri) * np.exp(-dist_out * _F32(1.0 / cell.peri_len)) * (_F32(1.0) - o)
        for nsh, dn in cell.nucleoli:
            r = grid.occupancy(nsh)
            if r is not None:
                sl, o, _, _ = r
                add[sl] += o * _F32(dn) * (_F32(1.0) + _F32(0.3) * tex["gran"][sl])
        for p, val in cell.spheres:
            r = grid.occupancy(_Shape([p], Q=1.2, scale=min(p.axes)))
            if r is not None:
                sl, o, _, _ = r
                ov_w[sl] += o
                ov_v[sl] += o * _F32(val)
    for sh, val in debris:
        r = grid.occupancy(sh)
        if r is not None:
            sl, o, _, _ = r
            ov_w[sl] += o
            ov_v[sl] += o * _F32(val)

    label = occ_n > 0.5
    nuc_frac = np.minimum(occ_n, _F32(1.0))
    delta = dlt / np.maximum(occ_n, _F32(1.0))
    cyto = cyto_sum / np.maximum(occ_sum, _F32(1e-3))
    # the organelle-rich cytoplasm: thresholded granular / fibrous field -> sparse dense puncta
    punct = np.maximum(tex["gran"] - _F32(look["punct_thr"]), _F32(0.0)) * _F32(look["punct_amp"])
    val = cyto + _F32(look["hetero_amp"]) * tex["hetero"]
    val += (_F32(1.0) - nuc_frac) * (_F32(look["cyto_amp"]) * tex["cyto"] + punct + peri)
    val += nuc_frac * (delta + _F32(look["chrom_amp"]) * tex["chrom"])
    # a soft floor: textures never take cytoplasm below medium + 0.003 or nucleoplasm below medium + 0.008
    low = val < _F32(0.0205)
    v = val[low]
    fl = _F32(0.003) + _F32(0.005) * nuc_frac[low]
    val[low] = fl + _F32(0.0025) * np.log1p(np.exp((v - fl) * _F32(400.0)))
    c = occ_c * val
    del val
    c += add
    w = np.minimum(ov_w, _F32(1.0))
    c = c * (_F32(1.0) - w) + ov_v / np.maximum(ov_w, _F32(1.0))
    c_full[:, :, k0:k1] = c
    label_full[:, :, k0:k1] = label
    nuclei_full[:, :, k0:k1] = np.where(label, ids, np.uint16(0))
    return c_full, label_full, nuclei_full


# ---------------------------------------------------------------------------------------------
# imaging: real-space PSF, hourglass missing cone, artefacts, noise
# ---------------------------------------------------------------------------------------------
def _draw_optics(rng, acq: Acquisition) -> dict:
    lam, nm = acq.wavelength_um, acq.medium_ri
    na_sum = acq.na_objective + acq.na_illumination
    na_eff = 0.5 * na_sum
    sxy = 0.21 * lam / na_sum * float(rng.uniform(1.0, 2.2))
    sz = float(rng.uniform(0.25, 0.5)) * nm * lam / na_eff**2
    gamma = float(np.arcsin(min(acq.na_illumination / nm, 0.99)))  # hourglass opening follows the scan cone
    u = float(np.clip(rng.uniform(0.1, 0.35) + 0.25 * (1 - acq.na_illumination / 1.32), 0.05, 0.6))
    return dict(psf_sigma_xy_um=sxy, psf_sigma_z_um=sz, cone_half_angle_rad=gamma, cone_factor=u,
                cone_waist_um=float(rng.uniform(0.4, 1.2)), cone_length_um=float(rng.uniform(2.0, 5.0)),
                clamp=bool(rng.random() < 0.35), clamp_floor=float(rng.uniform(0.0, 0.001)))


def _hourglass_copy(c: np.ndarray, vox, opt: dict) -> np.ndarray:
    """``c`` low-passed by a normalised double-cone kernel (axis z) on a ~0.45 um coarse grid, back on the full grid."""
    f = (max(1, int(round(0.45 / vox[0]))), max(1, int(round(0.45 / vox[1]))), max(1, int(round(0.45 / vox[2]))))
    cc = _block_mean(c, f)
    dv = [v * k for v, k in zip(vox, f)]
    gam, w0, Lz = opt["cone_half_angle_rad"], opt["cone_waist_um"], opt["cone_length_um"]
    # reflected margins against wrap-around, capped: the kernel's wide far wings carry little weight
    pz = int(min(np.ceil(2.0 * Lz / dv[2]), cc.shape[2] - 1))
    pxy = int(min(np.ceil((w0 + Lz * np.tan(gam)) / dv[0]), cc.shape[0] // 4))
    cp = np.pad(cc, ((pxy, pxy), (pxy, pxy), (pz, pz)), mode="reflect")
    X, Y, Z = cp.shape
    x = (sfft.fftfreq(X) * X * dv[0]).astype(_F32)[:, None, None]
    y = (sfft.fftfreq(Y) * Y * dv[1]).astype(_F32)[None, :, None]
    z = (sfft.fftfreq(Z) * Z * dv[2]).astype(_F32)[None, None, :]
    width = _F32(w0) + np.abs(z) * _F32(np.tan(gam))  # the disc widens away from the focus: an hourglass
    K = np.exp(-(x * x + y * y) / (2 * width * width)) / (width * width) * np.exp(-(z * z) / _F32(2 * Lz * Lz))
    K /= K.sum()
    out = sfft.irfftn(sfft.rfftn(cp, workers=1) * sfft.rfftn(K, workers=1), s=cp.shape, workers=1).astype(_F32)
    out = out[pxy:pxy + cc.shape[0], pxy:pxy + cc.shape[1], pz:pz + cc.shape[2]]
    return _upsample_linear(out, c.shape, f)


def _draw_artefacts(rng, acq: Acquisition, delta_scale: float) -> dict:
    L = acq.field_size_um[0]
    D = acq.field_size_um[2]
    art: dict = {}
    if rng.random() < 0.6:
        fams = []
        for _ in range(1 if rng.random() < 0.7 else 2):
            phi = rng.uniform(0, 2 * np.pi)
            zeta = rng.normal(0, 0.3)
            period = float(np.exp(rng.uniform(np.log(1.0), np.log(10.0))))
            curv = float(rng.uniform(0, 2.0) / (L / 2) ** 2) if rng.random() < 0.5 else 0.0
            direction = np.array([np.cos(phi) * np.cos(zeta), np.sin(phi) * np.cos(zeta), np.sin(zeta)])
            fams.append(dict(k=direction / period,
                             period_um=period, curv=curv, centre=rng.uniform(-0.3, 1.3, 2) * L,
                             amp=float(rng.uniform(0.1, 1.0) * delta_scale), phase=float(rng.uniform(0, 2 * np.pi)),
                             env_centre=rng.uniform(0, 1, 2) * L,
                             env_width=float(rng.uniform(0.3, 1.2) * L) if rng.random() < 0.7 else np.inf))
        art["fringes"] = fams
    span = float(rng.uniform(0.0, 0.002))
    ang = rng.uniform(0, 2 * np.pi)
    art["tilt"] = dict(offset=float(rng.uniform(-0.002, 0.002)) * float(rng.random() < 0.7),
                       gx=span * np.cos(ang) / L, gy=span * np.sin(ang) / L, gz=float(rng.uniform(-0.001, 0.001)) / D)
    if rng.random() < 0.35:
        art["rings"] = dict(centre=rng.uniform(-0.2, 1.2, 2) * L, period=float(rng.uniform(0.6, 4.0)),
                            amp=float(rng.uniform(0.0003, 0.0015)), decay=float(rng.uniform(0.3, 1.5) * L),
                            phase=float(rng.uniform(0, 2 * np.pi)))
    if rng.random() < 0.5:
        art["dust"] = [dict(centre=rng.uniform(0, 1, 2) * L, ring=float(rng.uniform(0.8, 3.0)),
                            size=float(rng.uniform(2.0, 8.0)),
                            amp=float(rng.uniform(0.0002, 0.0012) * rng.choice([-1, 1])),
                            zc=float(rng.uniform(0, D)), zw=float(rng.uniform(3.0, 20.0)))
                       for _ in range(int(rng.integers(1, 7)))]
    if rng.random() < 0.2:
        art["flicker"] = dict(slab=int(rng.integers(2, 9)), gain_sd=float(rng.uniform(0.01, 0.05)),
                              offset_sd=float(rng.uniform(0.0001, 0.0006)))
    return art


def _artefact_field(rng, grid: _Grid, art: dict, frame: int) -> np.ndarray:
    """Additive artefacts (RI units) for one frame; fringe phases and amplitudes wander between frames."""
    x = grid.x[:, None].astype(_F32)
    y = grid.y[None, :].astype(_F32)
    z = grid.z.astype(_F32)
    t = art["tilt"]
    jitter = 1.0 + 0.15 * frame * rng.normal()
    out = (np.full(grid.shape[:2], t["offset"], _F32) + (x - x.mean()) * _F32(t["gx"] * jitter)
           + (y - y.mean()) * _F32(t["gy"] * jitter))[:, :, None] + ((z - z.mean()) * _F32(t["gz"]))[None, None, :]
    for fam in art.get("fringes", []):
        k = fam["k"]
        ph = _F32(2 * np.pi) * (x * _F32(k[0]) + y * _F32(k[1]))
        ph = ph + _F32(fam["phase"] + frame * rng.uniform(0.5, 2.5))
        if fam["curv"]:
            cx, cy = _F32(fam["centre"][0]), _F32(fam["centre"][1])
            ph = ph + _F32(np.pi * fam["curv"]) * ((x - cx) ** 2 + (y - cy) ** 2)
        env = _F32(fam["amp"] * (1 + 0.3 * frame * rng.normal()))
        if np.isfinite(fam["env_width"]):
            ec = fam["env_centre"]
            env = env * np.exp(-((x - _F32(ec[0])) ** 2 + (y - _F32(ec[1])) ** 2) / _F32(2 * fam["env_width"] ** 2))
        env = np.broadcast_to(env, ph.shape)
        phz = _F32(2 * np.pi * k[2]) * z
        out = out + (env * np.cos(ph))[:, :, None] * np.cos(phz)[None, None, :]
        out -= (env * np.sin(ph))[:, :, None] * np.sin(phz)[None, None, :]
    if "rings" in art:
        r_ = art["rings"]
        rr = np.sqrt((x - _F32(r_["centre"][0])) ** 2 + (y - _F32(r_["centre"][1])) ** 2)
        ring = _F32(r_["amp"]) * np.cos(_F32(2 * np.pi / r_["period"]) * rr + _F32(r_["phase"] + 0.3 * frame)) \
            * np.exp(-rr / _F32(r_["decay"]))
        out = out + ring[:, :, None]
    for g in art.get("dust", []):
        c0 = g["centre"] + rng.normal(0, 0.2, 2) * frame
        rr = np.sqrt((x - _F32(c0[0])) ** 2 + (y - _F32(c0[1])) ** 2)
        # Airy-like rings of an out-of-focus particle under a Gaussian envelope
        pat = special.j0(_F32(2 * np.pi / g["ring"]) * rr).astype(_F32) * np.exp(-(rr / _F32(g["size"])) ** 2)
        pat *= _F32(g["amp"])
        pz = np.exp(-((z - _F32(g["zc"])) / _F32(g["zw"])) ** 2)
        out = out + pat[:, :, None] * pz[None, None, :]
    return out.astype(_F32, copy=False)


def _image(rng, grid: _Grid, contrast: np.ndarray, acq: Acquisition, opt: dict, art: dict, noise: dict,
           frame: int) -> np.ndarray:
    """Imaged RI (X, Y, Z) from the truth contrast: PSF, missing cone, clamp, flicker, artefacts, noise."""
    vox = grid.vox
    sig = [opt["psf_sigma_xy_um"] / vox[0], opt["psf_sigma_xy_um"] / vox[1], opt["psf_sigma_z_um"] / vox[2]]
    sig = [s if s >= 0.3 else 0.0 for s in sig]
    c = ndimage.gaussian_filter(contrast, sig, truncate=3.0, mode="nearest", output=_F32)
    c -= _F32(opt["cone_factor"]) * _hourglass_copy(c, vox, opt)
    if opt["clamp"]:
        np.maximum(c, _F32(-opt["clamp_floor"]), out=c)
    if "flicker" in art:
        fl = art["flicker"]
        nz = grid.shape[2]
        ns = -(-nz // fl["slab"])
        gain = np.repeat(1 + rng.normal(0, fl["gain_sd"], ns), fl["slab"])[:nz].astype(_F32)
        off = np.repeat(rng.normal(0, fl["offset_sd"], ns), fl["slab"])[:nz].astype(_F32)
        c = c * gain[None, None, :] + off[None, None, :]
    # noise: white + correlated scaled to the background s.d., plus a part growing with |contrast|
    shp = grid.shape
    white = rng.standard_normal(shp, dtype=_F32)
    corr = rng.standard_normal(shp, dtype=_F32)
    corr = ndimage.gaussian_filter(corr, (noise["corr_xy"], noise["corr_xy"], noise["corr_z"]), truncate=2.5,
                                   mode="wrap", output=_F32)
    corr *= _F32(1.0 / max(float(corr[::3, ::3, ::2].std()), 1e-9))
    bg = white
    bg *= _F32(np.sqrt(noise["white_frac"]))
    bg += corr * _F32(np.sqrt(1 - noise["white_frac"]))
    del corr
    bg *= _F32(acq.noise_std / max(float(bg[::3, ::3, ::2].std()), 1e-12))
    if noise["signal_gain"] > 0:
        # capped, so lipid droplets do not blow the RI range
        sd = np.sqrt(np.minimum(np.abs(c), _F32(0.03)) * _F32(1.0 / 0.02)) * _F32(noise["signal_gain"] * acq.noise_std)
        bg += sd * rng.standard_normal(shp, dtype=_F32)
    c += bg
    c += _artefact_field(rng, grid, art, frame)
    c += _F32(acq.medium_ri)
    return c


# ---------------------------------------------------------------------------------------------
# the style
# ---------------------------------------------------------------------------------------------
def _draw_look(rng) -> dict:
    """Per-field texture amplitudes (RI units per unit-s.d. texture) and the organelle-puncta threshold."""
    return dict(
        cyto_amp=float(rng.uniform(0.002, 0.007)),
        chrom_amp=float(rng.uniform(0.0015, 0.005)),
        hetero_amp=float(rng.uniform(0.0015, 0.005)),
        punct_amp=float(rng.uniform(0.004, 0.015)),
        punct_thr=float(rng.uniform(1.0, 1.8)),
    )


def _textures(rng, grid: _Grid, acq: Acquisition) -> tuple[dict, dict]:
    """Unit-s.d. texture fields on ``grid`` (a z-slab of the field): cytoplasm, chromatin, granular, heterogeneity."""
    L = acq.field_size_um[0]
    info = {}
    specs, w, info["cytoplasm"] = _texture_spec(rng, L, fine=False)
    cyto = _random_field(rng, grid.shape, grid.vox, specs, w)
    specs, w, info["chromatin"] = _texture_spec(rng, L, fine=True)
    chrom = _random_field(rng, grid.shape, grid.vox, specs, w)
    # granular / fibrous field: organelle puncta and nucleolar granularity
    kc = 1.0 / float(rng.uniform(0.25, 0.6))
    g = {"kind": "band", "kc": kc, "kw": kc * float(rng.uniform(0.2, 0.45))}
    if rng.random() < 0.4:
        d = rng.normal(size=3) * np.array([1, 1, 0.3])
        g["fibre"] = d / np.linalg.norm(d)
        g["aniso"] = float(rng.uniform(5, 40))
        info["organelles_fibrous"] = round(g["aniso"], 2)
    gran = _random_field(rng, grid.shape, grid.vox, [g], [1.0])
    # cell-scale heterogeneity (also inside nuclei): smooth, on a coarse grid
    f = (max(1, grid.shape[0] // 64), max(1, grid.shape[1] // 64), max(1, grid.shape[2] // 16))
    cshape = tuple(-(-n // k) for n, k in zip(grid.shape, f))
    hb = float(rng.uniform(2.5, 4.0))
    h = _random_field(rng, cshape, [v * k for v, k in zip(grid.vox, f)],
                      [{"kind": "power", "beta": hb, "k0": 1.0 / L, "kmax": 1.0 / float(rng.uniform(2.0, 5.0))}], [1.0])
    hetero = _upsample_linear(h, grid.shape, f)
    info["heterogeneity_beta"] = round(hb, 3)
    return dict(cyto=cyto, chrom=chrom, gran=gran, hetero=hetero), info


def _draw_motion(rng, cells, frames: int) -> list:
    """Per-cell motion over frames: drift, rotation, stretch, nucleus turn, harmonic wobble; maybe one division."""
    motions = []
    for c in cells:
        v = np.array([*rng.normal(0, 0.4, 2), rng.normal(0, 0.1) if c.floating else 0.0])
        motions.append(dict(v=v, w=float(rng.normal(0, 0.04)), s_amp=rng.uniform(0.0, 0.04, 3) * np.array([1, 1, 0.5]),
                            s_ph=rng.uniform(0, 2 * np.pi, 3), wn=float(rng.normal(0, 0.05)),
                            wob=float(rng.uniform(0.0, 0.4)), wob_ph=float(rng.uniform(0, 2 * np.pi))))
    divide = None
    cand = [i for i, c in enumerate(cells) if c.kind == "mitotic"]
    if cand and rng.random() < 0.6:
        divide = cand[0]
        m = cells[divide].mitosis
        p0, p1 = float(rng.uniform(0.0, 0.25)), float(rng.uniform(0.8, 1.0))
        m = dict(m, ring=False)
        motions[divide]["stages"] = [p0 + (p1 - p0) * t / max(frames - 1, 1) for t in range(frames)]
        motions[divide]["mitosis"] = m
    return motions


def _cells_at(cells, motions, t: int):
    out = []
    for c, mo in zip(cells, motions):
        if "stages" in mo:
            c = _mitotic_cell(mo["mitosis"], c.cyto, mo["stages"][t])
        stretch = 1 + mo["s_amp"] * np.sin(mo["s_ph"] + 0.7 * t) - mo["s_amp"] * np.sin(mo["s_ph"])
        wob = 1 + mo["wob"] * (np.sin(mo["wob_ph"] + 0.9 * t) - np.sin(mo["wob_ph"]))
        out.append(_move_cell(c, mo["v"] * t, mo["w"] * t, stretch, mo["wn"] * t, wob))
    return out


def render(seed: int, index: int, frames: int = 1) -> StyleField:
    """Field ``index`` of style ``spectral``: image float32 RI and uint8 label (X, Y, Z) or (X, Y, Z, T).

    ``nuclei`` holds uint16 instance ids (0 background; touching nuclei keep apart); a pure function of
    (seed, index, frames).
    """
    frames = int(frames)
    if frames < 1:
        raise ValueError(f"frames must be >= 1, got {frames!r}")
    rng = style_rng("spectral", seed, index)
    acq = draw_acquisition(rng)
    grid = _Grid(acq)
    layout = _draw_layout(rng, acq)
    cells = layout["cells"]
    look = _draw_look(rng)
    # textures only over the slab the cells can reach (floating cells bob a little between frames)
    vz = acq.voxel_size_um[2]
    zlo = min(c.body.bbox()[0][2] for c in cells) - 1.0
    zhi = max(c.body.bbox()[1][2] for c in cells) + 1.0 + (0.5 * (frames - 1) if frames > 1 else 0.0)
    for sh, _ in layout["debris"]:
        lo, hi = sh.bbox()
        zlo, zhi = min(zlo, lo[2]), max(zhi, hi[2])
    kt0 = int(np.clip(np.floor(zlo / vz), 0, acq.field_shape[2] - 2))
    kt1 = int(np.clip(np.ceil(zhi / vz) + 1, kt0 + 2, acq.field_shape[2]))
    kt1 += (kt1 - kt0) % 2  # even length for the real FFT
    if kt1 > acq.field_shape[2]:
        kt0, kt1 = kt0 - 1, kt1 - 1
    tex, tex_info = _textures(rng, _Grid(acq, kt0, kt1), acq)
    tex["k0"] = kt0
    opt = _draw_optics(rng, acq)
    deltas = [d for c in cells for d, ok in zip(c.deltas, [c.kind != "mitotic"] * len(c.deltas)) if ok]
    delta_scale = float(np.mean(np.abs(deltas))) if deltas else 0.006
    art = _draw_artefacts(rng, acq, max(delta_scale, 0.0005))
    noise = dict(white_frac=float(rng.uniform(0.1, 1.0)), corr_xy=float(rng.uniform(0.6, 2.0)),
                 corr_z=float(rng.uniform(0.5, 2.0)), signal_gain=float(rng.uniform(0.0, 1.5)))
    if frames > 1:
        motions = _draw_motion(style_rng("spectral/time", seed, index), cells, frames)
    # stable instance ids over frames: a dividing cell keeps a second id for its daughter
    id_base, nxt = [], 1
    for i, c in enumerate(cells):
        id_base.append(nxt)
        dividing = frames > 1 and "stages" in motions[i]
        nxt += max(len(c.nuclei), 2 if dividing else 1)
    images, labels, inst = [], [], []
    for t in range(frames):
        cells_t = cells if frames == 1 else _cells_at(cells, motions, t)
        tex_t = tex
        if t > 0:
            # the textures ride along with the mean drift of the cells
            mean_v = np.mean([mo["v"] for mo in motions], axis=0) * t
            sh = (int(round(mean_v[0] / grid.vox[0])), int(round(mean_v[1] / grid.vox[1])))
            tex_t = {k: (np.roll(v, sh, axis=(0, 1)) if k not in ("hetero", "k0") else v) for k, v in tex.items()}
        contrast, label, nuclei = _compose(acq, cells_t, layout["debris"], tex_t, look, id_base)
        images.append(_image(rng, grid, contrast, acq, opt, art, noise, t))
        del contrast
        labels.append(label.astype(np.uint8))
        inst.append(nuclei)
    if frames == 1:
        image, label, nuclei = images[0], labels[0], inst[0]
    else:
        image, label, nuclei = np.stack(images, -1), np.stack(labels, -1), np.stack(inst, -1)
    params = dict(
        n_cells=len(cells), kinds=[c.kind for c in cells], clusters=layout["clusters"],
        cytoplasm_ri=[round(c.cyto + acq.medium_ri, 4) for c in cells],
        nucleus_delta=[[round(d, 4) for d in c.deltas] for c in cells],
        delta_centre=round(layout["delta_centre"], 4), substrate_z_um=round(layout["z_s"], 3),
        size_scale=round(layout["size_scale"], 3), n_debris=len(layout["debris"]),
        textures=tex_info, look={k: round(v, 5) for k, v in look.items()},
        optics={k: (round(v, 4) if isinstance(v, float) else v) for k, v in opt.items()},
        noise={k: round(v, 4) for k, v in noise.items()},
        artefacts=sorted(art), fine_z_factor=grid.ns,
    )
    if frames > 1:
        params["dividing_cell"] = next((i for i, mo in enumerate(motions) if "stages" in mo), None)
    return StyleField(image=image.astype(_F32, copy=False), label=label, acquisition=acq, style="spectral",
                      nuclei=nuclei, params=params)
