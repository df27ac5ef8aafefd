"""Argument checks shared by the measurement modules; each raises ``ValueError`` naming the bad argument."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def check_spacing(spacing_um: Sequence[float], ndim: int = 3) -> tuple[float, ...]:
    """``ndim`` positive voxel sizes in um, as floats."""
    spacing = tuple(float(s) for s in spacing_um)
    if len(spacing) != ndim or any(s <= 0 for s in spacing):
        raise ValueError(f"spacing_um must be {ndim} positive values, got {spacing_um}.")
    return spacing


def check_labels(labels: np.ndarray, name: str) -> np.ndarray:
    """An integer label array with no negative id."""
    labels = np.asarray(labels)
    if not np.issubdtype(labels.dtype, np.integer) or (labels.size and labels.min() < 0):
        raise ValueError(f"{name} must hold non-negative integers.")
    return labels


def check_labels_and_ri(labels, ri, ndim: int, refractive_increment_ml_per_g: float) -> tuple[np.ndarray, np.ndarray]:
    """The arguments every measurement shares, as arrays of equal ``ndim``-D shape."""
    labels, ri = np.asarray(labels), np.asarray(ri)
    axes = "xyz"[:ndim]
    if labels.ndim != ndim or labels.shape != ri.shape:
        raise ValueError(f"labels_{axes} and ri_{axes} must be {ndim}D of equal shape, got {labels.shape} and {ri.shape}.")
    check_labels(labels, f"labels_{axes}")
    if refractive_increment_ml_per_g <= 0:
        raise ValueError("refractive_increment_ml_per_g must be positive.")
    return labels, ri
