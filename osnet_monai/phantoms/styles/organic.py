"""Rendering style ``organic``: grown tissue, procedural textures, an hourglass blur and a TV-regularised look.

Cells are grown, not drawn: a weighted, anisotropic Voronoi partition of the field (seeds laid out as a
confluent patch, small clusters or isolated cells) gives footprints that share their boundaries;
fractal noise roughens the free edges and a random erosion/dilation opens or closes gaps. Heights come
from distance transforms of the footprints (thin lamellae, dome-shaped bodies, spheres for rounded and
mitotic cells); the nucleus is the level set of a smoothed random field around an ellipse, kidney or
lobed core near the body's thickest part. Everything is built as 2-D column maps (bottom/top of cell and
nucleus) and extruded once; small objects (nucleoli, lipid droplets, vacuoles, chromosomes, debris) are
stamped in their bounding boxes. Textures are sparse/procedural primitives (Worley cells, sparse Gabor
noise, filament networks, puncta) on a coarse grid. Optics: a separable Butterworth lateral low-pass, a
real-space double-cone ("hourglass") kernel for the axial elongation, a few Chambolle total-variation iterations,
thickness-dependent contrast loss; then mixed noise and per-field artefacts.

Arrays are (X, Y, Z) voxels; lengths are micrometres unless a name ends in ``_px``.
"""

from __future__ import annotations

import numpy as np
from scipy import fft as sfft
from scipy import ndimage as ndi
from skimage.draw import line_aa
from skimage.morphology import skeletonize

from .base import NUCLEUS_DELTA_RANGE, Acquisition, StyleField, draw_acquisition, style_rng

__all__ = ["DESCRIPTION", "render"]

DESCRIPTION = (
    "grown tissue: Voronoi/watershed-partitioned cells with fractal outlines, Worley/Gabor/filament textures, "
    "hourglass-kernel blur + Butterworth low-pass + TV-regularised staircase look, fringes/rings/dust ghosts"
)

_NAME = "organic"
_PAD_UM = 6.0  # footprints are grown on a grid this much wider than the field, so edge cells are cut, not shrunk
_NOISE_SPACING_UM = 0.5  # pixel of the shared 2-D boundary-noise field
_MAX_COARSE_VOXELS = 800_000  # cap on the texture grid (speed)


# ----------------------------------------------------------------------------------------------- small helpers


def _smoothstep(x):
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def _rot(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s], [s, c]])


def _value_noise2d(rng, n: int, cells: int, octaves: int = 5, persistence: float = 0.55) -> np.ndarray:
    """Periodic fractal value noise (n, n), unit s.d.: octaves of cubic-upsampled random lattices."""
    out = np.zeros((n, n), np.float64)
    amp = 1.0
    for o in range(octaves):
        c = int(min(cells * 2**o, n))
        lattice = rng.standard_normal((c, c))
        out += amp * ndi.zoom(lattice, n / c, order=3, mode="grid-wrap", grid_mode=True)[:n, :n]
        amp *= persistence
    out -= out.mean()
    return (out / (out.std() + 1e-12)).astype(np.float32)


def _sample(field2d: np.ndarray, u_um, v_um, zoom: float, offset) -> np.ndarray:
    """Bilinear, periodic sample of a 2-D noise field at local coordinates (um) scaled by ``zoom``."""
    coords = np.stack([u_um * (zoom / _NOISE_SPACING_UM) + offset[0], v_um * (zoom / _NOISE_SPACING_UM) + offset[1]])
    return ndi.map_coordinates(field2d, coords, order=1, mode="grid-wrap").astype(np.float32)


def _edt(mask: np.ndarray, vxy: float) -> np.ndarray:
    return (ndi.distance_transform_edt(mask) * vxy).astype(np.float32)


def _upsample(a: np.ndarray, factors: tuple[int, int, int], shape: tuple[int, int, int]) -> np.ndarray:
    """Separable linear upsampling of a coarse grid (block k covers fine voxels k*f .. k*f+f-1) to ``shape``."""
    for axis, (f, n) in enumerate(zip(factors, shape)):
        if f == 1 and a.shape[axis] == n:
            continue
        pos = (np.arange(n, dtype=np.float32) + 0.5) / f - 0.5
        pos = np.clip(pos, 0, a.shape[axis] - 1)
        i0 = np.floor(pos).astype(np.int64)
        i1 = np.minimum(i0 + 1, a.shape[axis] - 1)
        w = (pos - i0).astype(np.float32)
        shp = [1, 1, 1]
        shp[axis] = n
        w = w.reshape(shp)
        lo = np.take(a, i0, axis=axis)
        a = lo + (np.take(a, i1, axis=axis) - lo) * w
    return a


def _unit(a: np.ndarray) -> np.ndarray:
    a = a - a.mean()
    return (a / (a.std() + 1e-12)).astype(np.float32)


