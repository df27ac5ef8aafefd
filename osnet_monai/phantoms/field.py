"""A field of view: several cells placed, moved over time, composited and imaged through the ODT model."""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field

import numpy as np

from .cells import NUCLEUS_DELTA_MAX, BodyCell, draw_cell, render_cell
from .optics import OdtOptics, fringe_pattern, simulate_odt
from .presets import Preset, get_preset, randomise_preset

__all__ = ["FieldResult", "render_field", "field_rng", "z_factor_for"]

#: finest z-step (um) at which ground truth is rendered before the band-limited imaging
MAX_RENDER_DZ_UM = 0.2


@dataclass
class FieldResult:
    """One synthetic tomogram (3-D, or 4-D when ``frames > 1``) with its label and ground truth.

    ``image`` is float32 RI (X, Y, Z[, T]) regardless of the preset's storage dtype; ``label`` is uint8.
    ``ri_true``/``compartments`` (only with ``return_truth=True``) are the ground truth before imaging,
    resampled to the output grid (RI: mean over the fine sub-sections; compartments: middle sub-section).
    """

    image: np.ndarray
    label: np.ndarray
    preset: Preset
    nominal: str
    frames: int
    cells: list = field(default_factory=list)
    ri_true: np.ndarray | None = None
    compartments: np.ndarray | None = None
    fringe_amplitudes: list = field(default_factory=list)


def field_rng(seed: int, index: int, name: str) -> np.random.Generator:
    """The generator of field ``index`` of a data set with ``seed`` (independent of worker order)."""
    return np.random.default_rng(np.random.SeedSequence([int(seed), int(index), zlib.crc32(name.encode())]))


def z_factor_for(voxel_z_um: float) -> int:
    return max(1, int(np.ceil(voxel_z_um / MAX_RENDER_DZ_UM - 1e-6)))


@dataclass
class _Motion:
    centre: np.ndarray  # (2,) um, field coordinates at t = 0
    velocity: np.ndarray  # (2,) um / frame
    angle: float
    omega: float  # rad / frame
    stretch: np.ndarray  # (2,) relative stretch per frame
    nuc_centre: np.ndarray  # (2,) body coords of the nucleus
    nuc_rot: float  # rad / frame of the nucleus relative to the cell
    nuc_radius: float
    bumps: list  # (centre(2), sigma, amplitude(2), omega, phase)

    def body_coords(self, x: np.ndarray, y: np.ndarray, t: int) -> tuple[np.ndarray, np.ndarray]:
        """Inverse map: field position (um) at frame t -> body-frame position (um)."""
        cx, cy = self.centre + self.velocity * t
        th = self.angle + self.omega * t
        px, py = x - cx, y - cy
        u = np.cos(th) * px + np.sin(th) * py
        v = -np.sin(th) * px + np.cos(th) * py
        if t == 0:
            return u, v
        sx, sy = 1.0 + self.stretch * t
        u, v = u / sx, v / sy
        # the nucleus turns inside the cell (smoothly fading out over ~ its radius)
        du, dv = u - self.nuc_centre[0], v - self.nuc_centre[1]
        w = np.exp(-(du**2 + dv**2) / (2 * (self.nuc_radius + 1.5) ** 2))
        a = -self.nuc_rot * t * w
        u2 = self.nuc_centre[0] + np.cos(a) * du - np.sin(a) * dv
        v2 = self.nuc_centre[1] + np.sin(a) * du + np.cos(a) * dv
        # local smooth deformations (blebs, nuclear indentation, lamellipodia extension)
        for c, sigma, amp, om, ph in self.bumps:
            g = np.exp(-((u - c[0]) ** 2 + (v - c[1]) ** 2) / (2 * sigma**2))
            s = np.sin(om * t + ph) - np.sin(ph)
            u2 = u2 - amp[0] * s * g
            v2 = v2 - amp[1] * s * g
        return u2, v2


def _draw_motion(rng, centre, body: BodyCell, frames: int) -> _Motion:
    p = body.params
    nuc_c = np.asarray(p.nucleus_offset_um if not p.mitotic else (0.0, 0.0), float)
    a = p.a_um
    bumps = []
    for _ in range(int(rng.integers(2, 5))):
        c = nuc_c + rng.normal(0, 0.6 * a, 2)
        bumps.append((c, rng.uniform(1.5, 3.5), rng.normal(0, 0.9, 2), rng.uniform(0.2, 0.6), rng.uniform(0, 2 * np.pi)))
    return _Motion(
        centre=np.asarray(centre, float),
        velocity=rng.normal(0, 0.6, 2) if frames > 1 else np.zeros(2),
        angle=rng.uniform(0, 2 * np.pi),
        omega=rng.normal(0, 0.05),
        stretch=rng.normal(0, 0.015, 2),
        nuc_centre=nuc_c,
        nuc_rot=rng.normal(0, 0.06),
        nuc_radius=a,
        bumps=bumps,
    )


