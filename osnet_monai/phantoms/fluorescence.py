"""A simulated nuclear stain channel (DAPI/Hoechst-like), recorded next to the RI as the instrument does.

The paper's cross-modality validation thresholds DAPI or Hoechst fluorescence taken on the same
instrument (z-stacked epi-fluorescence with 3D deconvolution, or confocal). What makes such a mask
differ from the truth, and what is simulated here, per field:

- the stain: intensity proportional to the DNA density in the nucleus label, with chromatin
  heterogeneity (smooth texture) and dim nucleolus-like holes;
- the optics: a Gaussian point spread, long along z (widefield after deconvolution, or confocal);
- the sampling: the fluorescence z-step a multiple of the RI's, the grid's z-origin recorded as
  ``OffsetZ`` (the focal shift between the two paths), with a small error;
- a lateral misregistration the file does not record (tenths of a micrometre);
- photobleaching from frame to frame, shot noise, camera offset and read noise (uint16 counts).

Everything random comes from the field's own generator for this channel, so adding it changes no RI.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from .textures import smooth_noise

__all__ = ["Stain", "FluorescenceStack", "draw_stain", "render_fluorescence"]

MODALITIES = ("widefield", "confocal")


@dataclass(frozen=True)
class Stain:
    """One field's stain, optics and camera (drawn by :func:`draw_stain`)."""

    name: str  # "DAPI" or "Hoechst"
    modality: str  # one of MODALITIES
    psf_sigma_um: tuple[float, float]  # Gaussian sigma (lateral, axial)
    z_step_factor: int  # fluorescence z-step / RI z-step
    photons: float  # expected photons per voxel of dense chromatin in frame 0
    background: float  # camera offset (counts)
    read_noise: float  # counts, standard deviation
    bleach_per_frame: float  # fraction of the signal lost per frame
    offset_um: tuple[float, float, float]  # true displacement of the fluorescence grid (x, y, z)
    recorded_offset_z_um: float  # what the file records as OffsetZ
    texture: float  # chromatin heterogeneity (relative amplitude)
    nucleolus_holes: int  # dim DNA-poor blobs per field


@dataclass
class FluorescenceStack:
    """``counts`` uint16 (T, Z, Y, X) on the fluorescence grid; its voxel size and recorded z-origin."""

    counts: np.ndarray
    voxel_size_um: tuple[float, float, float]
    offset_z_um: float
    stain: Stain


def draw_stain(rng: np.random.Generator) -> Stain:
    """A plausible DAPI or Hoechst acquisition on a holotomography microscope's fluorescence path."""
    modality = str(rng.choice(MODALITIES, p=[0.6, 0.4]))
    lateral = float(rng.uniform(0.12, 0.22))
    axial = float(rng.uniform(0.5, 0.9) if modality == "widefield" else rng.uniform(0.35, 0.6))
    z_offset = float(rng.uniform(-0.8, 0.8))
    return Stain(
        name=str(rng.choice(["DAPI", "Hoechst"])),
        modality=modality,
        psf_sigma_um=(lateral, axial),
        z_step_factor=int(rng.choice([1, 2, 3])),
        photons=float(rng.uniform(150.0, 1500.0)),
        background=float(rng.uniform(90.0, 110.0)),
        read_noise=float(rng.uniform(1.5, 5.0)),
        bleach_per_frame=float(rng.uniform(0.01, 0.04)),
        offset_um=(float(rng.uniform(-0.3, 0.3)), float(rng.uniform(-0.3, 0.3)), z_offset),
        recorded_offset_z_um=z_offset + float(rng.normal(0.0, 0.05)),
        texture=float(rng.uniform(0.15, 0.4)),
        nucleolus_holes=int(rng.integers(0, 6)),
    )


