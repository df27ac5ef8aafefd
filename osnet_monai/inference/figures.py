"""Pictures of a segmentation: sections with the nucleus contour (paper Fig. 3) and nuclear
volume and dry mass over time (paper Fig. 4d)."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from osnet_monai.atomic import atomic_output

__all__ = ["overlay_sections", "render_overlay", "representative_sections", "save_overlay", "save_timecourse"]


def _savefig(fig, path: str | os.PathLike) -> None:
    """Writes ``fig`` (a ``matplotlib.figure.Figure``: no pyplot, so no global backend or figure
    list, and safe on the export thread) as a PNG, atomically."""
    with atomic_output(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")


def representative_sections(labels_xyz: np.ndarray, count: int = 3) -> list[int]:
    """z indices across the nuclei's extent (quartiles of the z range with nucleus), or the middle sections."""
    z_with = np.flatnonzero((labels_xyz > 0).any(axis=(0, 1)))
    if z_with.size == 0:
        nz = labels_xyz.shape[2]
        return sorted({int(round(q * (nz - 1))) for q in np.linspace(0.25, 0.75, count)})
    lo, hi = int(z_with[0]), int(z_with[-1])
    return sorted({int(round(lo + q * (hi - lo))) for q in np.linspace(0.2, 0.8, count)})


def overlay_sections(ri_xyz: np.ndarray, labels_xyz: np.ndarray) -> dict:
    """What :func:`render_overlay` draws, cut from a frame: the x-y sections of
    :func:`representative_sections`, the x-z section through the nuclei's mean y, the masks on
    them, and the grey range (1st and 99.8th percentiles of the sections shown). Kept instead of
    the frame until a series' figure is drawn, and the percentiles see only what is drawn.

    Shapes: ``ri_xyz``, ``labels_xyz`` ``(X, Y, Z)`` -> ``xy_ri``, ``xy_mask`` ``(n, X, Y)``, ``xz_ri``,
    ``xz_mask`` ``(X, Z)`` (None for one section).
    """
    zs = representative_sections(labels_xyz)
    mask = labels_xyz > 0
    nx, ny, nz = ri_xyz.shape
    sections = {"shape": (nx, ny, nz), "zs": zs, "xy_ri": np.stack([ri_xyz[:, :, z] for z in zs]),
                "xy_mask": np.stack([mask[:, :, z] for z in zs]), "y": None, "xz_ri": None, "xz_mask": None}
    shown = [sections["xy_ri"].ravel()]
    if nz > 1:  # a 2D section has no x-z view
        per_y = mask.sum(axis=(0, 2))  # nucleus voxels at each y: their mean y, without listing them
        y = int(np.round(int((np.arange(ny) * per_y).sum()) / int(per_y.sum()))) if per_y.any() else ny // 2
        sections.update(y=y, xz_ri=np.array(ri_xyz[:, y, :]), xz_mask=np.array(mask[:, y, :]))
        shown.append(sections["xz_ri"].ravel())
    sections["vmin"], sections["vmax"] = (float(v) for v in np.percentile(np.concatenate(shown), [1, 99.8]))
    return sections


