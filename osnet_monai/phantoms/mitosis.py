"""Time-lapse phantoms with instance and lineage ground truth: cells that move, touch and divide.

A *division series* (source name ``mitosis``) is a classic-engine time lapse built for tracking:

- every nucleus and every cell has its own id (``nuclei``, ``cells``: the same id for a nucleus and
  the cell around it), ids follow the Cell Tracking Challenge (CTC) convention: one id per track,
  constant over the frames of the track;
- some interphase nuclei are pressed against a neighbour's (touching nuclei, one boundary between
  them), and cells overlap at their edges (touching cells);
- one or two cells divide: the cell rounds up and its chromatin condenses (prophase), a rounded
  mitotic cell shows a metaphase plate (its label is the chromosome mass, as a DNA stain shows it),
  then two rounded daughters with compact chromatin appear (telophase) and spread apart as
  interphase cells with small nuclei. The mother's track ends at metaphase, each daughter starts a
  new track whose parent is the mother (``tracks``: rows ``(id, first frame, last frame, parent)``,
  the columns of the CTC's ``man_track.txt``);
- the instrument is drawn per series over the full ODT range (:func:`~.styles.base.draw_acquisition`)
  and the volumes are imaged by the classic engine's transfer function (missing cone, cone recovery,
  non-negativity fill, noise), as the ``classic`` style does.

Cells are rendered by :func:`~osnet_monai.phantoms.cells.render_cell` in their body frame and
composited per x-y column as in :func:`~osnet_monai.phantoms.field.render_field` (the column goes to
the cell with the highest priority; nucleus columns win), so the instance truth is the column's owner.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from .cells import NUCLEUS_DELTA_MAX, BodyCell, CellParams, draw_cell, render_cell
from .field import _bilinear_setup, _gather, z_factor_for
from .optics import OdtOptics, simulate_odt
from .presets import Preset
from .styles.base import NUCLEUS_DELTA_RANGE, Acquisition, draw_acquisition, style_rng

__all__ = ["SERIES_NAME", "DIVISION_SERIES_FRAMES", "DivisionSeries", "render_division_series", "lineage_from_instances"]

#: the data-set source name of division series (``osnet-monai phantoms DIR --preset mitosis``)
SERIES_NAME = "mitosis"
#: frames per series when the caller asks for a single frame (a division needs a series)
DIVISION_SERIES_FRAMES = 8
_MIN_FRAMES = 4  # mother, metaphase, telophase, one daughter frame


@dataclass
class DivisionSeries:
    """One rendered division series.

    ``image`` float32 RI (X, Y, Z, T); ``label`` uint8 nucleus mask; ``nuclei`` and ``cells`` uint16
    instance ids (0 background; a cell has the id of its nucleus, ids constant along a track);
    ``tracks`` the lineage, one ``(id, first_frame, last_frame, parent_id)`` per track (parent 0: none).
    """

    image: np.ndarray
    label: np.ndarray
    nuclei: np.ndarray
    cells: np.ndarray
    tracks: list[tuple[int, int, int, int]]
    acquisition: Acquisition
    params: dict = field(default_factory=dict)


@dataclass
class _Track:
    """One planned track: where its cell is, and which body it shows from which frame on."""

    id: int
    parent: int
    start: int  # first frame
    stop: int  # one past the last frame
    centre0: np.ndarray  # (2,) um, field position of the body centre at frame ``start``
    velocity: np.ndarray  # (2,) um per frame
    angle0: float
    omega: float  # rad per frame
    phases: list = field(default_factory=list)  # (first frame, BodyCell), in frame order

    def centre(self, t: int) -> np.ndarray:
        return self.centre0 + self.velocity * (t - self.start)

    def angle(self, t: int) -> float:
        return self.angle0 + self.omega * (t - self.start)

    def body(self, t: int) -> BodyCell:
        return [b for first, b in self.phases if first <= t][-1]


def _instrument(rng: np.random.Generator) -> tuple[Acquisition, Preset]:
    """The series' instrument (the full ODT range, smaller fields than the styles) and its classic-engine preset."""
    acq = draw_acquisition(rng, field_um=(30.0, 42.0), max_lateral=256, max_axial=56)
    # divisions take tens of minutes: frames minutes apart
    acq = dataclasses.replace(acq, time_step_s=float(rng.choice([300.0, 600.0, 900.0])))
    nonneg = int(rng.integers(0, 8)) if rng.random() < 0.7 else 0
    preset = Preset(
        name=SERIES_NAME, description="drawn by the division series",
        voxel_size_um=acq.voxel_size_um, field_shape=acq.field_shape, wavelength_um=acq.wavelength_um,
        na_objective=acq.na_objective, na_condenser=acq.na_illumination, medium_ri=acq.medium_ri,
        noise_std=acq.noise_std, dtype=acq.storage, nonneg_fill=nonneg > 0, nonneg_iterations=nonneg,
        cone_recovery=float(rng.uniform(0.4, 0.95)), recovery_decay_per_um=float(rng.uniform(0.15, 0.4)),
        time_step_s=acq.time_step_s, substrate_z_um=float(rng.uniform(1.5, 3.0)),
    )
    return acq, preset


