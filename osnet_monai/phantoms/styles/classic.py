"""Style ``classic``: the project's first phantom engine (``cells``, ``field``, ``optics``) under
instruments drawn over the full ODT range.

Cells are star-shaped adherent footprints with superellipsoid nuclei, textured by Gaussian-filtered
noise and splatted organelles; imaging is the first-order (Born/Rytov) transfer function with the
missing cone in Fourier space, an effective regularised cone recovery and Gerchberg-Papoulis
non-negativity iterations; artefacts are Gaussian-enveloped fringes and a background tilt.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from ..field import render_field
from ..presets import Preset
from .base import NUCLEUS_DELTA_RANGE, StyleField, draw_acquisition, style_rng

__all__ = ["DESCRIPTION", "render"]

DESCRIPTION = (
    "the first engine: star-shaped adherent cells, Fourier transfer function with missing cone and "
    "non-negativity fill, Gaussian-enveloped fringes"
)


def render(seed: int, index: int, frames: int = 1) -> StyleField:
    """Field ``index`` of ``seed``: float32 RI (X, Y, Z[, T]) with its nucleus label."""
    rng = style_rng("classic", seed, index)
    acq = draw_acquisition(rng)
    nonneg = int(rng.integers(0, 8)) if rng.random() < 0.7 else 0
    preset = Preset(
        name="classic",
        description="drawn by the classic style",
        voxel_size_um=acq.voxel_size_um,
        field_shape=acq.field_shape,
        wavelength_um=acq.wavelength_um,
        na_objective=acq.na_objective,
        na_condenser=acq.na_illumination,
        medium_ri=acq.medium_ri,
        noise_std=acq.noise_std,
        dtype=acq.storage,
        nonneg_fill=nonneg > 0,
        nonneg_iterations=nonneg,
        cone_recovery=float(rng.uniform(0.4, 0.95)),
        recovery_decay_per_um=float(rng.uniform(0.15, 0.4)),
        time_step_s=acq.time_step_s,
        cell_density=float(rng.uniform(0.8, 2.4)),
        substrate_z_um=float(rng.uniform(1.5, 4.0)),
    )
    delta = float(rng.uniform(*NUCLEUS_DELTA_RANGE))
    field = render_field(
        preset, seed=int(rng.integers(0, 2**31 - 1)), frames=frames, randomise=False,
        nucleus_delta_mean=delta, fringes=bool(rng.random() < 0.4),
    )
    image = field.image
    # a slow background tilt and offset, as an imperfect background subtraction leaves
    X, Y = image.shape[:2]
    gx, gy = rng.uniform(-0.002, 0.002, 2)
    tilt = (gx * np.linspace(-0.5, 0.5, X)[:, None] + gy * np.linspace(-0.5, 0.5, Y)[None, :]).astype(np.float32)
    tilt += np.float32(rng.uniform(-0.001, 0.001))
    image = image + (tilt[:, :, None, None] if image.ndim == 4 else tilt[:, :, None])
    nuclei = np.zeros(field.label.shape, np.uint16)
    for t in range(field.label.shape[3] if field.label.ndim == 4 else 1):
        sl = (..., t) if field.label.ndim == 4 else (...,)
        nuclei[sl] = ndi.label(field.label[sl])[0]
    return StyleField(
        image=image.astype(np.float32), label=field.label.astype(np.uint8), acquisition=acq, style="classic",
        nuclei=nuclei, params={"nucleus_delta_mean": delta, "nonneg_iterations": nonneg,
                               "cone_recovery": preset.cone_recovery, "cells": len(field.cells)},
    )
