#!/usr/bin/env python
"""Draw what the synthetic ODT tomograms look like: per rendering style and per preset an x-y and an
x-z section with the nucleus contour, the ground truth before imaging next to the imaged tomogram,
and a time-lapse strip.

    python scripts/draw_phantoms.py [--out docs] [--seed 3] [--only NAME]

Writes ``docs/style_<style>.png``, ``docs/phantoms_<preset>.png``, ``docs/phantoms_timelapse.png``
and ``docs/phantoms_truth.png``.
"""

from __future__ import annotations

import argparse
import pathlib
import textwrap

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from osnet_monai.phantoms import PRESETS  # noqa: E402
from osnet_monai.phantoms.field import render_field  # noqa: E402
from osnet_monai.phantoms.styles import STYLES, get_style, render_style  # noqa: E402


def _window(medium: float) -> tuple[float, float]:
    return medium - 0.004, medium + 0.040


def _sections(image, label, vox):
    """x-y section through the largest nucleus area and x-z section through its centroid row."""
    areas = label.sum(axis=(0, 1))
    z = int(np.argmax(areas)) if areas.max() > 0 else image.shape[2] // 2
    rows = label[:, :, z].sum(axis=0)
    y = int(np.argmax(rows)) if rows.max() > 0 else image.shape[1] // 2  # the row crossing the most nucleus
    return z, y


def _show_xy(ax, img, lab, vox, window, title):
    X, Y = img.shape
    ext = (0, X * vox[0], Y * vox[1], 0)
    ax.imshow(img.T, cmap="gray", vmin=window[0], vmax=window[1], extent=ext, interpolation="nearest")
    if lab.any():
        ax.contour(np.linspace(0, X * vox[0], X), np.linspace(0, Y * vox[1], Y), lab.T.astype(float), [0.5],
                   colors="r", linewidths=0.8)
    ax.set_title(title, fontsize=8)
    ax.set_xlabel("x (um)", fontsize=7)
    ax.set_ylabel("y (um)", fontsize=7)
    ax.tick_params(labelsize=6)


def _show_xz(ax, img, lab, vox, window, title):
    X, Z = img.shape
    ext = (0, X * vox[0], 0, Z * vox[2])
    ax.imshow(img.T, cmap="gray", vmin=window[0], vmax=window[1], extent=ext, origin="lower",
              interpolation="nearest", aspect="equal")
    if lab.any():
        ax.contour(np.linspace(0, X * vox[0], X), np.linspace(0, Z * vox[2], Z), lab.T.astype(float), [0.5],
                   colors="r", linewidths=0.8)
    ax.set_title(title, fontsize=8)
    ax.set_xlabel("x (um)", fontsize=7)
    ax.set_ylabel("z (um)", fontsize=7)
    ax.tick_params(labelsize=6)


def draw_preset(name: str, out: pathlib.Path, seeds: list[int]) -> pathlib.Path:
    fig, axes = plt.subplots(2, len(seeds), figsize=(3.3 * len(seeds), 5.6),
                             gridspec_kw={"height_ratios": [3, 1.3]})
    p = PRESETS[name]
    for col, seed in enumerate(seeds):
        r = render_field(name, seed=seed, index=0)
        vox = r.preset.voxel_size_um
        win = _window(r.preset.medium_ri)
        z, y = _sections(r.image, r.label, vox)
        _show_xy(axes[0, col], r.image[:, :, z], r.label[:, :, z], vox, win,
                 f"{name} seed {seed}: x-y, z = {z * vox[2]:.1f} um\nmedium {r.preset.medium_ri:.4f}, window {win[0]:.3f}-{win[1]:.3f}")
        _show_xz(axes[1, col], r.image[:, y, :], r.label[:, y, :], vox, win, f"x-z at y = {y * vox[1]:.1f} um")
    fig.suptitle(f"preset {name}: voxel {p.voxel_size_um} um, NA {p.na_objective}/{p.na_condenser}, "
                 f"{p.wavelength_um * 1000:.0f} nm, {p.dtype} (red: nucleus label)", fontsize=9)
    fig.tight_layout()
    path = out / f"phantoms_{name}.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def draw_style(name: str, out: pathlib.Path, seeds: list[int]) -> pathlib.Path:
    """Three fields of one rendering style; each its own instrument, so each its own grey window."""
    fig, axes = plt.subplots(2, len(seeds), figsize=(3.3 * len(seeds), 6.4),
                             gridspec_kw={"height_ratios": [3, 1.4]})
    for col, seed in enumerate(seeds):
        f = render_style(name, seed=seed, index=0)
        a = f.acquisition
        vox = a.voxel_size_um
        win = tuple(float(v) for v in np.percentile(f.image, [0.5, 99.8]))
        z, y = _sections(f.image, f.label, vox)
        _show_xy(axes[0, col], f.image[:, :, z], f.label[:, :, z], vox, win,
                 f"seed {seed}: voxel {vox[0]:.3f} x {vox[2]:.2f} um, {a.wavelength_um * 1000:.0f} nm\n"
                 f"NA ill/obj {a.na_illumination:.2f}/{a.na_objective:.2f}, medium {a.medium_ri:.4f}, {a.storage}")
        _show_xz(axes[1, col], f.image[:, y, :], f.label[:, y, :], vox, win,
                 f"x-z at y = {y * vox[1]:.1f} um; window {win[0]:.3f}-{win[1]:.3f}")
    fig.suptitle("\n".join(textwrap.wrap(f"style {name}: {get_style(name).DESCRIPTION} (red: nucleus label)", 110)),
                 fontsize=8)
    fig.tight_layout()
    path = out / f"style_{name}.png"
    fig.savefig(path, dpi=105)
    plt.close(fig)
    return path