def _nucleus_radius(p: CellParams) -> float:
    """In-plane radius (um) of a nucleus of the same area as the params' ellipse."""
    return float(np.sqrt(p.a_um * p.b_um))


def _prophase(p: CellParams, rng) -> CellParams:
    """The same cell rounding up (smaller, thicker footprint) with its chromatin condensing (denser, coarser)."""
    return dataclasses.replace(
        p, radius_um=max(0.72 * p.radius_um, p.a_um + 3.0), lamellipodia=[],
        harmonics=[(k, 0.4 * a, ph) for k, a, ph in p.harmonics], body_um=1.4 * p.body_um,
        peri_height=0.95, b_um=max(p.b_um, 0.9 * p.a_um),
        delta_nucleus=p.delta_nucleus + float(rng.uniform(0.004, 0.008)),
        chromatin_amp=1.8 * p.chromatin_amp, n_nucleoli=max(0, p.n_nucleoli - 1),
    )


def _telophase(rng, scale: float, delta: float) -> CellParams:
    """A rounded daughter just after cytokinesis: small thick cell, compact dense chromatin, no nucleoli."""
    p = draw_cell(rng, nucleus_delta_mean=delta, scale=0.7 * scale)
    # a daughter's chromatin: 5-7 um across, 50-100 um^3 (a set of chromosomes does not shrink with the field)
    a = float(rng.uniform(2.8, 3.5)) * max(scale, 0.85)
    return dataclasses.replace(
        p, radius_um=a + float(rng.uniform(2.0, 3.0)), lamellipodia=[],
        harmonics=[(k, 0.3 * amp, ph) for k, amp, ph in p.harmonics], nucleus_offset_um=(0.0, 0.0),
        a_um=a, b_um=a * float(rng.uniform(0.8, 0.95)), c_um=float(rng.uniform(1.8, 2.4)),
        shape="ellipsoid", body_um=float(rng.uniform(2.5, 3.5)), lamella_um=float(rng.uniform(0.8, 1.2)),
        peri_height=0.95, delta_nucleus=float(rng.uniform(0.006, 0.014)), chromatin_amp=float(rng.uniform(0.004, 0.007)),
        n_nucleoli=0, envelope=False,
    )


def _interphase(rng, scale: float, delta: float, centred: bool = False) -> CellParams:
    p = draw_cell(rng, nucleus_delta_mean=delta, scale=scale)
    return dataclasses.replace(p, nucleus_offset_um=(0.0, 0.0)) if centred else p


def _inside(xy: np.ndarray, r: float, size: tuple[float, float], drift: float) -> bool:
    return bool(np.all(xy - r - drift >= 1.0) and np.all(xy + r + drift <= np.asarray(size) - 1.0))


