"""Pictures of a segmentation: sections with the nucleus contour (paper Fig. 3) and nuclear
volume and dry mass over time (paper Fig. 4d)."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from osnet_monai.atomic import atomic_output

__all__ = ["representative_sections", "save_overlay", "save_timecourse"]


def _savefig(fig, path: str | os.PathLike) -> None:
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


def save_overlay(
    ri_xyz: np.ndarray,
    labels_xyz: np.ndarray,
    spacing_um: Sequence[float],
    path: str | os.PathLike,
    title: str = "",
) -> None:
    """x-y sections and an x-z section of RI in grey with the nucleus contour in yellow."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sx, sy, sz = (float(s) for s in spacing_um[:3])
    zs = representative_sections(labels_xyz)
    vmin, vmax = np.percentile(ri_xyz, [1, 99.8])
    nx, ny, nz = ri_xyz.shape
    with_xz = nz > 1  # a 2D section has no x-z view
    fig, axes = plt.subplots(1, len(zs) + with_xz, figsize=(4 * (len(zs) + with_xz), 4.2), squeeze=False)
    axes = axes[0]
    for ax, z in zip(axes, zs):
        ax.imshow(ri_xyz[:, :, z].T, cmap="gray", vmin=vmin, vmax=vmax, origin="lower", extent=(0, nx * sx, 0, ny * sy))
        if labels_xyz[:, :, z].any():
            ax.contour(
                (labels_xyz[:, :, z] > 0).T.astype(float), levels=[0.5], colors="yellow", linewidths=1.2,
                origin="lower", extent=(0, nx * sx, 0, ny * sy),
            )
        ax.set_title(f"x-y, z = {z * sz:.1f} um" if with_xz else "x-y section")  # one section: z says nothing
        ax.set_xlabel("x (um)")
        ax.set_ylabel("y (um)")
    mask = labels_xyz > 0
    if not with_xz:
        fig.suptitle(title)
        _savefig(fig, path)
        plt.close(fig)
        return
    y = int(np.round(np.argwhere(mask)[:, 1].mean())) if mask.any() else ny // 2
    ax = axes[-1]
    ax.imshow(ri_xyz[:, y, :].T, cmap="gray", vmin=vmin, vmax=vmax, origin="lower", extent=(0, nx * sx, 0, nz * sz))
    if mask[:, y, :].any():
        ax.contour(mask[:, y, :].T.astype(float), levels=[0.5], colors="yellow", linewidths=1.2, origin="lower", extent=(0, nx * sx, 0, nz * sz))
    ax.set_title(f"x-z, y = {y * sy:.1f} um")
    ax.set_xlabel("x (um)")
    ax.set_ylabel("z (um)")
    fig.suptitle(title)
    _savefig(fig, path)
    plt.close(fig)


def save_timecourse(rows: Sequence[dict], path: str | os.PathLike, title: str = "") -> None:
    """Nuclear volume and dry mass against time, one line per tracked nucleus."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_volume, ax_mass) = plt.subplots(1, 2, figsize=(10, 3.8))
    for nucleus_id in sorted({int(r["nucleus_id"]) for r in rows}):
        mine = sorted((r for r in rows if int(r["nucleus_id"]) == nucleus_id), key=lambda r: r["time_s"])
        t_min = [float(r["time_s"]) / 60.0 for r in mine]
        ax_volume.plot(t_min, [r["volume_um3"] for r in mine], "o-", label=f"nucleus {nucleus_id}")
        ax_mass.plot(t_min, [r["dry_mass_pg"] for r in mine], "o-", label=f"nucleus {nucleus_id}")
    ax_volume.set_xlabel("time (min)")
    ax_volume.set_ylabel("nuclear volume (um^3)")
    ax_mass.set_xlabel("time (min)")
    ax_mass.set_ylabel("nuclear dry mass (pg)")
    if rows:
        ax_volume.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    _savefig(fig, path)
    plt.close(fig)