def render_overlay(sections: dict, spacing_um: Sequence[float], path: str | os.PathLike, title: str = "") -> None:
    """Draws :func:`overlay_sections`: x-y sections and an x-z section of RI in grey with the nucleus
    contour in yellow."""
    from matplotlib.figure import Figure

    sx, sy, sz = (float(s) for s in spacing_um[:3])
    nx, ny, nz = sections["shape"]
    zs, vmin, vmax = sections["zs"], sections["vmin"], sections["vmax"]
    with_xz = sections["xz_ri"] is not None
    fig = Figure(figsize=(4 * (len(zs) + with_xz), 4.2))
    axes = fig.subplots(1, len(zs) + with_xz, squeeze=False)
    axes = axes[0]
    for ax, z, ri, mask in zip(axes, zs, sections["xy_ri"], sections["xy_mask"]):
        ax.imshow(ri.T, cmap="gray", vmin=vmin, vmax=vmax, origin="lower", extent=(0, nx * sx, 0, ny * sy))
        if mask.any():
            ax.contour(mask.T.astype(float), levels=[0.5], colors="yellow", linewidths=1.2, origin="lower",
                       extent=(0, nx * sx, 0, ny * sy))
        ax.set_title(f"x-y, z = {z * sz:.1f} um" if with_xz else "x-y section")  # one section: z says nothing
        ax.set_xlabel("x (um)")
        ax.set_ylabel("y (um)")
    if with_xz:
        ax = axes[-1]
        ax.imshow(sections["xz_ri"].T, cmap="gray", vmin=vmin, vmax=vmax, origin="lower", extent=(0, nx * sx, 0, nz * sz))
        if sections["xz_mask"].any():
            ax.contour(sections["xz_mask"].T.astype(float), levels=[0.5], colors="yellow", linewidths=1.2,
                       origin="lower", extent=(0, nx * sx, 0, nz * sz))
        ax.set_title(f"x-z, y = {sections['y'] * sy:.1f} um")
        ax.set_xlabel("x (um)")
        ax.set_ylabel("z (um)")
    fig.suptitle(title)
    _savefig(fig, path)


def save_overlay(
    ri_xyz: np.ndarray,
    labels_xyz: np.ndarray,
    spacing_um: Sequence[float],
    path: str | os.PathLike,
    title: str = "",
) -> None:
    """x-y sections and an x-z section of RI in grey with the nucleus contour in yellow
    (:func:`render_overlay` of :func:`overlay_sections`)."""
    render_overlay(overlay_sections(ri_xyz, labels_xyz), spacing_um, path, title)


def save_timecourse(rows: Sequence[dict], path: str | os.PathLike, title: str = "") -> None:
    """Nuclear volume and dry mass against time, one line per track; a division (a track whose
    ``parent_id`` is set) is drawn as a dotted line from the mother's last point to the daughter's first,
    with a diamond where the daughter starts. 2D rows (area, dry mass per um) are drawn the same way."""
    from matplotlib.figure import Figure

    size_key, mass_key = ("area_um2", "dry_mass_pg_per_um") if rows and "area_um2" in rows[0] else ("volume_um3", "dry_mass_pg")
    fig = Figure(figsize=(10, 3.8))
    ax_volume, ax_mass = fig.subplots(1, 2)
    tracks: dict[int, list[dict]] = {}
    for r in rows:
        tracks.setdefault(int(r["nucleus_id"]), []).append(r)
    colours = {}
    for track_id, mine in sorted(tracks.items()):
        mine.sort(key=lambda r: r["time_s"])
        t_min = [float(r["time_s"]) / 60.0 for r in mine]
        for ax, key in ((ax_volume, size_key), (ax_mass, mass_key)):
            (line,) = ax.plot(t_min, [r[key] for r in mine], "o-", ms=3, label=f"track {track_id}")
            colours[track_id] = line.get_color()
    divisions = 0
    for track_id, mine in tracks.items():
        parent = int(mine[0].get("parent_id") or 0)
        if parent not in tracks:
            continue
        divisions += 1
        last, first = max(tracks[parent], key=lambda r: r["time_s"]), mine[0]
        for ax, key in ((ax_volume, size_key), (ax_mass, mass_key)):
            ax.plot([float(last["time_s"]) / 60.0, float(first["time_s"]) / 60.0], [last[key], first[key]], ":", color=colours[track_id])
            ax.plot(float(first["time_s"]) / 60.0, first[key], "D", color=colours[track_id], ms=6)
    ax_volume.set_xlabel("time (min)")
    ax_volume.set_ylabel("nuclear area (um^2)" if size_key == "area_um2" else "nuclear volume (um^3)")
    ax_mass.set_xlabel("time (min)")
    ax_mass.set_ylabel("dry mass per um (pg/um)" if size_key == "area_um2" else "nuclear dry mass (pg)")
    if rows and len(tracks) <= 12:  # a legend of more tracks hides the curves
        ax_volume.legend(fontsize=8)
    fig.suptitle(title + (f" ({divisions} division{'s' if divisions != 1 else ''}: dotted, diamond)" if divisions else ""))
    fig.tight_layout()
    _savefig(fig, path)