def _plan(rng, preset: Preset, frames: int, delta: float, render) -> tuple[list[_Track], dict]:
    """Tracks of one series: dividing cells with their phases, neighbours with touching nuclei."""
    X, Y, _ = preset.field_shape
    vx, vy, _ = preset.voxel_size_um
    size = (X * vx, Y * vy)
    scale = float(np.clip(min(size) / 40.0, 0.6, 1.0))
    tracks: list[_Track] = []
    nuclei: list[tuple[np.ndarray, float, np.ndarray]] = []  # (centre at frame 0, radius, velocity) of placed cells
    n_div = 1 + int(rng.random() < 0.4 and min(size) >= 34.0)
    divisions = []

    # dividing cells: mother phases, then two daughters
    for k in range(n_div):
        td = int(rng.integers(3, frames - 1)) if frames >= 6 else frames - 2  # first frame of the daughters
        p = _interphase(rng, scale, delta, centred=True)
        mitotic = draw_cell(rng, mitotic=True, scale=scale)
        # a metaphase plate of 5-8 um across and 2-3 um thick (the classic cell's is half as wide): chromatin
        # does not shrink with the field as the cells drawn for it do
        mitotic = dataclasses.replace(mitotic, b_um=min(float(rng.uniform(3.0, 4.2)) * max(scale, 0.85), 0.75 * mitotic.a_um),
                                      c_um=float(rng.uniform(1.0, 1.4)))
        # what neighbours keep clear of: the rounded cell, and the daughters moving apart
        r_cell = mitotic.a_um + 3.0
        v = rng.normal(0, 0.25, 2)
        for _ in range(200):
            c = np.asarray(size) * (rng.uniform(0.35, 0.65, 2) if k == 0 else rng.uniform(0.2, 0.8, 2))
            if _inside(c, 0.6 * r_cell, size, 0.0) and all(np.hypot(*(c - c2)) > r_cell + r2 + 4.0 for c2, r2, _ in nuclei):
                break
        mother = _Track(len(tracks) + 1, 0, 0, td, c, v, float(rng.uniform(0, 2 * np.pi)), float(rng.normal(0, 0.03)))
        mother.phases = [(0, render(p)), (max(0, td - 2), render(_prophase(p, rng))), (td - 1, render(mitotic))]
        mother.phases = [ph for i, ph in enumerate(mother.phases) if i == len(mother.phases) - 1 or ph[0] < mother.phases[i + 1][0]]
        tracks.append(mother)
        nuclei.append((c, r_cell, v))
        # daughters along the metaphase plate's normal (the plate lies across the division axis)
        axis_angle = mother.angle(td - 1) + mitotic.nucleus_angle
        axis = np.array([np.cos(axis_angle), np.sin(axis_angle)])
        centre = mother.centre(td)
        ids = []
        for sign in (-1.0, 1.0):
            tel = _telophase(rng, scale, delta)
            g1 = _interphase(rng, max(0.8 * scale, 0.6), delta, centred=True)
            sep = 0.5 * float(rng.uniform(1.7, 2.0)) * tel.radius_um
            vd = v + sign * axis * float(rng.uniform(0.5, 0.9)) + rng.normal(0, 0.1, 2)
            d = _Track(0, mother.id, td, frames, centre + sign * sep * axis, vd, float(rng.uniform(0, 2 * np.pi)),
                       float(rng.normal(0, 0.03)))
            d.phases = [(td, render(tel))] + ([(td + 1, render(g1))] if td + 1 < frames else [])
            ids.append(d)
        divisions.append(ids)

    # neighbours: free cells, some with their nucleus pressed against an earlier neighbour's
    n_free = int(rng.integers(2, 5))
    free: list[int] = []
    for _ in range(n_free):
        p = _interphase(rng, scale, delta)
        r = _nucleus_radius(p)
        v = rng.normal(0, 0.25, 2)
        placed = None
        for _try in range(300):
            if free and rng.random() < 0.75:
                # touching: centre distance a bit under the sum of the radii, moving together
                j = free[int(rng.integers(len(free)))]
                c2, r2, v2 = nuclei[j]
                ang = rng.uniform(0, 2 * np.pi)
                c = c2 + (r + r2) * float(rng.uniform(0.85, 0.98)) * np.array([np.cos(ang), np.sin(ang)])
                v = v2.copy()
                others = [n for i, n in enumerate(nuclei) if i != j]
            else:
                c = np.asarray(size) * rng.uniform(0.1, 0.9, 2)
                others = nuclei
            nuc = c + np.asarray(p.nucleus_offset_um)
            if not _inside(nuc, r, size, float(np.hypot(*v)) * (frames - 1)):
                continue
            if all(np.hypot(*(nuc - c2)) > r + r2 + 1.0 for c2, r2, _ in others):
                placed = nuc
                break
        if placed is None:
            continue
        t = _Track(len(tracks) + 1, 0, 0, frames, placed - np.asarray(p.nucleus_offset_um), v, 0.0, 0.0)
        t.phases = [(0, render(p))]
        tracks.append(t)
        nuclei.append((placed, r, v))
        free.append(len(nuclei) - 1)

    for pair in divisions:  # daughters numbered after every cell present at the start
        for d in pair:
            d.id = len(tracks) + 1
            tracks.append(d)
    info = {"dividing": [t.id for t in tracks if t.stop < frames], "scale": round(scale, 3),
            "division_frames": [pair[0].start for pair in divisions]}
    return tracks, info