def _dna_density(nucleus: np.ndarray, voxel_size_um, stain: Stain, rng: np.random.Generator) -> np.ndarray:
    """(X, Y, Z) DNA density: the nucleus label, textured, with dim nucleolus-like holes."""
    vx, vy, vz = voxel_size_um
    sigma = (0.4 / vx, 0.4 / vy, 0.4 / vz)
    density = nucleus.astype(np.float32) * np.clip(1.0 + stain.texture * smooth_noise(nucleus.shape, sigma, rng), 0.2, None)
    inside = np.argwhere(nucleus > 0)
    for _ in range(stain.nucleolus_holes if len(inside) else 0):
        centre = inside[rng.integers(len(inside))] * np.array([vx, vy, vz])
        radius = rng.uniform(0.5, 1.2)
        lo = np.maximum(((centre - radius) / (vx, vy, vz)).astype(int), 0)
        hi = np.minimum(((centre + radius) / (vx, vy, vz)).astype(int) + 2, nucleus.shape)
        box = tuple(slice(a, b) for a, b in zip(lo, hi))
        grids = np.meshgrid(*[(np.arange(a, b) + 0.5) * s - c for a, b, s, c in zip(lo, hi, (vx, vy, vz), centre)],
                            indexing="ij")
        inside_hole = sum(g**2 for g in grids) < radius**2
        density[box][inside_hole] *= np.float32(rng.uniform(0.2, 0.5))
    return density


def render_fluorescence(
    nucleus: np.ndarray, voxel_size_um, stain: Stain, rng: np.random.Generator
) -> FluorescenceStack:
    """The stain channel of a field.

    Args:
        nucleus: the nucleus label on the RI grid, (X, Y, Z) or (X, Y, Z, T).
        voxel_size_um: the RI grid's (x, y, z) voxel size.
        stain: from :func:`draw_stain`.
        rng: the channel's own generator.

    Returns:
        uint16 counts (T, Z', Y, X) on the fluorescence grid: the RI grid's x and y, a z-step of
        ``z_step_factor`` RI steps, voxel ``k``'s centre at ``(k + 0.5) * dz' + recorded OffsetZ`` in
        the RI frame (where RI voxel ``i``'s centre is at ``(i + 0.5) * dz``).
    """
    series = nucleus if nucleus.ndim == 4 else nucleus[..., None]
    vx, vy, vz = (float(s) for s in voxel_size_um)
    n_x, n_y, n_z, n_t = series.shape
    factor = int(stain.z_step_factor)
    dz_fl = vz * factor
    n_zfl = max(1, int(np.ceil(n_z / factor)))
    lateral, axial = stain.psf_sigma_um
    dx, dy, dzo = stain.offset_um
    # RI-grid (fractional) z index of each fluorescence voxel centre, the true offset included
    z_index = ((np.arange(n_zfl) + 0.5) * dz_fl + dzo) / vz - 0.5
    out = np.empty((n_t, n_zfl, n_y, n_x), np.uint16)
    for t in range(n_t):
        density = _dna_density(series[..., t], (vx, vy, vz), stain, rng)
        blurred = ndi.gaussian_filter(density, (lateral / vx, lateral / vy, axial / vz), mode="constant")
        # the whole field shifted by the unrecorded lateral misregistration (linear interpolation)
        coords = np.meshgrid(np.arange(n_x) + dx / vx, np.arange(n_y) + dy / vy, z_index, indexing="ij")
        sampled = ndi.map_coordinates(blurred, coords, order=1, mode="constant", cval=0.0)
        expected = stain.photons * (1.0 - stain.bleach_per_frame) ** t * np.clip(sampled, 0.0, None)
        counts = rng.poisson(expected) + stain.background + rng.normal(0.0, stain.read_noise, expected.shape)
        out[t] = np.clip(np.round(counts), 0, 65535).astype(np.uint16).transpose(2, 1, 0)
    return FluorescenceStack(counts=out, voxel_size_um=(vx, vy, dz_fl), offset_z_um=stain.recorded_offset_z_um, stain=stain)
