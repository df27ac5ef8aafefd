"""Cells with physically grounded refractive index, rendered in their own (body) frame.

One adherent cell is a footprint (a smooth star-shaped outline with lamellipodia) carrying a height
map: a thin lamella at the edge (0.3-1 um), thicker cytoplasm inward and a dome over the nucleus. The
nucleus is a flattened ellipsoid, kidney or lobed body resting just above the coverslip. Absolute RI
values (they do not depend on the medium):

- cytoplasm 1.360-1.374 plus granular texture and organelles (mitochondria as short tubules,
  vesicles as puncta, darker vacuoles), lower in the thin lamella, optionally denser around the
  nucleus (perinuclear rim: ER/Golgi);
- lipid droplets 1.40-1.48, the brightest objects;
- nucleoplasm = local cytoplasm + delta, delta mostly negative (the nucleus is often *less* dense
  than the cytoplasm), with a smoother, larger-grained chromatin texture, peripheral heterochromatin
  and chromocentres, no organelles;
- one to four nucleoli, the densest part of the nucleus (+0.012..+0.030 over nucleoplasm);
- optional nuclear envelope (a 0.1-0.2 um shell, +0.004..+0.010).

A rounded mitotic cell is a sphere-like cell with condensed chromosomes (a metaphase plate) in place
of a nucleus; its label is the chromosome mass, as a DNA stain would show it.

Compartment codes in the ground-truth map are given by :data:`COMPARTMENTS`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage as ndi

from .textures import smooth_noise, smoothstep, splat

__all__ = ["COMPARTMENTS", "CellParams", "BodyCell", "draw_cell", "render_cell"]

COMPARTMENTS: dict[str, int] = {
    "medium": 0,
    "cytoplasm": 1,
    "nucleoplasm": 2,
    "nucleolus": 3,
    "lipid_droplet": 4,
    "organelle": 5,
    "vacuole": 6,
    "envelope": 7,
    "chromosomes": 8,
}
#: compartments that belong to the nucleus label
NUCLEAR = ("nucleoplasm", "nucleolus", "envelope", "chromosomes")


@dataclass
class CellParams:
    """Everything random about one cell (drawn by :func:`draw_cell`)."""

    seed: int
    mitotic: bool
    radius_um: float  # mean footprint radius
    harmonics: list = field(default_factory=list)  # (k, amplitude, phase)
    lamellipodia: list = field(default_factory=list)  # (angle, width, amplitude)
    orientation: float = 0.0
    lamella_um: float = 0.6
    body_um: float = 2.0
    ramp_um: float = 4.0
    cover_um: float = 0.6
    peri_height: float = 0.8  # cell height next to the nucleus / nucleus height
    peri_decay_um: float = 5.0  # how fast the cell body thins away from the nucleus
    # nucleus (or, for a mitotic cell, the sphere radius in a_um)
    nucleus_offset_um: tuple = (0.0, 0.0)
    nucleus_angle: float = 0.0
    a_um: float = 6.0
    b_um: float = 4.5
    c_um: float = 2.5
    gap_um: float = 0.4
    exponent: float = 2.2
    shape: str = "ellipsoid"
    shape_params: dict = field(default_factory=dict)
    # refractive index
    n_cyto: float = 1.367
    delta_nucleus: float = -0.004
    chromatin_amp: float = 0.003
    periphery_amp: float = 0.003
    n_nucleoli: int = 2
    nucleolus_delta: tuple = (0.015, 0.028)
    envelope: bool = True
    envelope_delta: float = 0.006
    perinuclear_rim: bool = True
    rim_delta: float = 0.004
    n_lipid: int = 5
    n_vacuoles: int = 4
    organelle_density: float = 0.6  # puncta per um^3
    mito_density: float = 0.12  # tubules per um^3


@dataclass
class BodyCell:
    """A rendered cell in its body frame (lateral centre at the array centre, z = field fine grid)."""

    ri: np.ndarray  # (Nx, Ny, Nz) absolute RI where occupancy > 0
    occupancy: np.ndarray  # (Nx, Ny, Nz) float32 cell occupancy in [0, 1]
    nucleus: np.ndarray  # (Nx, Ny, Nz) float32 nucleus (label) occupancy in [0, 1]
    compartments: np.ndarray  # (Nx, Ny, Nz) uint8 codes of COMPARTMENTS
    priority: np.ndarray  # (Nx, Ny) float32 > 0 inside the footprint; nucleus columns win
    z0: int  # first fine z-index the arrays cover
    spacing: tuple  # (vx, vy, dz)
    params: CellParams


#: the most an interphase nucleus's RI lies above its cytoplasm's. Measured on default fields with
#: one or two nuclei: 0.008-0.010 denser let one global RI band reach Dice 0.76-0.84 (3 of 41 fields),
#: 0.004 still 0.75 (seed 100), 0.002 0.70; the paper argues no pointwise rule separates nuclei.
NUCLEUS_DELTA_MAX = 0.002


def draw_cell(rng: np.random.Generator, *, mitotic: bool = False, nucleus_delta_mean: float = -0.004,
              scale: float = 1.0) -> CellParams:
    """Draw the random parameters of one cell.

    ``nucleus_delta_mean`` centres the nucleus-minus-cytoplasm RI difference (field-level domain
    randomisation); the per-cell value scatters around it with sd 0.005 (clipped at +-0.012), so with
    the default centre the nucleus is usually, not always, below the cytoplasm.
    """
    seed = int(rng.integers(0, 2**31 - 1))
    if mitotic:
        r = rng.uniform(5.0, 6.5) * scale
        return CellParams(
            seed=seed, mitotic=True, radius_um=r,
            harmonics=[(k, rng.uniform(0, 0.03), rng.uniform(0, 2 * np.pi)) for k in (2, 3)],
            a_um=r, b_um=rng.uniform(2.3, 3.3), c_um=rng.uniform(0.5, 0.9),
            nucleus_angle=rng.uniform(0, np.pi), shape="plate",
            n_cyto=rng.uniform(1.366, 1.376), n_lipid=int(rng.integers(0, 4)), n_vacuoles=int(rng.integers(0, 3)),
            organelle_density=rng.uniform(0.8, 1.3), mito_density=rng.uniform(0.05, 0.15),
            delta_nucleus=rng.uniform(0.008, 0.02), n_nucleoli=0, envelope=False,
        )
    a = rng.uniform(4.0, 7.0) * scale
    b = a * rng.uniform(0.62, 0.95)
    shape = rng.choice(["ellipsoid", "kidney", "lobed"], p=[0.5, 0.3, 0.2])
    sp: dict = {"harmonics": [(k, rng.uniform(0, 0.045), rng.uniform(0, 2 * np.pi)) for k in (2, 3, 4, 5)]}
    if shape == "kidney":
        sp.update(dent=rng.uniform(0.18, 0.35), dent_width=rng.uniform(0.35, 0.6), dent_angle=rng.choice([-1, 1]) * np.pi / 2,
                  bend=rng.uniform(0.01, 0.035) * rng.choice([-1, 1]))
    elif shape == "lobed":
        sp.update(lobes=int(rng.integers(2, 4)), lobe_amp=rng.uniform(0.12, 0.22), lobe_phase=rng.uniform(0, 2 * np.pi))
    radius = max(a * rng.uniform(1.7, 2.5), a + 4.0)
    n_harm = [(k, rng.uniform(0.0, 0.22 if k == 2 else 0.10 / (k - 1)), rng.uniform(0, 2 * np.pi)) for k in range(2, 9)]
    lamellipodia = [(rng.uniform(0, 2 * np.pi), rng.uniform(0.2, 0.6), rng.uniform(0.15, 0.5))
                    for _ in range(int(rng.integers(0, 4)))]
    delta = float(nucleus_delta_mean + np.clip(rng.normal(0.0, 0.005), -0.012, 0.012))
    delta = min(delta, max(NUCLEUS_DELTA_MAX, nucleus_delta_mean))  # an explicit denser centre is kept
    n_cyto = rng.uniform(1.361, 1.372)
    return CellParams(
        seed=seed, mitotic=False, radius_um=radius, harmonics=n_harm, lamellipodia=lamellipodia,
        orientation=rng.uniform(0, 2 * np.pi), lamella_um=rng.uniform(0.35, 1.0), body_um=rng.uniform(1.4, 2.8),
        ramp_um=rng.uniform(2.5, 6.0), cover_um=rng.uniform(0.35, 1.0),
        peri_height=rng.uniform(0.6, 0.95), peri_decay_um=rng.uniform(3.0, 8.0),
        nucleus_offset_um=tuple(rng.normal(0, 0.12 * radius, 2)), nucleus_angle=rng.uniform(0, np.pi),
        a_um=a, b_um=b, c_um=rng.uniform(1.8, 3.2) * min(1.0, scale * 1.1), gap_um=rng.uniform(0.25, 0.8),
        exponent=rng.uniform(2.0, 2.8), shape=str(shape), shape_params=sp,
        n_cyto=n_cyto, delta_nucleus=delta, chromatin_amp=rng.uniform(0.0015, 0.0045),
        periphery_amp=rng.uniform(0.0, 0.005), n_nucleoli=int(rng.integers(1, 5)),
        nucleolus_delta=(0.012, rng.uniform(0.018, 0.030)), envelope=bool(rng.random() < 0.65),
        envelope_delta=rng.uniform(0.004, 0.010), perinuclear_rim=bool(rng.random() < 0.6),
        rim_delta=rng.uniform(0.002, 0.006), n_lipid=int(rng.integers(0, 16)), n_vacuoles=int(rng.integers(0, 9)),
        organelle_density=rng.uniform(0.35, 0.9), mito_density=rng.uniform(0.06, 0.2),
    )


def _angle_diff(a, b):
    return np.angle(np.exp(1j * (a - b)))


def _nucleus_radius_mod(phi: np.ndarray, p: CellParams) -> np.ndarray:
    sp = p.shape_params
    mod = np.ones_like(phi)
    for k, amp, ph in sp.get("harmonics", []):
        mod += amp * np.cos(k * phi + ph)
    if p.shape == "lobed":
        mod += sp["lobe_amp"] * np.cos(sp["lobes"] * phi + sp["lobe_phase"])
    if p.shape == "kidney":
        mod -= sp["dent"] * np.exp(-_angle_diff(phi, sp["dent_angle"]) ** 2 / (2 * sp["dent_width"] ** 2))
    return np.maximum(mod, 0.35).astype(np.float32)


def render_cell(p: CellParams, spacing: tuple[float, float, float], n_z: int, substrate_z_um: float,
                medium_ri: float) -> BodyCell:
    """Render one cell in its body frame.

    Args:
        p: the cell's parameters.
        spacing: (vx, vy, dz) of the fine rendering grid in um.
        n_z: number of fine z-sections of the field.
        substrate_z_um: height of the coverslip above the field's first section.
        medium_ri: RI outside the cell (only used to keep everything above it).
    """
    rng = np.random.default_rng(p.seed)
    vx, vy, dz = spacing
    half = p.radius_um * (1.6 if not p.mitotic else 1.15) + 2.0
    nx, ny = 2 * int(np.ceil(half / vx)) + 1, 2 * int(np.ceil(half / vy)) + 1
    u = ((np.arange(nx) - nx // 2) * vx).astype(np.float32)[:, None]
    v = ((np.arange(ny) - ny // 2) * vy).astype(np.float32)[None, :]
    r = np.sqrt(u**2 + v**2)
    phi = np.arctan2(v, u) - p.orientation
    z_sub = substrate_z_um

    # ---- footprint and 2-D nucleus ------------------------------------------------------------
    R = np.full(r.shape, p.radius_um, np.float32)
    for k, amp, ph in p.harmonics:
        R += (p.radius_um * amp * np.cos(k * phi + ph)).astype(np.float32)
    for ang, width, amp in p.lamellipodia:
        R += (p.radius_um * amp * np.exp(-_angle_diff(phi, ang) ** 2 / (2 * width**2))).astype(np.float32)
    R = np.maximum(R, 0.35 * p.radius_um)
    depth = R - r  # approximate distance to the outline, um (>0 inside)

    if p.mitotic:
        nuc2d = None
        sphere_zc = z_sub + p.a_um * 0.82
        rr = np.clip(R - depth, 0, None)  # = r
        inside = depth > 0
        half_h = np.sqrt(np.clip(R**2 - rr**2, 0, None))
        top = np.where(inside, sphere_zc + half_h, z_sub)
        bottom = np.where(inside, np.maximum(z_sub, sphere_zc - half_h), z_sub)
        dist_out = r.astype(np.float32)
    else:
        ou, ov = p.nucleus_offset_um
        ca, sa = np.cos(p.nucleus_angle), np.sin(p.nucleus_angle)
        pu = (u - ou) * ca + (v - ov) * sa
        qv = -(u - ou) * sa + (v - ov) * ca
        if p.shape == "kidney":
            qv = qv + p.shape_params["bend"] * pu**2
        rn = np.sqrt((pu / p.a_um) ** 2 + (qv / p.b_um) ** 2)
        phin = np.arctan2(qv / p.b_um, pu / p.a_um)
        r2d = (rn / _nucleus_radius_mod(phin, p)).astype(np.float32)
        nuc2d = r2d < 1.0
        dist_out = (ndi.distance_transform_edt(~nuc2d, sampling=(vx, vy)) if nuc2d.any() else r).astype(np.float32)
        # keep a cytoplasm margin of at least 1.5-3 um around the nucleus
        margin = 1.5 + 1.5 * smoothstep(np.float32(p.radius_um / 14.0))
        depth = np.maximum(depth, margin - dist_out)
        inside = depth > 0
        zc = z_sub + p.gap_um + p.c_um
        nuc_top = zc + p.c_um * np.power(np.clip(1 - r2d**p.exponent, 0, 1), 1.0 / p.exponent)
        # height: lamella -> body -> dome over the nucleus (covered by cytoplasm)
        h = p.lamella_um + (p.body_um - p.lamella_um) * smoothstep(depth / p.ramp_um)
        dome = np.where(nuc2d, nuc_top - z_sub + p.cover_um, 0)
        # the cell body stays thick around the nucleus and thins out towards the lamella
        h_edge = p.peri_height * (p.gap_um + 2 * p.c_um)
        h_peri = h_edge * np.exp(-np.power(dist_out / p.peri_decay_um, 1.3))
        h = np.maximum(h, h_peri)
        dome_s = ndi.gaussian_filter(np.maximum(h, dome), 0.8 / vx)
        h = np.maximum(dome_s, dome)
        h += 0.12 * smooth_noise(h.shape, (0.8 / vx, 0.8 / vy), rng)
        h = np.maximum(h * smoothstep(depth / 0.8), 0.0)
        top = z_sub + h
        bottom = np.full(r.shape, z_sub, np.float32)

    # z range covered by this cell
    k0 = max(0, int(np.floor(z_sub / dz)) - 1)
    k1 = min(n_z, int(np.ceil(float(top[inside].max() if inside.any() else z_sub) / dz)) + 2)
    k1 = max(k1, k0 + 1)
    z = ((np.arange(k0, k1)) * dz).astype(np.float32)[None, None, :]
    occ = (np.clip((top[..., None] - z) / dz + 0.5, 0, 1)
           * np.clip((z - bottom[..., None]) / dz + 0.5, 0, 1)
           * np.clip(depth[..., None] / vx + 0.5, 0, 1)).astype(np.float32)
    shape3 = occ.shape
    cell = occ > 0.5

    # ---- cytoplasm ---------------------------------------------------------------------------------
    lam = smoothstep(depth / 4.0) if not p.mitotic else np.ones_like(depth)
    n_c2d = p.n_cyto - 0.007 * (1 - lam)
    if p.perinuclear_rim and not p.mitotic:
        n_c2d = n_c2d + p.rim_delta * np.exp(-dist_out / 1.5) * (dist_out > 0)
    ri = np.broadcast_to(n_c2d[..., None], shape3).astype(np.float32)
    ri = ri + 0.0035 * smooth_noise(shape3, (0.15 / vx, 0.15 / vy, 0.15 / dz), rng)
    ri += 0.0030 * smooth_noise(shape3, (0.9 / vx, 0.9 / vy, 0.9 / dz), rng)
    comp = np.where(cell, COMPARTMENTS["cytoplasm"], COMPARTMENTS["medium"]).astype(np.uint8)

    # ---- nucleus (3-D) ---------------------------------------------------------------------------
    nucleus = np.zeros(shape3, np.float32)
    sd = None
    if p.mitotic:
        # metaphase plate: a disc of condensed chromosomes, normal roughly lateral
        zc = sphere_zc
        ca, sa = np.cos(p.nucleus_angle), np.sin(p.nucleus_angle)
        tilt = rng.uniform(-0.3, 0.3)
        nvec = np.array([ca * np.cos(tilt), sa * np.cos(tilt), np.sin(tilt)], np.float32)
        w = u[..., None] * nvec[0] + v[..., None] * nvec[1] + (z - zc) * nvec[2]
        radial = np.sqrt(np.clip(u[..., None] ** 2 + v[..., None] ** 2 + (z - zc) ** 2 - w**2, 0, None))
        rho = np.sqrt((radial / p.b_um) ** 2 + (w / p.c_um) ** 2)
        arms = smooth_noise(shape3, (0.25 / vx, 0.25 / vy, 0.25 / dz), rng)
        plate = (rho < 1.0) & cell
        dens = np.clip(0.55 + 0.45 * arms, 0, 1) * smoothstep((1 - rho) / 0.25)
        ri = ri + p.delta_nucleus * dens * (rho < 1.0)
        nucleus = np.clip((1 - rho) * min(p.b_um, p.c_um) / vx + 0.5, 0, 1).astype(np.float32) * occ
        comp[plate] = COMPARTMENTS["chromosomes"]
    else:
        # nucleus bounding box (indices)
        ext = max(p.a_um, p.b_um) * 1.6 + 1.0
        i0, i1 = max(0, nx // 2 + int((ou - ext) / vx)), min(nx, nx // 2 + int((ou + ext) / vx) + 1)
        j0, j1 = max(0, ny // 2 + int((ov - ext) / vy)), min(ny, ny // 2 + int((ov + ext) / vy) + 1)
        box = (slice(i0, i1), slice(j0, j1), slice(None))
        box2 = box[:2]
        zb = z
        wz = np.abs((zb - zc) / p.c_um)
        rho = np.power(r2d[box2][..., None] ** p.exponent + wz**p.exponent, 1.0 / p.exponent).astype(np.float32)
        gx, gy, gz = np.gradient(rho, vx, vy, dz)
        grad = np.sqrt(gx**2 + gy**2 + gz**2)
        sd = ((1 - rho) / np.maximum(grad, 1e-3)).astype(np.float32)  # ~distance inside the surface (um)
        sd = np.minimum(sd, 50.0)
        nuc_occ = np.clip(sd / vx + 0.5, 0, 1).astype(np.float32) * occ[box]
        nucleus[box] = nuc_occ
        inside_n = nuc_occ > 0.5
        bshape = nuc_occ.shape
        # nucleoplasm: local cytoplasm level + delta; chromatin texture (smoother than cytoplasm)
        chrom = p.chromatin_amp * smooth_noise(bshape, (0.4 / vx, 0.4 / vy, 0.4 / dz), rng)
        chrom += 0.0012 * smooth_noise(bshape, (0.12 / vx, 0.12 / vy, 0.12 / dz), rng)
        chrom += p.periphery_amp * np.exp(-np.clip(sd, 0, None) / 0.45)
        vol_um3 = float(inside_n.sum()) * vx * vy * dz
        n_cc = int(rng.poisson(0.06 * vol_um3))
        pts = np.argwhere(inside_n)
        if n_cc and len(pts):
            sel = pts[rng.integers(0, len(pts), n_cc)] + rng.uniform(-0.5, 0.5, (n_cc, 3))
            chrom += splat(bshape, sel, rng.uniform(0.003, 0.008, n_cc), (0.2 / vx, 0.2 / vy, 0.2 / dz))
        n_nuc_base = float(np.mean(n_c2d[box2][nuc2d[box2]])) if nuc2d[box2].any() else p.n_cyto
        n_nuc = n_nuc_base + p.delta_nucleus
        nuc_ri = n_nuc + chrom
        # nucleoli: irregular dense bodies well inside the nucleus
        nl_mask = np.zeros(bshape, bool)
        lo, hi = p.nucleolus_delta
        xs = ((np.arange(i0, i1) - nx // 2) * vx).astype(np.float32)[:, None, None]
        ys = ((np.arange(j0, j1) - ny // 2) * vy).astype(np.float32)[None, :, None]
        deep = np.argwhere(sd > 1.5)
        for _ in range(p.n_nucleoli):
            if not len(deep):
                break
            ci = deep[rng.integers(len(deep))]
            cx, cy, cz = xs[ci[0], 0, 0], ys[0, ci[1], 0], zb[0, 0, ci[2]]
            cz = zc + np.clip(cz - zc, -0.35 * p.c_um, 0.35 * p.c_um)
            rad = rng.uniform(0.8, 1.8) * np.array([1.0, rng.uniform(0.65, 1.0), rng.uniform(0.6, 0.9)])
            rad[2] = min(rad[2], 0.6 * p.c_um)
            ang = rng.uniform(0, np.pi)
            du = (xs - cx) * np.cos(ang) + (ys - cy) * np.sin(ang)
            dv = -(xs - cx) * np.sin(ang) + (ys - cy) * np.cos(ang)
            rr = np.sqrt((du / rad[0]) ** 2 + (dv / rad[1]) ** 2 + ((zb - cz) / rad[2]) ** 2)
            wob = 0.18 * smooth_noise(bshape, (0.3 / vx, 0.3 / vy, 0.3 / dz), rng)
            m = (rr + wob < 1.0) & inside_n
            gran = 0.004 * smooth_noise(bshape, (0.1 / vx, 0.1 / vy, 0.1 / dz), rng)
            nuc_ri = np.where(m, n_nuc + rng.uniform(lo, hi) + gran, nuc_ri)
            # perinucleolar heterochromatin shell
            shell = (rr + wob >= 1.0) & (rr + wob < 1.35) & inside_n
            nuc_ri = np.where(shell, nuc_ri + 0.003, nuc_ri)
            nl_mask |= m
        if p.envelope:
            env = (sd > 0) & (sd < 0.18) & inside_n
            nuc_ri = np.where(env, nuc_ri + p.envelope_delta, nuc_ri)
        else:
            env = np.zeros(bshape, bool)
        ri[box] = ri[box] * (1 - nuc_occ) + nuc_ri * nuc_occ
        cbox = comp[box]
        cbox[inside_n] = COMPARTMENTS["nucleoplasm"]
        cbox[env] = COMPARTMENTS["envelope"]
        cbox[nl_mask] = COMPARTMENTS["nucleolus"]
        comp[box] = cbox

    # ---- organelles in the cytoplasm -------------------------------------------------------------
    cyto = cell & (nucleus < 0.5)
    cyto_vol = float(cyto.sum()) * vx * vy * dz
    peri = np.exp(-dist_out / 3.0)  # organelles crowd around the nucleus
    def sample_points(n):
        if n <= 0:
            return np.zeros((0, 3))
        cand = rng.uniform([0, 0, 0], shape3, (n * 4, 3))
        idx = np.minimum(cand.astype(int), np.asarray(shape3) - 1)
        ok = cyto[idx[:, 0], idx[:, 1], idx[:, 2]]
        ok &= rng.random(len(cand)) < 0.35 + 0.65 * peri[idx[:, 0], idx[:, 1]]
        return cand[ok][:n]
    n_punct = int(rng.poisson(p.organelle_density * cyto_vol))
    pts = sample_points(n_punct)
    peaks = np.where(rng.random(len(pts)) < 0.2, -rng.uniform(0.004, 0.009, len(pts)), rng.uniform(0.006, 0.02, len(pts)))
    # mitochondria: short persistent random walks lying mostly in the x-y plane
    n_mito = int(rng.poisson(p.mito_density * cyto_vol))
    starts = sample_points(n_mito)
    walk = []
    step = 0.12
    for s in starts:
        n_steps = int(rng.integers(5, 22))
        th = rng.uniform(0, 2 * np.pi)
        turns = np.cumsum(rng.normal(0, 0.25, n_steps))
        dxy = step * np.stack([np.cos(th + turns) / vx, np.sin(th + turns) / vy, rng.normal(0, 0.15, n_steps) / dz], 1)
        walk.append(s + np.cumsum(dxy, 0))
    if walk:
        wp = np.concatenate(walk)
        idx = np.clip(np.round(wp).astype(int), 0, np.asarray(shape3) - 1)
        wp = wp[cyto[idx[:, 0], idx[:, 1], idx[:, 2]]]
        pts = np.concatenate([pts, wp])
        peaks = np.concatenate([peaks, np.full(len(wp), rng.uniform(0.006, 0.012))])
    org = splat(shape3, pts, peaks, (0.11 / vx, 0.11 / vy, 0.13 / dz))
    org *= cyto
    ri += org
    comp[(org > 0.006) & cyto] = COMPARTMENTS["organelle"]

    # large vesicles/vacuoles (darker) and lipid droplets (brightest), explicit spheres
    def spheres(n, rmin, rmax, value_fn, code):
        done = 0
        for _ in range(n * 30):
            if done >= n:
                break
            c = rng.uniform([0, 0, 0], shape3)
            ci = np.minimum(c.astype(int), np.asarray(shape3) - 1)
            if not cyto[tuple(ci)] or rng.random() > 0.3 + 0.7 * peri[ci[0], ci[1]]:
                continue
            rad = rng.uniform(rmin, rmax)
            # fit the sphere into the local cell thickness
            loc_h = float(top[ci[0], ci[1]] - bottom[ci[0], ci[1]])
            rad = min(rad, 0.45 * loc_h)
            if rad < 0.18:
                continue
            zc_ = bottom[ci[0], ci[1]] + loc_h * rng.uniform(0.35, 0.65)
            lo_ = [max(0, int(ci[0] - rad / vx) - 1), max(0, int(ci[1] - rad / vy) - 1)]
            hi_ = [min(shape3[0], int(ci[0] + rad / vx) + 2), min(shape3[1], int(ci[1] + rad / vy) + 2)]
            sx = ((np.arange(lo_[0], hi_[0]) - c[0]) * vx)[:, None, None]
            sy = ((np.arange(lo_[1], hi_[1]) - c[1]) * vy)[None, :, None]
            sz = (z - zc_)
            dist = np.sqrt(sx**2 + sy**2 + sz**2)
            w = np.clip((rad - dist) / vx + 0.5, 0, 1).astype(np.float32)
            sl = (slice(lo_[0], hi_[0]), slice(lo_[1], hi_[1]), slice(None))
            w *= cyto[sl]
            if w.sum() == 0:
                continue
            ri[sl] = ri[sl] * (1 - w) + value_fn() * w
            comp[sl][w > 0.5] = code
            done += 1
    spheres(p.n_vacuoles, 0.3, 1.0, lambda: medium_ri + rng.uniform(0.006, 0.016), COMPARTMENTS["vacuole"])
    spheres(p.n_lipid, 0.25, 0.7, lambda: rng.uniform(1.40, 1.48), COMPARTMENTS["lipid_droplet"])

    ri = np.maximum(ri, medium_ri + 0.002)
    ri = np.where(occ > 0, ri, medium_ri).astype(np.float32)
    prio = depth.astype(np.float32).copy()
    if nuc2d is not None:
        prio[nuc2d] += 100.0
    elif p.mitotic:
        prio[inside] += 100.0
    prio[~inside] = -1.0
    return BodyCell(ri=ri, occupancy=occ, nucleus=nucleus, compartments=comp, priority=prio, z0=k0,
                    spacing=(vx, vy, dz), params=p)