def lineage_from_instances(
    nuclei: np.ndarray, parents: dict[int, int], cells: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray | None, list[tuple[int, int, int, int]]]:
    """CTC tracks ``(id, first, last, parent)`` of an instance series.

    A track interrupted by missing frames continues under a new id whose parent is the interrupted
    track (the CTC rule for gaps); ``cells`` (the cells of those nuclei, same ids) are relabelled alike.

    Args:
        nuclei: instance ids, shape (X, Y, Z, T).
        parents: planned parent of each id (0 or absent: none); a parent has a smaller id than its children.
        cells: optional cell instance ids with the nuclei's ids, same shape.

    Returns:
        the (possibly relabelled) nuclei and cells, and the tracks sorted by id.

    Examples:
        >>> n = np.zeros((2, 1, 1, 4), np.uint16); n[0, 0, 0, :2] = 1; n[0, 0, 0, 3] = 1; n[1, 0, 0, 2:] = 2
        >>> lineage_from_instances(n, {2: 1})[2]
        [(1, 0, 1, 0), (2, 2, 3, 1), (3, 3, 3, 1)]
    """
    present: dict[int, list[int]] = {}
    for t in range(nuclei.shape[-1]):
        for i in np.unique(nuclei[..., t]).tolist():
            if i:
                present.setdefault(int(i), []).append(t)
    next_id = max(present, default=0) + 1
    tracks = []
    pieces: dict[int, list[tuple[int, int]]] = {}  # planned id -> (id, last frame) of each of its runs
    nuclei = nuclei.copy()
    cells = None if cells is None else cells.copy()
    for i in sorted(present):
        frames = np.asarray(present[i])
        runs = np.split(frames, np.flatnonzero(np.diff(frames) > 1) + 1)
        # a daughter follows the run of her mother that ended before she appeared
        before = [piece for piece, end in pieces.get(int(parents.get(i, 0)), []) if end < runs[0][0]]
        parent = before[-1] if before else 0
        track_id = i
        for k, run in enumerate(runs):
            if k:
                parent, track_id, next_id = track_id, next_id, next_id + 1
                for t in run.tolist():
                    for arr in (nuclei, cells) if cells is not None else (nuclei,):
                        arr[..., t][arr[..., t] == i] = track_id
            tracks.append((track_id, int(run[0]), int(run[-1]), parent))
            pieces.setdefault(i, []).append((track_id, int(run[-1])))
    return nuclei, cells, sorted(tracks)