def _bilinear_setup(u, v, body: BodyCell):
    vx, vy, _ = body.spacing
    nx, ny = body.priority.shape
    fi = u / vx + nx // 2
    fj = v / vy + ny // 2
    ok = (fi >= 0) & (fi <= nx - 1.001) & (fj >= 0) & (fj <= ny - 1.001)
    i0 = np.floor(fi[ok]).astype(np.int64)
    j0 = np.floor(fj[ok]).astype(np.int64)
    wi = (fi[ok] - i0).astype(np.float32)
    wj = (fj[ok] - j0).astype(np.float32)
    return ok, i0, j0, wi, wj


def _gather(arr, i0, j0, wi, wj):
    if arr.ndim == 3:
        wi, wj = wi[:, None], wj[:, None]
    return (arr[i0, j0] * (1 - wi) * (1 - wj) + arr[i0 + 1, j0] * wi * (1 - wj)
            + arr[i0, j0 + 1] * (1 - wi) * wj + arr[i0 + 1, j0 + 1] * wi * wj)


def _place_cells(rng, preset: Preset, nucleus_delta_mean: float, n_z_fine: int, dz: float):
    X, Y, _ = preset.field_shape
    vx, vy, _ = preset.voxel_size_um
    sx, sy = X * vx, Y * vy
    area = sx * sy
    n_cells = int(np.clip(rng.poisson(preset.cell_density * area / 1000.0), 1, 9))
    # cells are drawn somewhat smaller in small fields so that a field still holds a whole nucleus
    scale = float(np.clip(min(sx, sy) / 40.0, 0.6, 1.0))
    placed = []  # (centre, body, nucleus radius)
    for n in range(n_cells * 6):
        if len(placed) >= n_cells:
            break
        mitotic = bool(rng.random() < 0.06) and not any(b.params.mitotic for _, b, _ in placed)
        params = draw_cell(rng, mitotic=mitotic, nucleus_delta_mean=nucleus_delta_mean, scale=scale)
        if not placed:  # the first cell's nucleus lies well inside the field
            centre = np.array([sx, sy]) * rng.uniform(0.35, 0.65, 2) - np.asarray(params.nucleus_offset_um)
        else:  # the others may be cut by the field edge
            centre = np.array([sx, sy]) * rng.uniform(-0.1, 1.1, 2)
        nr = max(params.a_um, params.b_um) + 1.0
        nuc = centre + np.asarray(params.nucleus_offset_um)
        if any(np.hypot(*(nuc - c2 - np.asarray(b2.params.nucleus_offset_um))) < nr + r2 for c2, b2, r2 in placed):
            continue
        body = render_cell(params, (vx, vy, dz), n_z_fine, preset.substrate_z_um, preset.medium_ri)
        placed.append((centre, body, nr))
    return placed