def draw_truth(out: pathlib.Path, seed: int) -> pathlib.Path:
    r = render_field("ht2h", seed=seed, return_truth=True)
    vox = r.preset.voxel_size_um
    win = _window(r.preset.medium_ri)
    z, y = _sections(r.image, r.label, vox)
    fig, axes = plt.subplots(2, 3, figsize=(11, 5.8), gridspec_kw={"height_ratios": [3, 1.3]})
    cmap = plt.get_cmap("tab10", 9)
    for col, (vol, title) in enumerate([(r.ri_true, "ground-truth RI"), (r.image, "imaged (ODT model)")]):
        _show_xy(axes[0, col], vol[:, :, z], r.label[:, :, z], vox, win, f"{title}, x-y")
        _show_xz(axes[1, col], vol[:, y, :], r.label[:, y, :], vox, win, f"{title}, x-z")
    X, Y, Z = r.image.shape
    axes[0, 2].imshow(r.compartments[:, :, z].T, cmap=cmap, vmin=-0.5, vmax=8.5, interpolation="nearest",
                      extent=(0, X * vox[0], Y * vox[1], 0))
    axes[0, 2].set_title("compartments: 1 cyto 2 nucleoplasm 3 nucleolus\n4 lipid 5 organelle 6 vacuole 7 envelope", fontsize=8)
    axes[1, 2].imshow(r.compartments[:, y, :].T, cmap=cmap, vmin=-0.5, vmax=8.5, origin="lower",
                      extent=(0, X * vox[0], 0, Z * vox[2]), interpolation="nearest")
    fig.suptitle("ht2h: ground truth vs. imaged - the missing cone elongates along z and lowers RI", fontsize=9)
    fig.tight_layout()
    path = out / "phantoms_truth.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def draw_timelapse(out: pathlib.Path, seed: int, frames: int = 6) -> pathlib.Path:
    r = render_field("ht2h", seed=seed, frames=frames, fringes=True)
    vox = r.preset.voxel_size_um
    win = _window(r.preset.medium_ri)
    z, _ = _sections(r.image[..., 0], r.label[..., 0], vox)
    fig, axes = plt.subplots(1, frames, figsize=(2.6 * frames, 3.0))
    for t in range(frames):
        zt = int(np.argmax(r.label[..., t].sum(axis=(0, 1)))) if r.label[..., t].any() else z
        _show_xy(axes[t], r.image[:, :, zt, t], r.label[:, :, zt, t], vox, win,
                 f"t = {t * r.preset.time_step_s / 60:.0f} min, fringes {r.fringe_amplitudes[t]:.4f}")
    fig.suptitle("ht2h time-lapse: the cells move, turn and deform; fringes grow in later frames", fontsize=9)
    fig.tight_layout()
    path = out / "phantoms_timelapse.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=pathlib.Path, default=pathlib.Path(__file__).resolve().parents[1] / "docs")
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--only", default=None, help="draw only this style or preset (or 'truth', 'timelapse')")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    seeds = [args.seed, args.seed + 1, args.seed + 2]
    for name in STYLES:
        if args.only in (None, name):
            print(draw_style(name, args.out, seeds))
    for name in PRESETS:
        if args.only in (None, name):
            print(draw_preset(name, args.out, seeds))
    if args.only in (None, "truth"):
        print(draw_truth(args.out, args.seed))
    if args.only in (None, "timelapse"):
        print(draw_timelapse(args.out, args.seed))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