def render_division_series(seed: int = 0, index: int = 0, frames: int = DIVISION_SERIES_FRAMES) -> DivisionSeries:
    """Render division series ``index`` of ``seed`` (a pure function of seed, index and frames).

    Args:
        seed, index: which series.
        frames: time points, at least 4 (mother, metaphase, telophase, daughters).

    Returns:
        a :class:`DivisionSeries`; arrays (X, Y, Z, T).
    """
    frames = int(frames)
    if frames < _MIN_FRAMES:
        raise ValueError(f"a division series needs at least {_MIN_FRAMES} frames, got {frames!r}")
    rng = style_rng(SERIES_NAME, seed, index)
    acq, preset = _instrument(rng)
    delta = float(min(rng.uniform(*NUCLEUS_DELTA_RANGE), NUCLEUS_DELTA_MAX))
    X, Y, Z = preset.field_shape
    vx, vy, vz = preset.voxel_size_um
    m = z_factor_for(vz)
    dz = vz / m

    def render(p: CellParams) -> BodyCell:
        return render_cell(p, (vx, vy, dz), Z * m, preset.substrate_z_um, preset.medium_ri)

    tracks, info = _plan(rng, preset, frames, delta, render)
    optics = OdtOptics.from_preset(preset)
    gx, gy, offset = rng.uniform(-0.002, 0.002), rng.uniform(-0.002, 0.002), rng.uniform(-0.001, 0.001)
    tilt = (gx * np.linspace(-0.5, 0.5, X)[:, None] + gy * np.linspace(-0.5, 0.5, Y)[None, :] + offset).astype(np.float32)

    xs = ((np.arange(X) + 0.5) * vx).astype(np.float32)[:, None] * np.ones((1, Y), np.float32)
    ys = ((np.arange(Y) + 0.5) * vy).astype(np.float32)[None, :] * np.ones((X, 1), np.float32)
    images, nuclei, cells = [], [], []
    for t in range(frames):
        contrast = np.zeros((X, Y, Z * m), np.float32)
        nuc = np.zeros_like(contrast)
        occ = np.zeros_like(contrast)
        owner = np.zeros((X, Y), np.uint16)
        best = np.zeros((X, Y), np.float32)
        for track in tracks:
            if not track.start <= t < track.stop:
                continue
            body = track.body(t)
            cx, cy = track.centre(t)
            th = track.angle(t)
            u = np.cos(th) * (xs - cx) + np.sin(th) * (ys - cy)
            v = -np.sin(th) * (xs - cx) + np.cos(th) * (ys - cy)
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
            owner[px, py] = track.id
            k0, k1 = body.z0, body.z0 + body.ri.shape[2]
            o = _gather(body.occupancy, i0, j0, wi, wj)
            for arr, value in ((contrast, _gather(body.ri * body.occupancy, i0, j0, wi, wj) - preset.medium_ri * o),
                               (nuc, _gather(body.nucleus, i0, j0, wi, wj)), (occ, o)):
                arr[px, py, :] = 0.0
                arr[px, py, k0:k1] = value
        out = simulate_odt(
            contrast, preset.voxel_size_um, optics, rng=rng, noise_std=preset.noise_std,
            nonneg_iterations=preset.nonneg_iterations, z_factor=m, cone_recovery=preset.cone_recovery,
            recovery_decay=preset.recovery_decay_per_um,
        )
        images.append(out + tilt[:, :, None] + np.float32(preset.medium_ri))
        nuc_in = nuc.reshape(X, Y, Z, m).mean(axis=3) > 0.5
        cell_in = (occ.reshape(X, Y, Z, m).mean(axis=3) > 0.5) | nuc_in
        nuclei.append(owner[:, :, None] * nuc_in)
        cells.append(owner[:, :, None] * cell_in)
    nuclei_xyzt, cells_xyzt, lineage = lineage_from_instances(
        np.stack(nuclei, axis=-1).astype(np.uint16), {t.id: t.parent for t in tracks}, np.stack(cells, axis=-1).astype(np.uint16)
    )
    params = {
        "cells": len(tracks), "tracks": len(lineage), "divisions": len(info["division_frames"]),
        "nucleus_delta_mean": round(delta, 4), "nonneg_iterations": preset.nonneg_iterations,
        "cone_recovery": round(preset.cone_recovery, 3), **info,
    }
    return DivisionSeries(
        image=np.stack(images, axis=-1).astype(np.float32), label=(nuclei_xyzt > 0).astype(np.uint8),
        nuclei=nuclei_xyzt, cells=cells_xyzt, tracks=lineage, acquisition=acq, params=params,
    )
