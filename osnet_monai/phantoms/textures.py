"""Small numerical helpers: smooth random fields and Gaussian splatting, all float32."""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

__all__ = ["smooth_noise", "splat", "smoothstep"]


def smoothstep(x: np.ndarray) -> np.ndarray:
    """0 below 0, 1 above 1, C1-smooth in between."""
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def smooth_noise(shape: tuple[int, ...], sigma_vox: tuple[float, ...], rng: np.random.Generator) -> np.ndarray:
    """Gaussian-filtered white noise with unit standard deviation (float32).

    Large correlation lengths are generated on a coarser grid and linearly upsampled, so the cost does
    not grow with ``sigma``.
    """
    shape = tuple(int(s) for s in shape)
    sigma = np.asarray(sigma_vox, dtype=float)
    factors = np.maximum(1, np.floor(sigma / 1.5)).astype(int)
    small = tuple(int(np.ceil(s / f)) + 2 for s, f in zip(shape, factors))
    noise = rng.standard_normal(small, dtype=np.float32)
    noise = ndi.gaussian_filter(noise, sigma / factors, mode="wrap", truncate=3.0)
    if np.any(factors > 1):
        # map output index i -> small-grid coordinate i / f (+ half a cell), linear interpolation
        axes = [np.arange(s, dtype=np.float32) / f + 0.5 for s, f in zip(shape, factors)]
        out = noise
        for axis, coords in enumerate(axes):
            if factors[axis] == 1:
                out = np.take(out, np.arange(shape[axis]), axis=axis)
                continue
            lo = np.floor(coords).astype(int)
            w = (coords - lo).astype(np.float32)
            shp = [1] * len(shape)
            shp[axis] = -1
            w = w.reshape(shp)
            out = np.take(out, lo, axis=axis) * (1 - w) + np.take(out, lo + 1, axis=axis) * w
        noise = out
    else:
        noise = noise[tuple(slice(0, s) for s in shape)]
    std = float(noise.std())
    return (noise / (std if std > 0 else 1.0)).astype(np.float32)


def splat(
    shape: tuple[int, int, int],
    points_vox: np.ndarray,
    peaks: np.ndarray,
    sigma_vox: tuple[float, float, float],
) -> np.ndarray:
    """Sum of Gaussian blobs with the given peak heights at (fractional) voxel positions."""
    out = np.zeros(shape, np.float32)
    if len(points_vox) == 0:
        return out
    idx = np.round(points_vox).astype(int)
    keep = np.all((idx >= 0) & (idx < np.asarray(shape)), axis=1)
    idx, peaks = idx[keep], peaks[keep]
    # the peak of a blurred unit impulse, to convert peak heights into impulse weights
    probe_shape = tuple(int(2 * np.ceil(3 * s) + 1) for s in sigma_vox)
    probe = np.zeros(probe_shape, np.float32)
    probe[tuple(p // 2 for p in probe_shape)] = 1.0
    norm = float(ndi.gaussian_filter(probe, sigma_vox, truncate=3.0).max())
    np.add.at(out, (idx[:, 0], idx[:, 1], idx[:, 2]), (peaks / norm).astype(np.float32))
    return ndi.gaussian_filter(out, sigma_vox, truncate=3.0)