def render_field(
    preset: str | Preset = "ht2h",
    seed: int = 0,
    frames: int = 1,
    *,
    index: int = 0,
    randomise: bool = True,
    nucleus_delta_mean: float | None = None,
    fringes: bool | None = None,
    noise: bool = True,
    return_truth: bool = False,
) -> FieldResult:
    """Render one synthetic ODT field of view (3-D, or a time series of ``frames`` volumes).

    Args:
        preset: preset name or :class:`Preset`.
        seed, index: the field is a pure function of (seed, index, preset name).
        frames: number of time points; the same cells move, rotate and deform between them.
        randomise: per-field domain randomisation around the preset (see ``randomise_preset``).
        nucleus_delta_mean: override the field's mean nucleus-minus-cytoplasm RI difference
            (drawn from N(-0.004, 0.004), capped at ``NUCLEUS_DELTA_MAX``, by default).
        fringes: add interference fringes to the later frames (default: for 70 % of time series).
        noise: add the preset's noise.
        return_truth: also return the ground-truth RI and compartment map.
    """
    if int(frames) < 1:
        raise ValueError(f"frames must be >= 1, got {frames!r}")
    nominal = get_preset(preset)
    rng = field_rng(seed, index, nominal.name)
    real = randomise_preset(nominal, rng) if randomise else nominal
    if nucleus_delta_mean is None:
        nucleus_delta_mean = min(float(rng.normal(-0.004, 0.004)), NUCLEUS_DELTA_MAX) if randomise else -0.004
    X, Y, Z = real.field_shape
    vx, vy, vz = real.voxel_size_um
    m = z_factor_for(vz)
    dz = vz / m
    Zf = Z * m
    placed = _place_cells(rng, real, nucleus_delta_mean, Zf, dz)
    motions = [_draw_motion(rng, c, b, frames) for c, b, _ in placed]
    optics = OdtOptics.from_preset(real)
    fringe_draw, fringe_max = rng.random(), rng.uniform(0.002, 0.005)
    fringe_rng = np.random.default_rng(rng.integers(0, 2**63 - 1))
    if fringes is None:
        fringes = frames > 1 and fringe_draw < 0.7
    fringe_max = fringe_max if fringes else 0.0

    xs = ((np.arange(X) + 0.5) * vx).astype(np.float32)[:, None] * np.ones((1, Y), np.float32)
    ys = ((np.arange(Y) + 0.5) * vy).astype(np.float32)[None, :] * np.ones((X, 1), np.float32)
    images, labels, truths, comps, famps = [], [], [], [], []
    for t in range(frames):
        contrast = np.zeros((X, Y, Zf), np.float32)
        nuc = np.zeros((X, Y, Zf), np.float32)
        comp = np.zeros((X, Y, Zf), np.uint8) if return_truth else None
        best = np.full((X, Y), 0.0, np.float32)
        for (_, body, _), motion in zip(placed, motions):
            u, v = motion.body_coords(xs, ys, t)
            ok, i0, j0, wi, wj = _bilinear_setup(u, v, body)
            if not ok.any():
                continue
            prio = _gather(body.priority, i0, j0, wi, wj)
            win = prio > best[ok]
            if not win.any():
                continue
            i0, j0, wi, wj = i0[win], j0[win], wi[win], wj[win]
            px, py = np.nonzero(ok)
            px, py = px[win], py[win]
            best[px, py] = prio[win]
            k0, k1 = body.z0, body.z0 + body.ri.shape[2]
            occ = _gather(body.occupancy, i0, j0, wi, wj)
            ri = _gather(body.ri * body.occupancy, i0, j0, wi, wj)
            contrast[px, py, :] = 0.0
            contrast[px, py, k0:k1] = ri - real.medium_ri * occ
            nuc[px, py, :] = 0.0
            nuc[px, py, k0:k1] = _gather(body.nucleus, i0, j0, wi, wj)
            if comp is not None:
                ii = np.clip(np.round(i0 + wi).astype(np.int64), 0, body.ri.shape[0] - 1)
                jj = np.clip(np.round(j0 + wj).astype(np.int64), 0, body.ri.shape[1] - 1)
                comp[px, py, :] = 0
                comp[px, py, k0:k1] = body.compartments[ii, jj]
        amp = fringe_max * max(0.0, (t / max(frames - 1, 1) - 0.35) / 0.65) ** 1.2 if frames > 1 else 0.0
        famps.append(float(amp))
        extra = fringe_pattern((X, Y, Z), real.voxel_size_um, fringe_rng, amp) if amp > 0 else None
        out = simulate_odt(
            contrast, real.voxel_size_um, optics, rng=rng,
            noise_std=real.noise_std if noise else 0.0,
            nonneg_iterations=real.nonneg_iterations if real.nonneg_fill else 0,
            z_factor=m, extra=extra,
            cone_recovery=real.cone_recovery,
            recovery_decay=real.recovery_decay_per_um,
        )
        images.append(out + np.float32(real.medium_ri))
        lab = nuc.reshape(X, Y, Z, m).mean(axis=3) > 0.5 if m > 1 else nuc > 0.5
        labels.append(lab.astype(np.uint8))
        if return_truth:
            truths.append((contrast.reshape(X, Y, Z, m).mean(axis=3) + np.float32(real.medium_ri)).astype(np.float32))
            comps.append(comp[:, :, m // 2 :: m].copy())
    stack = (lambda a: a[0]) if frames == 1 else (lambda a: np.stack(a, axis=-1))
    return FieldResult(
        image=stack(images).astype(np.float32),
        label=stack(labels),
        preset=real,
        nominal=nominal.name,
        frames=int(frames),
        cells=[b.params for _, b, _ in placed],
        ri_true=stack(truths) if return_truth else None,
        compartments=stack(comps) if return_truth else None,
        fringe_amplitudes=famps,
    )