class _Grid:
    """Field geometry: lateral voxel ``vxy``, axial ``vz``; the extended 2-D grid adds ``pad`` pixels per side."""

    def __init__(self, acq: Acquisition):
        self.n = acq.field_shape[0]
        self.nz = acq.field_shape[2]
        self.vxy = float(acq.voxel_size_um[0])
        self.vz = float(acq.voxel_size_um[2])
        self.pad = int(round(_PAD_UM / self.vxy))
        self.ne = self.n + 2 * self.pad
        self.size = self.n * self.vxy
        self.depth = self.nz * self.vz
        self.xe = ((np.arange(self.ne) - self.pad + 0.5) * self.vxy).astype(np.float32)  # extended pixel centres
        self.z = ((np.arange(self.nz) + 0.5) * self.vz).astype(np.float32)
        # texture grid: ~0.24 um laterally, ~0.3 um axially, coarsened evenly while it is too large (speed)
        self.f = max(1, int(round(0.24 / self.vxy)))
        self.fz = max(1, int(round(0.3 / self.vz)))
        while (-(-self.n // self.f)) ** 2 * (-(-self.nz // self.fz)) > _MAX_COARSE_VOXELS:
            if self.f * self.vxy / 0.24 <= self.fz * self.vz / 0.3:
                self.f += 1
            else:
                self.fz += 1
        self.nc, self.zc = -(-self.n // self.f), -(-self.nz // self.fz)
        self.cidx = np.minimum(np.arange(self.nc) * self.f + self.f // 2, self.n - 1)  # fine pixel of each coarse one
        self.zcoarse = ((np.arange(self.zc) * self.fz + self.fz / 2) * self.vz).astype(np.float32)

    def to_px(self, x_um):
        """Extended-grid pixel index of a world coordinate (um)."""
        return np.floor(np.asarray(x_um) / self.vxy + self.pad).astype(np.int64)


# ----------------------------------------------------------------------------------------------- the cell model


class _Cell:
    """One cell's drawn parameters; positions are local to the cell frame (um), motion per frame."""

    def __init__(self, **kw):
        self.__dict__.update(kw)

    def to_world(self, t: int, local) -> np.ndarray:
        return self.traj[t] + _rot(self.rot[t]) @ np.asarray(local, float)

    def nucleus_pose(self, t: int) -> tuple[np.ndarray, float]:
        return self.to_world(t, self.n_local), float(self.rot[t] + self.n_angle + self.n_spin * t)


def _dart_points(rng, n_target: int, lo, hi, min_d: float, first=None, tries: int = 4000) -> list[np.ndarray]:
    """Points in the box [lo, hi]^2 at least ``min_d`` apart (dart throwing)."""
    pts = [np.asarray(first, float)] if first is not None else []
    for _ in range(tries):
        if len(pts) >= n_target:
            break
        p = rng.uniform(lo, hi, 2)
        if all(np.hypot(*(p - q)) >= min_d for q in pts):
            pts.append(p)
    return pts


def _draw_layout(rng, g: _Grid, frames: int, time_step_s: float) -> tuple[str, list[_Cell], list[tuple[int, int]]]:
    """Seeds and per-cell parameters of one field; returns (layout, cells, touching pairs)."""
    L = g.size
    scale = float(np.clip(L / 45.0, 0.75, 1.1))  # small fields draw smaller cells
    layout = str(rng.choice(["confluent", "clusters", "isolated"], p=[0.34, 0.36, 0.30]))
    centre = np.array([L / 2, L / 2]) + rng.normal(0, 0.1 * L, 2)
    groups: list[int] = []  # cluster membership (shared drift)
    if layout == "confluent":
        sp = rng.uniform(9.0, 15.0) * scale
        lo, hi = -_PAD_UM - 0.3 * sp, L + _PAD_UM + 0.3 * sp
        n_target = int((hi - lo) ** 2 / sp**2 * 1.15)
        pts = _dart_points(rng, n_target, lo, hi, 0.72 * sp, first=centre)
        if rng.random() < 0.45:  # a patch with free edges rather than a full lawn
            pc = centre + rng.normal(0, 0.1 * L, 2)
            rx, ry = rng.uniform(0.35, 0.7, 2) * L
            pts = [p for i, p in enumerate(pts) if i == 0 or ((p - pc) ** 2 / np.array([rx, ry]) ** 2).sum() < 1]
        reach = [sp * rng.uniform(1.1, 1.5) for _ in pts]
        groups = [0] * len(pts)
    elif layout == "clusters":
        sp = rng.uniform(10.0, 16.0) * scale
        pts, reach = [], []
        for k in range(int(rng.integers(1, 3))):
            n = int(rng.integers(2, 6))
            cc = centre if k == 0 else rng.uniform(0.1 * L, 0.9 * L, 2)
            rc = sp * np.sqrt(n) / 1.7
            new = _dart_points(rng, n, cc - rc, cc + rc, 0.8 * sp, first=cc)
            new = [p for p in new if all(np.hypot(*(p - q)) >= 0.8 * sp for q in pts)]
            pts += new
            reach += [sp * rng.uniform(0.8, 1.05) for _ in new]
            groups += [k] * len(new)
    else:
        R = rng.uniform(7.0, 12.0) * scale
        n = int(rng.integers(1, 5))
        pts = _dart_points(rng, n, -0.1 * L, 1.1 * L, 2.3 * R, first=centre)
        reach = [R * rng.uniform(0.8, 1.2) for _ in pts]
        groups = list(range(len(pts)))

    # touching nuclei: neighbouring seeds of a cluster (or of a confluent patch) whose nuclei meet at the boundary
    pairs: list[tuple[int, int]] = []
    if layout in ("clusters", "confluent") and len(pts) > 1:
        n_pairs = int(rng.integers(1, 3)) if layout == "clusters" and rng.random() < 0.8 else int(rng.random() < 0.35)
        used: set[int] = set()
        order = sorted(range(len(pts)), key=lambda i: np.hypot(*(pts[i] - centre)))
        for i in order:
            if len(pairs) >= n_pairs:
                break
            if i in used:
                continue
            cand = [j for j in order if j != i and j not in used and groups[j] == groups[i]]
            if not cand:
                continue
            j = min(cand, key=lambda j: np.hypot(*(pts[j] - pts[i])))
            if np.hypot(*(pts[j] - pts[i])) < 1.3 * max(reach[i], reach[j]) * 1.6:
                pairs.append((i, j))
                used |= {i, j}
    touch = {i for p in pairs for i in p}
    partner = {i: j for a, b in pairs for i, j in ((a, b), (b, a))}

    # motion: a persistent random walk per group plus a little per cell
    step = rng.uniform(0.25, 0.9) * np.sqrt(time_step_s / 300.0)
    group_v = {k: rng.normal(0, step, 2) for k in set(groups)}

    depth_free = g.depth
    z_sub = rng.uniform(0.6, 2.2)
    delta_lo, delta_hi = NUCLEUS_DELTA_RANGE
    field_frac = rng.beta(2.2, 2.9)  # field centre of the nucleus-cytoplasm difference (most below 0)
    fam = rng.dirichlet([0.8] * 4)  # texture families: worley, gabor, puncta, filaments
    mitotic_left = 1 if rng.random() < 0.5 else 0

    cells: list[_Cell] = []
    for i, (p, R) in enumerate(zip(pts, reach)):
        if i == 0 or i in touch:
            kind = "elongated" if rng.random() < 0.2 else "spread"
        else:
            kind = str(rng.choice(["spread", "elongated", "rounded", "mitotic"], p=[0.58, 0.23, 0.12, 0.07]))
            if kind == "mitotic":
                if mitotic_left:
                    mitotic_left -= 1
                else:
                    kind = "rounded"
        rounded = kind in ("rounded", "mitotic")
        if kind == "elongated":
            asp = rng.uniform(2.0, 3.5)
        else:
            asp = rng.uniform(1.0, 1.15) if rounded else rng.uniform(1.0, 1.6)
        if rounded:
            R = min(R, rng.uniform(4.0, 7.0) * scale)
        if kind == "elongated":
            R *= 1.15
        # vertical budget: everything below depth - 0.6 um
        top_room = depth_free - z_sub - 0.6
        confl = layout == "confluent"
        h_body = rng.uniform(3.0, 6.0) if confl else rng.uniform(2.0, 4.5)
        Ht = rng.uniform(1.3, 2.8)
        Hb = Ht * rng.uniform(0.55, 1.0)
        gap_n = rng.uniform(0.25, 0.8)
        dome = rng.uniform(0.3, 1.0)
        need = gap_n + Hb + Ht + dome
        if need > top_room:
            k = top_room / need
            Ht, Hb, gap_n, dome = Ht * k, Hb * k, gap_n * k, dome * k
        h_body = min(h_body, top_room)
        suspended = rounded and rng.random() < 0.5
        gap = rng.uniform(0.2, 2.0) if suspended else 0.0
        fb = 1.0 if suspended else rng.uniform(0.45, 0.85)
        Rz = R * rng.uniform(0.85, 1.05)
        Rz = min(Rz, (top_room - gap) / (1 + fb))
        shape = str(rng.choice(["ellipse", "kidney", "lobed"], p=[0.5, 0.3, 0.2]))
        a_n = rng.uniform(3.2, 6.0) * scale
        lobes = []
        if shape == "lobed":  # lobe centres by a random walk
            pos, ang = np.zeros(2), rng.uniform(0, 2 * np.pi)
            for _ in range(int(rng.integers(2, 5))):
                ra = a_n * rng.uniform(0.45, 0.65)
                lobes.append((pos.copy(), ra, ra * rng.uniform(0.7, 1.0), rng.uniform(0, np.pi)))
                ang += rng.normal(0, 0.9)
                pos = pos + ra * rng.uniform(0.9, 1.3) * np.array([np.cos(ang), np.sin(ang)])
            mean = np.mean([lb[0] for lb in lobes], axis=0)
            lobes = [(c - mean, ra, rb, th) for c, ra, rb, th in lobes]
        frac = float(np.clip(field_frac + rng.normal(0, 0.17), 0.0, 1.0))
        w = fam * rng.uniform(0.5, 1.5, 4)
        w /= w.sum()
        a_tex = rng.uniform(0.002, 0.0075)
        v = group_v[groups[i]] + rng.normal(0, 0.3 * step, 2)
        traj = [np.asarray(p, float)]
        for _ in range(1, frames):
            v = 0.7 * v + 0.3 * rng.normal(0, step, 2) + 0.3 * group_v[groups[i]]
            traj.append(traj[-1] + v)
        rot0 = rng.uniform(0, 2 * np.pi)
        rot_rate = rng.normal(0, 0.03)
        mitosis = None
        if kind == "mitotic":
            n_clumps = int(rng.integers(25, 50))
            if rng.random() < 0.7:  # metaphase plate: clumps in a thin disc of random orientation
                normal = rng.normal(size=3)
                normal /= np.linalg.norm(normal)
                e1 = np.cross(normal, [0.0, 0.0, 1.0] if abs(normal[2]) < 0.9 else [1.0, 0.0, 0.0])
                e1 /= np.linalg.norm(e1)
                e2 = np.cross(normal, e1)
                rp = rng.uniform(2.0, 3.3) * scale
                rr_ = rp * np.sqrt(rng.random(n_clumps))
                th_ = rng.uniform(0, 2 * np.pi, n_clumps)
                offs = (rr_ * np.cos(th_))[:, None] * e1 + (rr_ * np.sin(th_))[:, None] * e2
                offs += rng.normal(0, rng.uniform(0.15, 0.4), (n_clumps, 1)) * normal
            else:  # prometaphase: scattered condensed clumps
                offs = rng.normal(0, rng.uniform(1.0, 2.0) * scale, (n_clumps, 3)) * np.array([1, 1, 0.7])
            mitosis = {"offs": offs, "radii": rng.uniform(0.3, 0.6, (n_clumps, 3)),
                       "dri": rng.uniform(0.008, 0.02)}
        cells.append(_Cell(
            idx=i + 1, kind=kind, prio=1.0 if rounded else 0.0, group=groups[i], touch=i in touch,
            partner=partner.get(i, -1), layout=layout,
            traj=np.array(traj), rot=rot0 + rot_rate * np.arange(frames),
            R=float(R), asp=float(asp), edge_amp=float(rng.uniform(0.02, 0.05) if rounded else rng.uniform(0.06, 0.22)),
            edge_zoom=float(rng.uniform(0.6, 1.4)), off1=rng.uniform(0, 1000, 2), off2=rng.uniform(0, 1000, 2),
            off3=rng.uniform(0, 1000, 2),
            rough_amp=float(rng.uniform(0.03, 0.12) if rounded else rng.uniform(0.1, 0.6)),
            rough_zoom=float(rng.uniform(2.0, 5.0)),
            erosion=0.0 if i in touch else float(rng.uniform(-0.2, 0.35) if confl else rng.uniform(-0.3, 0.6)),
            junction=float(rng.uniform(0.8, 3.0)),
            cyto=float(rng.uniform(1.366, 1.376) if kind == "mitotic" else rng.uniform(1.352, 1.376)),
            lam_drop=float(rng.uniform(0.0, 0.008)), n_area=float(rng.uniform(0.25, 0.5)),
            het=float(rng.uniform(0.001, 0.006)), het_zoom=float(rng.uniform(0.25, 0.7)), off4=rng.uniform(0, 1000, 2),
            h_lam=float(rng.uniform(1.2, 3.0) if confl else rng.uniform(0.25, 0.8)), h_body=float(h_body),
            d_rise=float(rng.uniform(1.5, 5.0)),
            w_dome=float(rng.uniform(0.0, 0.5) if confl else rng.uniform(0.3, 1.0)),
            z_sub=float(z_sub), lift=float(rng.uniform(0.0, 0.12)),
            gap=float(gap), fb=float(fb), Rz=float(max(Rz, 1.5)),
            shape=shape, a_n=float(a_n), b_ratio=float(rng.uniform(0.62, 0.95)), lobes=lobes,
            kappa=float(rng.uniform(0.15, 0.45)), n_noise=float(rng.uniform(0.04, 0.16)),
            n_zoom=float(rng.uniform(1.0, 2.5)),
            Ht=float(Ht), Hb=float(Hb), gap_n=float(gap_n), dome=float(dome), rr_k=float(rng.uniform(0.45, 1.0)),
            w_out=float(rng.uniform(1.5, 3.5)), margin=float(rng.uniform(0.4, 1.2)),
            n_frac=float(rng.uniform(0.5, 0.72)),
            delta=float(delta_lo + frac * (delta_hi - delta_lo)),
            chrom=float(rng.uniform(0.0015, 0.006)),
            rim=float(rng.uniform(0.001, 0.006) if rng.random() < 0.7 else 0.0), rim_w=float(rng.uniform(0.25, 0.6)),
            er=float(rng.uniform(0.003, 0.012) if rng.random() < 0.75 else 0.0), er_w=float(rng.uniform(0.6, 2.5)),
            n_spin=float(rng.normal(0, 0.07)), n_angle=float(rng.uniform(0, np.pi)),
            tex=a_tex * np.sqrt(w), mitosis=mitosis,
            n_nucleoli=int(rng.choice([0, 1, 2, 3, 4], p=[0.05, 0.3, 0.3, 0.2, 0.15])),
            n_lipids=int(rng.poisson(rng.uniform(0, 9))), n_vacuoles=int(rng.poisson(rng.uniform(0, 4))),
            seed=int(rng.integers(2**31)),
        ))
    return layout, cells, pairs


def _nucleus_phi(c: _Cell, u, v, F) -> np.ndarray:
    """Level-set function (> 0 inside) of the nucleus at nucleus-local coordinates (um)."""
    a, b = c.a_n, c.a_n * c.b_ratio
    if c.shape == "lobed":
        phi = np.full(u.shape, -np.inf, np.float32)
        for cen, ra, rb, th in c.lobes:
            ct, st = np.cos(th), np.sin(th)
            du, dv = u - cen[0], v - cen[1]
            uu, vv = ct * du + st * dv, -st * du + ct * dv
            phi = np.maximum(phi, 1 - np.sqrt((uu / ra) ** 2 + (vv / rb) ** 2))
    elif c.shape == "kidney":  # bent ellipse with a dent on the concave side
        vb = v + c.kappa * u**2 / a
        phi = 1 - np.sqrt((u / a) ** 2 + (vb / b) ** 2)
        dent = np.sqrt((u / (0.42 * a)) ** 2 + ((vb - 1.05 * b) / (0.5 * b)) ** 2) - 1
        phi = np.minimum(phi, dent)
    else:
        phi = 1 - np.sqrt((u / a) ** 2 + (v / b) ** 2)
    return (phi + c.n_noise * _sample(F, u, v, c.n_zoom, c.off3)).astype(np.float32)


def _grow_frame(cells: list[_Cell], g: _Grid, F: np.ndarray, t: int) -> dict:
    """2-D column maps of frame t on the extended grid: cell/nucleus ids, bottom/top surfaces (um), base RI."""
    ne, vxy = g.ne, g.vxy
    big = np.float32(np.inf)
    P = np.full((len(cells), ne, ne), big, np.float32)
    boxes = []
    for k, c in enumerate(cells):
        cx, cy = c.traj[t]
        reach = c.R * np.sqrt(c.asp) * (1 + 3 * c.edge_amp) + 1.0
        i0, i1 = np.clip(g.to_px([cx - reach, cx + reach]), 0, ne)
        j0, j1 = np.clip(g.to_px([cy - reach, cy + reach]), 0, ne)
        boxes.append((slice(i0, i1), slice(j0, j1)))
        if i1 <= i0 or j1 <= j0:
            continue
        ct, st = np.cos(c.rot[t]), np.sin(c.rot[t])
        dx, dy = g.xe[i0:i1, None] - cx, g.xe[None, j0:j1] - cy
        u, v = ct * dx + st * dy, -st * dx + ct * dy
        sa = np.sqrt(c.asp)
        m = np.sqrt((u / sa) ** 2 + (v * sa) ** 2) / c.R
        # rounded cells claim their disc before their neighbours (they push them aside): priority 1
        pk = m + c.edge_amp * np.clip(_sample(F, u, v, c.edge_zoom, c.off1), -3, 3)  # P < 1 stays inside the box
        P[k, i0:i1, j0:j1] = np.where(pk < 1.0, pk - c.prio, big) if c.prio else pk
    terr = np.argmin(P, axis=0)
    pmin = np.take_along_axis(P, terr[None], 0)[0]
    del P
    prio = np.array([c.prio for c in cells] + [0.0], np.float32)
    fp_lab = np.where(pmin < 1.0 - prio[terr], terr, -1)
    terr = np.where(np.isfinite(pmin), terr, -1)

    # refine each footprint: erosion/dilation, fractal roughness on free edges, one connected body
    fps = {}
    for k, c in enumerate(cells):
        sl0 = boxes[k]
        fp = fp_lab[sl0] == k
        if fp.sum() < 50:
            continue
        ii, jj = np.nonzero(fp)
        padp = int(np.ceil((abs(c.erosion) + c.rough_amp + 1.0) / vxy))
        i0, i1 = max(ii.min() + sl0[0].start - padp, 0), min(ii.max() + sl0[0].start + padp + 1, ne)
        j0, j1 = max(jj.min() + sl0[1].start - padp, 0), min(jj.max() + sl0[1].start + padp + 1, ne)
        sl = (slice(i0, i1), slice(j0, j1))
        fp = fp_lab[sl] == k
        others = (fp_lab[sl] >= 0) & ~fp
        s = _edt(fp, vxy) - _edt(~fp, vxy)
        free = np.clip(_edt(~others, vxy) / 1.0, 0, 1) if others.any() else 1.0
        ct, st = np.cos(c.rot[t]), np.sin(c.rot[t])
        cx, cy = c.traj[t]
        dx, dy = g.xe[i0:i1, None] - cx, g.xe[None, j0:j1] - cy
        u, v = ct * dx + st * dy, -st * dx + ct * dy
        rough = c.rough_amp * _sample(F, u, v, c.rough_zoom, c.off2) * free
        ero = c.erosion * free if c.touch else c.erosion
        fp2 = (s - ero + rough > 0) & (terr[sl] == k)
        lab, n = ndi.label(fp2)
        if n > 1:
            fp2 = lab == (np.argmax(np.bincount(lab.ravel())[1:]) + 1)
        if fp2.sum() < 50:
            continue
        fps[k] = (sl, fp2, u, v)

    union = np.zeros((ne, ne), bool)
    for sl, fp2, _, _ in fps.values():
        union[sl] |= fp2
    d_tis = _edt(union, vxy)

    names = ["cid", "nid", "bottom", "top", "nb", "nt", "cyto", "er", "nucbase", "dnuc", "chrom", "rim", "rim_w",
             "tw", "tg", "tp", "tf"]
    M = {k: np.zeros((ne, ne), np.int32 if k in ("cid", "nid") else np.float32) for k in names}
    info = {}
    for k, (sl, fp2, u, v) in fps.items():
        c = cells[k]
        d_own = _edt(fp2, vxy)
        rounded = c.kind in ("rounded", "mitotic")
        if c.layout != "isolated" and not rounded:
            d = np.minimum(d_tis[sl], d_own + c.junction)  # junctions stay thick
        else:
            d = d_own
        if rounded:
            Rb = max(float(d_own.max()), vxy)
            hh = c.Rz * np.sqrt(np.clip(d_own * (2 * Rb - d_own), 0, None)) / Rb
            zc = c.z_sub + c.gap + c.Rz * c.fb
            top, bottom = zc + hh, zc - hh * c.fb
        else:
            # a plateau reached over d_rise, blended with a dome peaking at the thickest point
            q = np.clip((d - 0.3) / max(float(d.max()) - 0.3, 0.5), 0, 1)
            rise = c.w_dome * (1 - (1 - q) ** 2) + (1 - c.w_dome) * _smoothstep((d - 0.3) / c.d_rise)
            body = c.h_lam + (c.h_body - c.h_lam) * rise
            body = body * np.sqrt(np.clip(d / 0.35, 0, 1))
            wsum = ndi.gaussian_filter(fp2.astype(np.float32), 0.4 / vxy)
            body = ndi.gaussian_filter(np.where(fp2, body, 0).astype(np.float32), 0.4 / vxy) / np.maximum(wsum, 1e-3)
            bottom = np.full(fp2.shape, c.z_sub + c.lift, np.float32)
            top = bottom + body
            Rb = 0.0
        top = np.where(fp2, top, 0).astype(np.float32)
        bottom = np.where(fp2, bottom, 0).astype(np.float32)

        # nucleus: placed at frame 0 near the thickest part (or at the shared boundary of a touching pair)
        if c.kind != "mitotic" and not hasattr(c, "n_local"):  # first frame the cell is grown in
            _place_nucleus(c, g, d_own, sl, fp2, rounded, Rb, fps, t)
        nfp = np.zeros(fp2.shape, bool)
        nb = nt = dn = None
        if c.kind != "mitotic" and hasattr(c, "n_local"):
            (nx, ny), ang = c.nucleus_pose(t)
            ca, sa_ = np.cos(ang), np.sin(ang)
            dx, dy = g.xe[sl[0], None] - nx, g.xe[None, sl[1]] - ny
            un, vn = ca * dx + sa_ * dy, -sa_ * dx + ca * dy
            nf = _nucleus_phi(c, un, vn, F) > 0
            allowed = d_own > c.margin
            if c.touch and c.partner in fps:  # the nucleus may reach the boundary shared with the partner
                pm = _paste(fps[c.partner][0], fps[c.partner][1], sl)
                allowed |= fp2 & (_edt(~pm, vxy) < c.margin + 0.6)
            nfp = nf & allowed
            if nfp.sum() >= 20:
                dn = _edt(nf, vxy)
                dout = _edt(~nf, vxy)
                rr = max(c.rr_n * float(dn.max()), 0.5) if not rounded else c.rr_n  # lateral rounding: dome .. flat
                prof = np.sqrt(1 - (1 - np.clip(dn / rr, 0, 1)) ** 2)
                if rounded:  # centred in the sphere, but never below the substrate
                    zcn = max(c.z_sub + c.gap + c.Rz * c.fb, c.z_sub + c.gap + c.Hb_n + 0.3)
                else:
                    zcn = c.z_sub + c.lift + c.gap_n + c.Hb_n
                nb = (zcn - c.Hb_n * prof).astype(np.float32)
                nt = (zcn + c.Ht_n * prof).astype(np.float32)
                env = np.where(nf, zcn + c.dome + c.Ht_n * prof, (zcn + c.dome) * (1 - _smoothstep(dout / c.w_out)))
                top = np.where(fp2, np.maximum(top, env), top).astype(np.float32)
                if rounded:
                    bottom = np.where(fp2, np.minimum(bottom, np.where(nf, nb - 0.2, bottom)), 0).astype(np.float32)
            else:
                nfp[:] = False
                dout = None
        # per-cell base RI: lamellae are less dense; dense ER rim around the nucleus
        cyto = c.cyto - c.lam_drop * np.exp(-d_own / 1.2) + c.het * _sample(F, u, v, c.het_zoom, c.off4)
        er = c.er * np.exp(-dout / c.er_w) if (c.er > 0 and nb is not None) else 0.0
        view = {key: M[key][sl] for key in names}
        view["cid"][fp2] = c.idx
        view["bottom"][fp2] = bottom[fp2]
        view["top"][fp2] = top[fp2]
        view["cyto"][fp2] = np.broadcast_to(cyto, fp2.shape)[fp2]
        view["er"][fp2] = np.broadcast_to(er, fp2.shape)[fp2]
        for key, val in zip(("tw", "tg", "tp", "tf"), c.tex):
            view[key][fp2] = val
        if nb is not None:
            view["nid"][nfp] = c.idx
            view["nb"][nfp] = nb[nfp]
            view["nt"][nfp] = nt[nfp]
            view["nucbase"][nfp] = (cyto + c.delta - 0.3 * c.rim)[nfp]  # local cytoplasm + delta (rim adds back)
            view["dnuc"][nfp] = dn[nfp]
            view["chrom"][nfp] = c.chrom
            view["rim"][nfp] = c.rim
            view["rim_w"][nfp] = c.rim_w
        info[k] = {"sl": sl, "fp": fp2, "nfp": nfp}
    p = g.pad
    out = {key: val[p:p + g.n, p:p + g.n] for key, val in M.items()}
    out["info"] = info
    return out


def _place_nucleus(c: _Cell, g: _Grid, d_own, sl, fp2, rounded: bool, Rb: float, fps: dict, t: int) -> None:
    """Fix the nucleus pose (cell frame) and size from the footprint grown in frame t."""
    vxy = g.vxy
    dmax = float(d_own.max())
    ix = np.array(np.unravel_index(int(np.argmax(ndi.gaussian_filter(d_own, 1.0 / vxy))), d_own.shape))
    pos = np.array([g.xe[sl[0].start + ix[0]], g.xe[sl[1].start + ix[1]]], float)
    rng = np.random.default_rng(c.seed)
    angle = c.rot[t] + (0.0 if c.kind == "elongated" else rng.uniform(0, np.pi))
    if rounded:
        rn = c.n_frac * min(Rb, c.Rz)
        c.a_n, c.b_ratio, c.shape = rn * rng.uniform(1.0, 1.12), rng.uniform(0.9, 1.0), "ellipse"
        c.Ht_n = c.Hb_n = rn * rng.uniform(0.8, 0.95)
        c.rr_n = rn
        c.dome = 0.3
        pos = pos + rng.normal(0, 0.1 * rn, 2)
    else:
        lim_b = 0.85 * max(dmax - c.margin, 1.0)
        lim_a = (1.7 if c.kind == "elongated" else 1.1) * max(dmax - c.margin, 1.0)
        b = min(c.a_n * c.b_ratio, lim_b)
        a = min(max(c.a_n, b), lim_a)
        area = fp2.sum() * vxy**2
        shrink = min(1.0, np.sqrt(c.n_area * area / (np.pi * a * b)))  # the nucleus covers at most n_area
        a, b = a * shrink, b * shrink
        if c.shape == "lobed":
            k_ = min(1.0, a / c.a_n)
            c.lobes = [(cen * k_, ra * k_, rb * k_, th) for cen, ra, rb, th in c.lobes]
        c.a_n, c.b_ratio = a, b / a
        c.Ht_n, c.Hb_n = c.Ht, c.Hb
        c.rr_n = c.rr_k
        pos = pos + rng.normal(0, 0.12 * dmax, 2)
        if c.touch and c.partner in fps:  # move towards the partner, minor axis across the shared boundary
            osl, ofp = fps[c.partner][0], fps[c.partner][1]
            pm = _paste(osl, ofp, sl)
            near = fp2 & ndi.binary_dilation(pm, iterations=2)
            if near.any():
                bi, bj = np.nonzero(near)
                pts = np.stack([g.xe[sl[0].start + bi], g.xe[sl[1].start + bj]], -1)
                mid = pts[np.argmin(((pts - pts.mean(0)) ** 2).sum(1))]  # a boundary point near its middle
                own = c.traj[t]
                dirv = (own - mid) / (np.hypot(*(own - mid)) + 1e-9)
                pos = mid + dirv * 0.65 * c.a_n * c.b_ratio
                angle = float(np.arctan2(dirv[1], dirv[0]) + np.pi / 2)
                c.shape = "ellipse"  # a kidney's dent or a lobe's neck could face the partner
    c.n_local = _rot(-c.rot[t]) @ (pos - c.traj[t])
    c.n_angle = float(angle - c.rot[t] - c.n_spin * t)


def _paste(src_sl, src, dst_sl) -> np.ndarray:
    """Mask ``src`` (placed at ``src_sl`` of the extended grid) cut to the window ``dst_sl``."""
    out = np.zeros((dst_sl[0].stop - dst_sl[0].start, dst_sl[1].stop - dst_sl[1].start), bool)
    i0, i1 = max(src_sl[0].start, dst_sl[0].start), min(src_sl[0].stop, dst_sl[0].stop)
    j0, j1 = max(src_sl[1].start, dst_sl[1].start), min(src_sl[1].stop, dst_sl[1].stop)
    if i1 > i0 and j1 > j0:
        out[i0 - dst_sl[0].start:i1 - dst_sl[0].start, j0 - dst_sl[1].start:j1 - dst_sl[1].start] = \
            src[i0 - src_sl[0].start:i1 - src_sl[0].start, j0 - src_sl[1].start:j1 - src_sl[1].start]
    return out


# ----------------------------------------------------------------------------------------------- textures


def _worley(rng, shape, spacing, feature_um: float):
    """Worley primitives on a grid: distance (um) to the nearest random feature point and that point's index."""
    vol = np.prod(np.array(shape) * np.array(spacing))
    n_pts = max(8, int(vol / feature_um**3))
    pts = tuple(rng.integers(0, s, n_pts) for s in shape)
    mask = np.ones(shape, bool)
    mask[pts] = False
    dist, ind = ndi.distance_transform_edt(mask, sampling=spacing, return_indices=True)
    flat = np.ravel_multi_index(tuple(ind), shape)
    return dist.astype(np.float32), flat


def _textures(rng, g: _Grid) -> dict:
    """Unit-s.d. textures on the coarse reference grid (nc, nc, zc): cytoplasm families and chromatin."""
    shape = (g.nc, g.nc, g.zc)
    sp = (g.f * g.vxy, g.f * g.vxy, g.fz * g.vz)
    T = {}
    # Worley / cellular: bright cell centres or random per-cell values
    d, flat = _worley(rng, shape, sp, rng.uniform(0.7, 1.6))
    vals = rng.standard_normal(int(np.prod(shape))).astype(np.float32)
    mix = rng.uniform(0, 1)
    T["tw"] = _unit(mix * np.exp(-d / rng.uniform(0.2, 0.5)) + (1 - mix) * 0.3 * vals[flat].reshape(shape))
    # sparse Gabor convolution noise: Poisson impulses convolved with an oriented Gabor kernel
    imp = np.zeros(shape, np.float32)
    n_imp = int(np.prod(shape) * rng.uniform(0.002, 0.02))
    imp[tuple(rng.integers(0, s, n_imp) for s in shape)] = rng.choice([-1.0, 1.0], n_imp)
    freq = rng.uniform(0.6, 1.6)  # cycles/um
    sig = rng.uniform(0.35, 0.8)
    theta = rng.uniform(0, np.pi)
    direc = np.array([np.cos(theta), np.sin(theta), rng.normal(0, 0.5)])
    axes = [np.fft.fftfreq(s, 1.0 / s) * h for s, h in zip(shape, sp)]  # wrapped coordinates (um)
    X, Y, Z = np.meshgrid(*axes, indexing="ij", sparse=True)
    phase = 2 * np.pi * freq * (direc[0] * X + direc[1] * Y + direc[2] * Z)
    ker = np.exp(-(X**2 + Y**2 + Z**2) / (2 * sig**2)) * np.cos(phase)
    gab = sfft.irfftn(sfft.rfftn(imp, workers=1) * sfft.rfftn(ker.astype(np.float32), workers=1), shape, workers=1)
    T["tg"] = _unit(gab)
    # puncta (vesicles): sparse impulses, mostly bright or mostly dark per field
    imp = np.zeros(shape, np.float32)
    n_imp = int(np.prod(np.array(shape) * np.array(sp)) * rng.uniform(0.3, 2.0))
    sign_p = rng.uniform(0.2, 0.9)
    imp[tuple(rng.integers(0, s, n_imp) for s in shape)] = np.where(rng.random(n_imp) < sign_p, 1.0, -1.0)
    T["tp"] = _unit(ndi.gaussian_filter(imp, [0.22 / h for h in sp]))
    # filaments (2-D, basal): random segments, partly aligned, plus a skeletonised random field
    fil = np.zeros((g.nc, g.nc), np.float32)
    n_seg = int((g.nc * sp[0]) ** 2 / rng.uniform(6, 25))
    base_ang = rng.uniform(0, np.pi)
    disp = rng.uniform(0.1, 1.6)
    for _ in range(n_seg):
        x0, y0 = rng.uniform(0, g.nc, 2)
        ang = base_ang + rng.normal(0, disp)
        ln = rng.uniform(2, 12) / sp[0]
        x1, y1 = x0 + ln * np.cos(ang), y0 + ln * np.sin(ang)
        rr, cc, val = line_aa(int(x0), int(y0), int(x1), int(y1))
        ok = (rr >= 0) & (rr < g.nc) & (cc >= 0) & (cc < g.nc)
        fil[rr[ok], cc[ok]] += val[ok] * rng.uniform(0.3, 1.0)
    net = _value_noise2d(rng, g.nc, max(2, int(g.nc * sp[0] / rng.uniform(3, 8))), octaves=2)
    fil += rng.uniform(0, 1) * skeletonize(net > rng.uniform(-0.3, 0.3)).astype(np.float32)
    T["tf"] = _unit(ndi.gaussian_filter(fil, 0.12 / sp[0] + 0.3))
    # chromatin: clumped Worley (bright clumps of random weight) plus cellular values
    d, flat = _worley(rng, shape, sp, rng.uniform(0.45, 0.9))
    wts = rng.lognormal(0, 0.5, int(np.prod(shape))).astype(np.float32)
    s = rng.uniform(0.15, 0.35)
    T["chrom"] = _unit(np.exp(-(d / s) ** 2) * wts[flat].reshape(shape)
                       + rng.uniform(0, 0.3) * vals[flat].reshape(shape))
    return T


# ----------------------------------------------------------------------------------------------- stamps


def _stamp(vol: np.ndarray, g: _Grid, centre, radii, value: float, mode: str, acc=None, rotm=None) -> None:
    """Blend an anti-aliased ellipsoid (centre, radii in um, field coordinates) into ``vol`` in place.

    mode ``"set"``: vol -> vol (1 - occ) + occ value; ``"add"``: vol += occ value; ``acc`` (same
    shape as vol) additionally receives max(acc, occ).
    """
    rmax = float(max(radii))
    lo = [int(np.floor((centre[0] - rmax) / g.vxy - 1)), int(np.floor((centre[1] - rmax) / g.vxy - 1)),
          int(np.floor((centre[2] - rmax) / g.vz - 1))]
    hi = [int(np.ceil((centre[0] + rmax) / g.vxy + 1)), int(np.ceil((centre[1] + rmax) / g.vxy + 1)),
          int(np.ceil((centre[2] + rmax) / g.vz + 1))]
    shape = vol.shape[:3]
    lo = [max(a, 0) for a in lo]
    hi = [min(b, s) for b, s in zip(hi, shape)]
    if any(b <= a for a, b in zip(lo, hi)):
        return
    x = ((np.arange(lo[0], hi[0]) + 0.5) * g.vxy - centre[0])[:, None, None, None]
    y = ((np.arange(lo[1], hi[1]) + 0.5) * g.vxy - centre[1])[None, :, None, None]
    ns = int(min(5, max(1, np.ceil(g.vz / 0.2))))  # sub-samples across thick sections
    zs = ((np.arange(ns) + 0.5) / ns - 0.5) * g.vz
    z = ((np.arange(lo[2], hi[2]) + 0.5) * g.vz - centre[2])[None, None, :, None] + zs[None, None, None, :]
    if rotm is not None:
        d0 = rotm[0, 0] * x + rotm[1, 0] * y + rotm[2, 0] * z
        d1 = rotm[0, 1] * x + rotm[1, 1] * y + rotm[2, 1] * z
        d2 = rotm[0, 2] * x + rotm[1, 2] * y + rotm[2, 2] * z
    else:
        d0, d1, d2 = x, y, z
    rho = np.sqrt((d0 / radii[0]) ** 2 + (d1 / radii[1]) ** 2 + (d2 / radii[2]) ** 2)
    occ = np.clip(0.5 - (rho - 1) * min(radii) / g.vxy, 0, 1).mean(-1).astype(np.float32)
    sl = tuple(slice(a, b) for a, b in zip(lo, hi))
    if mode == "set":
        vol[sl] += occ * (value - vol[sl])
    else:
        vol[sl] += occ * value
    if acc is not None:
        np.maximum(acc[sl], occ, out=acc[sl])


def _draw_inclusions(rng, c: _Cell, g: _Grid, info: dict) -> None:
    """Positions (cell or nucleus frame) of nucleoli, lipid droplets and vacuoles, drawn from frame 0's maps."""
    vxy = g.vxy
    sl, fp, nfp = info["sl"], info["fp"], info["nfp"]
    d_in = _edt(fp, vxy)
    c.nucleoli, c.lipids, c.vacuoles = [], [], []
    off = np.array([sl[0].start, sl[1].start])
    if nfp.any():
        dn = _edt(nfp, vxy)
        (nx, ny), ang = c.nucleus_pose(0)
        for _ in range(c.n_nucleoli):
            r = rng.uniform(0.35, 0.9) * min(1.0, c.Ht_n / 1.2)
            cand = np.argwhere(dn > r + 0.3)
            if len(cand) == 0:
                break
            ij = cand[rng.integers(len(cand))] + off
            w = np.array([g.xe[ij[0]], g.xe[ij[1]]])
            loc = _rot(-ang) @ (w - np.array([nx, ny]))
            c.nucleoli.append((loc, r, rng.uniform(0.7, 1.3, 3), rng.uniform(0.008, 0.03), rng.uniform(-0.4, 0.4)))
        dout = _edt(~nfp, vxy)
    else:
        dout = np.full(fp.shape, 5.0, np.float32)
    for kind, n in (("lipid", c.n_lipids), ("vac", c.n_vacuoles)):
        for _ in range(n):
            r = rng.uniform(0.2, 0.6) if kind == "lipid" else rng.uniform(0.3, 1.1)
            ok = fp & ~nfp & (d_in > r + 0.3) & (dout > r + 0.2)
            cand = np.argwhere(ok)
            if len(cand) == 0:
                break
            wts = np.exp(-dout[ok] / 2.5) + 0.05  # perinuclear
            ij = cand[rng.choice(len(cand), p=wts / wts.sum())] + off
            w = np.array([g.xe[ij[0]], g.xe[ij[1]]])
            loc = _rot(-c.rot[0]) @ (w - c.traj[0])
            val = 1.385 + 0.075 * rng.beta(1.5, 1.6) if kind == "lipid" else rng.uniform(0.002, 0.012)
            (c.lipids if kind == "lipid" else c.vacuoles).append((loc, r, val, rng.uniform(0.15, 0.85)))


def _apply_inclusions(ri, lab_occ, cells, g: _Grid, maps: dict, t: int, medium: float) -> None:
    """Stamp nucleoli, lipids, vacuoles and mitotic chromosomes of frame t into the truth RI (in place)."""
    n = g.n
    for c in cells:
        if c.kind == "mitotic" and c.mitosis is not None:
            cen = np.append(c.traj[t], c.z_sub + c.gap + c.Rz * c.fb)
            i, j = (cen[:2] / g.vxy).astype(int)
            if not (0 <= i < n and 0 <= j < n) or maps["cid"][i, j] != c.idx:
                continue
            R2 = np.eye(3)
            R2[:2, :2] = _rot(c.rot[t])
            for off, rad in zip(c.mitosis["offs"], c.mitosis["radii"]):
                _stamp(ri, g, cen + R2 @ off, rad, c.mitosis["dri"], "add", acc=lab_occ[c.idx])
            continue
        if hasattr(c, "nucleoli") and c.nucleoli:
            (nx, ny), ang = c.nucleus_pose(t)
            for loc, r, ax, dri, zf in c.nucleoli:
                w = np.array([nx, ny]) + _rot(ang) @ loc
                i, j = (w / g.vxy).astype(int)
                if not (0 <= i < n and 0 <= j < n) or maps["nid"][i, j] != c.idx:
                    continue
                lo, hi = maps["nb"][i, j], maps["nt"][i, j]
                rz = min(r * ax[2], 0.45 * (hi - lo))
                if rz <= 0.1:
                    continue
                z = (lo + hi) / 2 + zf * max(hi - lo - 2 * rz, 0) / 2
                _stamp(ri, g, (w[0], w[1], z), (r * ax[0], r * ax[1], rz), dri, "add")
        for kind in ("lipids", "vacuoles"):
            for loc, r, val, zf in getattr(c, kind, []):
                w = c.to_world(t, loc)
                i, j = (w / g.vxy).astype(int)
                if not (0 <= i < n and 0 <= j < n) or maps["cid"][i, j] != c.idx or maps["nid"][i, j]:
                    continue
                lo, hi = maps["bottom"][i, j], maps["top"][i, j]
                if hi - lo < 2 * r + 0.3:
                    continue
                z = lo + r + 0.15 + zf * (hi - lo - 2 * r - 0.3)
                target = val if kind == "lipids" else medium + val
                _stamp(ri, g, (w[0], w[1], z), (r, r, r), target, "set")


# ----------------------------------------------------------------------------------------------- truth volume


def _box(lo, hi, z, vz):
    """Fraction of each voxel (centres z, height vz) inside the column interval [lo, hi] (2-D maps, um)."""
    h = vz / 2
    return np.clip((np.minimum(hi[..., None], z + h) - np.maximum(lo[..., None], z - h)) * (1.0 / vz), 0, 1)


def _ref_coords(cells, g: _Grid, maps: dict, t: int):
    """Reference (frame-0) coarse pixel of every coarse pixel of frame t (texture moves with cells and nuclei)."""
    ci = g.cidx
    cid = maps["cid"][np.ix_(ci, ci)]
    nid = maps["nid"][np.ix_(ci, ci)]
    X = (ci + 0.5) * g.vxy
    P = np.stack(np.meshgrid(X, X, indexing="ij"), -1).astype(np.float64)
    ref = P.copy()
    for c in cells:
        m = cid == c.idx
        if m.any():
            loc = (P[m] - c.traj[t]) @ _rot(c.rot[t])  # row-vector form of R(-theta) (p - c)
            ref[m] = c.traj[0] + loc @ _rot(c.rot[0]).T
        m = nid == c.idx
        if m.any() and hasattr(c, "n_local"):
            (nx, ny), ang = c.nucleus_pose(t)
            (n0x, n0y), ang0 = c.nucleus_pose(0)
            loc = (P[m] - np.array([nx, ny])) @ _rot(ang)
            ref[m] = np.array([n0x, n0y]) + loc @ _rot(ang0).T
    ix = np.clip(np.round(ref[..., 0] / (g.f * g.vxy) - 0.5), 0, g.nc - 1).astype(np.int64)
    iy = np.clip(np.round(ref[..., 1] / (g.f * g.vxy) - 0.5), 0, g.nc - 1).astype(np.int64)
    return ix, iy


def _truth(cells, g: _Grid, maps: dict, T: dict, t: int, medium: float):
    """Truth RI (X, Y, Z) float32 and nucleus occupancy of frame t, before stamps."""
    z, vz = g.z, g.vz
    # coarse texture mix (cytoplasm families, chromatin, heterochromatin rim, basal filaments)
    ci = g.cidx
    keys = ("bottom", "nb", "nt", "dnuc", "chrom", "rim", "rim_w", "tw", "tg", "tp", "tf")
    sub = {k: maps[k][np.ix_(ci, ci)] for k in keys}
    if t > 0:
        ix, iy = _ref_coords(cells, g, maps, t)
        G = {k: T[k][ix, iy] for k in T}
    else:
        G = T
    zc = g.zcoarse
    cyt = sub["tw"][..., None] * G["tw"] + sub["tg"][..., None] * G["tg"] + sub["tp"][..., None] * G["tp"]
    basal = np.exp(-(((zc - sub["bottom"][..., None]) - 0.35) / 0.35) ** 2)
    cyt += (sub["tf"] * 1.5 * G["tf"])[..., None] * basal  # stress fibres near the substrate
    occ_nc = _box(sub["nb"], sub["nt"], zc, g.fz * vz)
    dist = np.minimum(np.minimum(sub["dnuc"][..., None], sub["nt"][..., None] - zc), zc - sub["nb"][..., None])
    rim = sub["rim"][..., None] * np.exp(-np.clip(dist, 0, None) / np.maximum(sub["rim_w"][..., None], 0.1))
    nuc = sub["chrom"][..., None] * G["chrom"] + rim
    tex_c = (cyt + occ_nc * (nuc - cyt)).astype(np.float32)
    tex = _upsample(tex_c, (g.f, g.f, g.fz), (g.n, g.n, g.nz))

    occ_c = _box(maps["bottom"], maps["top"], z, vz)
    occ_n = _box(maps["nb"], maps["nt"], z, vz)
    cyto = maps["cyto"] + maps["er"]
    val = cyto[..., None] + occ_n * (maps["nucbase"] - cyto)[..., None] + tex
    ri = medium + occ_c * (val - medium)
    return ri.astype(np.float32), occ_n


# ----------------------------------------------------------------------------------------------- optics


def _draw_optics(rng, acq: Acquisition) -> dict:
    n_m, lam = acq.medium_ri, acq.wavelength_um
    na_o, na_i = acq.na_objective, acq.na_illumination
    na = 0.5 * (na_o + na_i)
    dz_res = lam / (n_m - np.sqrt(max(n_m**2 - na**2, 1e-6)))  # axial resolution scale (um)
    return {
        "cutoff": (na_o + na_i) / lam,  # cycles/um
        "butter_order": int(rng.integers(2, 7)),
        "cone_half_angle": float(np.arcsin(min(na_i / n_m, 0.98)) * rng.uniform(0.8, 1.0)),
        "axial_length": float(0.5 * dz_res * rng.uniform(0.6, 1.4)),
        "ring_weight": float(rng.uniform(0.2, 0.8)),
        "centre_weight": float(rng.uniform(0.15, 0.5)),
        "tv_weight": float(rng.uniform(0.04, 0.2)),
        "tv_iter": int(rng.integers(3, 9)),
        "thick_factor": float(rng.uniform(0.6, 1.0)),
        "thick_start": float(rng.uniform(1.5, 3.0)),
        "thick_full": float(rng.uniform(4.5, 8.0)),
        "pre_noise": float(rng.uniform(0.5, 1.8)),
    }


def _hourglass_otf(g: _Grid, op: dict) -> np.ndarray:
    """rFFT of (real-space double-cone kernel) x (separable lateral Butterworth): (X, Y, Z//2+1) complex64."""
    n, nz, vxy, vz = g.n, g.nz, g.vxy, g.vz
    tan_a = np.tan(op["cone_half_angle"])
    Lz = op["axial_length"]
    zmax = min(3.0 * Lz, 0.45 * g.depth)
    s_edge = max(0.6 * vxy, 0.25 / op["cutoff"])
    half = int(min(n // 2 - 1, np.ceil((zmax * tan_a + 4 * s_edge) / vxy)))  # the kernel's lateral window
    xw = (np.arange(-half, half + 1) * vxy).astype(np.float32)
    r = np.sqrt(xw[:, None] ** 2 + xw[None, :] ** 2)
    zw = np.fft.fftfreq(nz, 1.0 / nz) * vz
    win = np.zeros((2 * half + 1, 2 * half + 1, nz), np.float32)
    core = np.exp(-(r**2) / (2 * s_edge**2))
    win[:, :, 0] = op["centre_weight"] * core / core.sum()
    wsum = 0.0
    for k, dz in enumerate(zw):
        adz = abs(dz)
        if k == 0 or adz > zmax + 1e-6:
            continue
        rho = adz * tan_a
        disc = 1.0 / (1.0 + np.exp(np.clip((r - rho) / s_edge, -30, 30)))  # solid cone ...
        ring = np.exp(-((r - rho) ** 2) / (2 * s_edge**2))  # ... with a brighter mantle (hourglass)
        plane = (1 - op["ring_weight"]) * disc / disc.sum() + op["ring_weight"] * ring / ring.sum()
        w = np.exp(-adz / Lz)
        win[:, :, k] = w * plane
        wsum += w
    if wsum > 0:
        win[:, :, 1:] *= (1 - op["centre_weight"]) / wsum
    else:
        win[:, :, 0] /= op["centre_weight"]
    ker = np.zeros((n, n, nz), np.float32)
    ker[: 2 * half + 1, : 2 * half + 1] = win
    ker = np.roll(ker, (-half, -half), axis=(0, 1))  # centre at voxel (0, 0, 0), wrapped
    otf = sfft.rfftn(ker, workers=1)
    kx = np.abs(np.fft.fftfreq(n, vxy)).astype(np.float32)
    b = 1.0 / np.sqrt(1.0 + (kx / op["cutoff"]) ** (2 * op["butter_order"]))
    otf *= (b[:, None] * b[None, :])[..., None]
    return otf.astype(np.complex64)


def _tv_chambolle(f: np.ndarray, weight: float, n_iter: int) -> np.ndarray:
    """Chambolle's projection algorithm for TV denoising, fixed ``n_iter`` iterations, float32, few temporaries.

    Same iterates as ``skimage.restoration.denoise_tv_chambolle(f, weight, max_num_iter=n_iter, eps=0)``
    (checked to float precision), at about half its time and memory traffic.
    """
    nd = f.ndim
    p = np.zeros((nd,) + f.shape, np.float32)
    grad = np.zeros((nd,) + f.shape, np.float32)
    nrm = np.empty(f.shape, np.float32)
    tmp = np.empty(f.shape, np.float32)
    out = f.copy()
    tau = np.float32(1.0 / (2.0 * nd))
    lo = [tuple(slice(0, -1) if k == ax else slice(None) for k in range(nd)) for ax in range(nd)]
    hi = [tuple(slice(1, None) if k == ax else slice(None) for k in range(nd)) for ax in range(nd)]
    for it in range(n_iter):
        if it > 0:  # out = f - div(p)
            np.negative(p[0], out=out)
            for ax in range(1, nd):
                out -= p[ax]
            for ax in range(nd):
                out[hi[ax]] += p[ax][lo[ax]]
            out += f
        nrm[...] = 0
        for ax in range(nd):
            np.subtract(out[hi[ax]], out[lo[ax]], out=grad[ax][lo[ax]])
            np.multiply(grad[ax], grad[ax], out=tmp)
            nrm += tmp
        np.sqrt(nrm, out=nrm)
        nrm *= np.float32(tau / weight)
        nrm += 1
        for ax in range(nd):
            grad[ax] *= tau
            p[ax] -= grad[ax]
            p[ax] /= nrm
    return out


def _correlated(rng, g: _Grid, sigma_um) -> np.ndarray:
    """Speckle: |complex Gaussian field|^2 on the coarse grid, smoothed and upsampled; zero mean, unit s.d."""
    shape = (g.nc, g.nc, g.zc)
    sp = (g.f * g.vxy, g.f * g.vxy, g.fz * g.vz)
    sig = [max(s / h, 0.3) for s, h in zip(sigma_um, sp)]
    re = ndi.gaussian_filter(rng.standard_normal(shape, dtype=np.float32), sig)
    im = ndi.gaussian_filter(rng.standard_normal(shape, dtype=np.float32), sig)
    sp_ = _unit(re**2 + im**2)
    return _unit(_upsample(sp_, (g.f, g.f, g.fz), (g.n, g.n, g.nz)))


def _image(truth: np.ndarray, maps: dict, g: _Grid, acq: Acquisition, op: dict, otf, art: dict, rng, t: int):
    """Imaged RI (X, Y, Z) float32 of one frame: contrast loss, hourglass blur, TV look, noise, artefacts.

    Returns (image, s.d. of the background left by the regularised pre-noise).
    """
    medium = acq.medium_ri
    C = truth - np.float32(medium)
    # thick parts lose contrast (a column-thickness rule, like an under-converged reconstruction)
    thick = ndi.gaussian_filter(maps["top"] - maps["bottom"], 1.0 / g.vxy)
    ramp = _smoothstep((thick - op["thick_start"]) / (op["thick_full"] - op["thick_start"]))
    fac = 1 - (1 - op["thick_factor"]) * ramp
    C *= fac[..., None].astype(np.float32)
    C = sfft.irfftn(sfft.rfftn(C, workers=1) * otf, C.shape, workers=1).astype(np.float32)

    sd = acq.noise_std
    # pre-regularisation noise, then a few TV iterations (staircase look), in units of 0.01 RI
    C += (op["pre_noise"] * sd) * rng.standard_normal(C.shape, dtype=np.float32)
    C *= 100.0
    C = _tv_chambolle(C, op["tv_weight"], op["tv_iter"])
    C *= 0.01
    # what the regularisation leaves of that noise where there is no signal: the same TV on a pure-noise block
    m = min(g.n, 64)
    block = (op["pre_noise"] * sd * 100.0) * rng.standard_normal((m, m, g.nz), dtype=np.float32)
    resid = float(_tv_chambolle(block, op["tv_weight"], op["tv_iter"]).std()) * 0.01
    if art["vignette"] > 0:  # contrast rolls off towards the field edge
        C *= art["vig_map"][..., None]

    # post noise: Gaussian + speckle (together post in the background) + signal-dependent (Poisson-like)
    post = np.sqrt(max(sd**2 - resid**2, 0.0))
    wg, ws, wp = art["noise_mix"]
    k = np.float32(post / np.hypot(wg, ws))
    noise = rng.standard_normal(C.shape, dtype=np.float32)
    noise *= k * wg
    if ws > 0:
        sig_l = 0.5 / op["cutoff"]
        noise += (k * ws) * _correlated(rng, g, (sig_l, sig_l, op["axial_length"] * 0.35))
    C += noise
    if wp > 0:
        noise = np.clip(C - np.float32(2 * sd), 0, None)  # zero in the background
        np.sqrt(noise, out=noise)
        noise *= np.float32(wp * post / np.sqrt(0.02)) * rng.standard_normal(C.shape, dtype=np.float32)
        C += noise
    del noise
    C += _artefacts(g, acq, maps, art, rng, t, C.dtype)
    C += np.float32(medium)
    return C, resid


def _draw_artefacts(rng, g: _Grid, acq: Acquisition, cells, op: dict) -> dict:
    """Per-field artefact recipe (what, where, how strong); per-frame randomness is drawn later."""
    deltas = [abs(c.delta) for c in cells] or [0.005]
    dmag = float(np.median(deltas))
    art = {}
    art["noise_mix"] = tuple(float(x) for x in rng.dirichlet([1.0, 1.0, 0.7]))
    f_type = str(rng.choice(["none", "straight", "circular", "two"], p=[0.3, 0.3, 0.2, 0.2]))
    fams = []
    for _ in range({"none": 0, "straight": 1, "circular": 1, "two": 2}[f_type]):
        fams.append({
            "circular": f_type == "circular" or (f_type == "two" and rng.random() < 0.3),
            "period": float(rng.uniform(1.0, 10.0)), "angle": float(rng.uniform(0, np.pi)),
            "kz": float(rng.normal(0, 0.15)), "zc": float(rng.uniform(0.1, 0.6) * g.depth),
            "zw": float(rng.uniform(2.0, 10.0)), "centre": rng.uniform(-0.5, 1.5, 2) * g.size,
            "amp": float(rng.uniform(0.1, 1.0) ** 1.5 * dmag), "env_c": rng.uniform(0, 1, 2) * g.size,
            "env_w": float(rng.uniform(0.4, 1.5) * g.size), "drift": float(rng.normal(0, 0.8)),
        })
    art["fringes"] = fams
    art["offset"] = float(rng.normal(0, 0.0006))
    art["tilt"] = rng.normal(0, 0.0006, 3) * (rng.random() < 0.6)
    art["rings"] = float(rng.uniform(0.5, 2.5) * acq.noise_std) if rng.random() < 0.35 else 0.0
    art["ring_centre"] = g.size / 2 + rng.normal(0, 0.03 * g.size, 2)
    art["dust"] = [{"c": rng.uniform(0, g.size, 2), "R": float(rng.uniform(2.0, 8.0)),
                    "amp": float(rng.uniform(0.5, 2.0) * acq.noise_std), "d": float(rng.uniform(5, 60))}
                   for _ in range(int(rng.poisson(1.0)))]
    art["vignette"] = float(rng.uniform(0.0, 0.35)) if rng.random() < 0.5 else 0.0
    w = rng.uniform(0.05, 0.2) * g.size
    xx = (np.arange(g.n) + 0.5) * g.vxy
    de = np.minimum(xx, g.size - xx)
    e1 = _smoothstep(de / w)
    art["vig_map"] = (1 - art["vignette"] * (1 - np.outer(e1, e1))).astype(np.float32)
    art["vig_offset"] = float(rng.normal(0, 0.0008)) if art["vignette"] > 0 else 0.0
    art["halo"] = float(rng.uniform(0.0005, 0.004)) if rng.random() < 0.45 else 0.0
    art["halo_w"] = float(rng.uniform(0.8, 2.5))
    return art


def _artefacts(g: _Grid, acq: Acquisition, maps: dict, art: dict, rng, t: int, dtype) -> np.ndarray:
    """Additive artefacts of one frame (X, Y, Z): fringes, tilt/offset, rings, dust ghosts, edge roll-off, halo."""
    n, nz = g.n, g.nz
    xx = ((np.arange(n) + 0.5) * g.vxy).astype(np.float32)
    X, Y = xx[:, None], xx[None, :]
    z = g.z
    A2 = np.full((n, n), art["offset"], np.float32)  # z-independent part
    A2 += art["tilt"][0] * (X / g.size - 0.5) + art["tilt"][1] * (Y / g.size - 0.5)
    A2 += art["vig_offset"] * (1 - art["vig_map"])
    out = np.zeros((n, n, nz), dtype)
    for fam in art["fringes"]:
        amp = fam["amp"] * rng.uniform(0.5, 1.2) * (1 + 0.5 * np.sin(0.7 * t + fam["drift"]))
        env = np.exp(-((X - fam["env_c"][0]) ** 2 + (Y - fam["env_c"][1]) ** 2) / (2 * fam["env_w"] ** 2))
        if fam["circular"]:
            arg = 2 * np.pi * np.hypot(X - fam["centre"][0], Y - fam["centre"][1]) / fam["period"]
        else:
            arg = 2 * np.pi * (np.cos(fam["angle"]) * X + np.sin(fam["angle"]) * Y) / fam["period"]
        arg = arg + fam["drift"] * t + rng.uniform(0, 2 * np.pi)
        kz = 2 * np.pi * fam["kz"] * z
        a, b = (amp * env * np.cos(arg)).astype(np.float32), (amp * env * np.sin(arg)).astype(np.float32)
        zenv = np.exp(-(((z - fam["zc"]) / fam["zw"]) ** 2))  # strongest near the focal plane
        out += a[..., None] * (np.cos(kz) * zenv) - b[..., None] * (np.sin(kz) * zenv)  # cos(arg + kz z)
    if art["rings"] > 0:  # ring artefacts: a random radial profile about the field centre
        rad = np.hypot(X - art["ring_centre"][0], Y - art["ring_centre"][1]) / g.vxy
        nr = int(rad.max()) + 2
        prof = np.zeros(nr)
        k = rng.integers(0, nr, max(3, nr // 12))
        prof[k] = rng.normal(0, 1, len(k))
        prof = ndi.gaussian_filter1d(prof, 0.7) * np.exp(-np.arange(nr) / (0.6 * nr))
        prof *= art["rings"] / (np.abs(prof).max() + 1e-12)
        A2 += np.interp(rad, np.arange(nr), prof).astype(np.float32)
    for ds in art["dust"]:  # out-of-focus dust: Fresnel-like concentric rings changing with z
        c = ds["c"] + rng.normal(0, 0.2, 2)
        lo = np.clip(((c - 1.5 * ds["R"]) / g.vxy).astype(int), 0, n)
        hi = np.clip(((c + 1.5 * ds["R"]) / g.vxy).astype(int), 0, n)
        if np.any(hi <= lo):
            continue
        r2 = (X[lo[0]:hi[0]] - c[0]) ** 2 + (Y[:, lo[1]:hi[1]] - c[1]) ** 2
        dd = ds["d"] + z[None, None, :]
        fresnel = np.cos(np.pi * r2[..., None] / (acq.wavelength_um * dd))
        ghost = ds["amp"] * fresnel * np.exp(-r2 / ds["R"] ** 2)[..., None]
        out[lo[0]:hi[0], lo[1]:hi[1]] += ghost.astype(dtype)
    if art["halo"] > 0 and (maps["cid"] > 0).any():  # bright halo around thick cells, at mid cell height
        thick = maps["top"] - maps["bottom"]
        inside = ndi.gaussian_filter((maps["cid"] > 0).astype(np.float32), 0.3 / g.vxy)
        h2 = ndi.gaussian_filter(thick, art["halo_w"] / g.vxy)
        h2 = art["halo"] * h2 / (thick.max() + 1e-6) * (1 - inside)
        zmid = float(np.median(((maps["top"] + maps["bottom"]) / 2)[maps["cid"] > 0]))
        hz = float(np.percentile(thick[maps["cid"] > 0], 90)) / 2 + 0.5
        out += h2[..., None] * np.exp(-((z - zmid) / hz) ** 2).astype(dtype)
    out += A2[..., None]
    if abs(art["tilt"][2]) > 0:
        out += (art["tilt"][2] * (z / g.depth - 0.5)).astype(dtype)
    return out


# ----------------------------------------------------------------------------------------------- debris


def _draw_debris(rng, g: _Grid, cells, frames: int) -> list[dict]:
    """Small dense fragments (clumps of 1-4 spheres, medium + 0.01..0.05), drifting; never labelled."""
    out = []
    for _ in range(int(rng.poisson(rng.uniform(0, 3)))):
        n = int(rng.integers(1, 5))
        c = rng.uniform(0, g.size, 2)
        if rng.random() < 0.7:  # settled on the substrate, or floating
            z0 = (cells[0].z_sub if cells else 1.0) + rng.uniform(0.2, 0.6)
        else:
            z0 = rng.uniform(1, g.depth - 1)
        out.append({"c": c, "z": z0, "offs": rng.normal(0, 0.35, (n, 3)), "r": rng.uniform(0.15, 0.6, n),
                    "val": float(rng.uniform(0.01, 0.05)), "drift": np.cumsum(rng.normal(0, 0.3, (frames, 2)), 0)})
    return out


# ----------------------------------------------------------------------------------------------- render


def render(seed: int, index: int, frames: int = 1) -> StyleField:
    """Render field ``index`` of style ``organic`` with ``seed``.

    Returns a :class:`StyleField` with image float32 RI (X, Y, Z) (or (X, Y, Z, T) when ``frames`` > 1),
    label uint8 nucleus mask and nuclei uint16 instance ids of the same shape.
    """
    frames = int(frames)
    if frames < 1:
        raise ValueError(f"frames must be >= 1, got {frames!r}")
    rng = style_rng(_NAME, seed, index)
    acq = draw_acquisition(rng)
    g = _Grid(acq)
    medium = acq.medium_ri
    F = _value_noise2d(rng, 128, 4)
    layout, cells, pairs = _draw_layout(rng, g, frames, acq.time_step_s)
    T = _textures(rng, g)
    op = _draw_optics(rng, acq)
    art = _draw_artefacts(rng, g, acq, cells, op)
    debris = _draw_debris(rng, g, cells, frames)
    otf = _hourglass_otf(g, op)
    frame_seed = int(rng.integers(2**63))

    images, labels, ids = [], [], []
    resid = []
    for t in range(frames):
        maps = _grow_frame(cells, g, F, t)
        if t == 0:
            for k, info in maps["info"].items():
                _draw_inclusions(np.random.default_rng(cells[k].seed + 1), cells[k], g, info)
        ri, occ_n = _truth(cells, g, maps, T, t, medium)
        nid3 = np.where(occ_n > 0.5, maps["nid"][..., None], 0).astype(np.uint16)
        del occ_n
        chrom = {c.idx: np.zeros(ri.shape, np.float32) for c in cells if c.kind == "mitotic"}
        _apply_inclusions(ri, chrom, cells, g, maps, t, medium)
        for idx, occ in chrom.items():
            nid3[occ > 0.5] = idx
        for d in debris:
            cen = d["c"] + d["drift"][t]
            i, j = np.clip((cen / g.vxy).astype(int), 0, g.n - 1)
            if maps["nid"][i, j]:  # debris never covers a nucleus (it would falsify the label's RI)
                continue
            for off, r in zip(d["offs"], d["r"]):
                _stamp(ri, g, (cen[0] + off[0], cen[1] + off[1], d["z"] + off[2] * 0.5), (r, r, r * 0.8),
                       medium + d["val"], "set")
        frng = np.random.default_rng([frame_seed, t])
        img, res = _image(ri, maps, g, acq, op, otf, art, frng, t)
        images.append(img)
        ids.append(nid3)
        labels.append((nid3 > 0).astype(np.uint8))
        resid.append(res)

    if frames == 1:
        image, label, nuclei = images[0], labels[0], ids[0]
    else:
        image, label, nuclei = np.stack(images, -1), np.stack(labels, -1), np.stack(ids, -1)
    in_field = sorted({int(i) for i in np.unique(nuclei) if i})
    params = {
        "layout": layout,
        "n_cells": len(cells),
        "nuclei_in_field": len(in_field),
        "kinds": [c.kind for c in cells],
        "nucleus_shapes": [c.shape for c in cells if c.kind != "mitotic"],
        "deltas": [round(c.delta, 5) for c in cells],
        "cytoplasm_ri": [round(c.cyto, 4) for c in cells],
        "touching_pairs": [(cells[i].idx, cells[j].idx) for i, j in pairs],
        "debris": len(debris),
        "optics": {k: (round(v, 4) if isinstance(v, float) else v) for k, v in op.items()},
        "noise_mix": art["noise_mix"],
        "fringes": [("circular" if f["circular"] else "straight", round(f["period"], 2), round(f["amp"], 5))
                    for f in art["fringes"]],
        "rings": art["rings"] > 0, "dust_ghosts": len(art["dust"]), "vignette": art["vignette"],
        "halo": art["halo"], "tv_residual_std": [round(r, 6) for r in resid],
        "frames": frames,
    }
    return StyleField(image=image, label=label, acquisition=acq, style=_NAME, nuclei=nuclei, params=params)
