"""Honesty checks of the phantoms: how well a pointwise RI rule, tuned on the ground truth, could do."""

from __future__ import annotations

import numpy as np

__all__ = ["best_threshold_dice", "best_band_dice", "compartment_stats", "second_moment_widths"]


def _histograms(image: np.ndarray, label: np.ndarray, bins: int):
    image = np.asarray(image, np.float64).ravel()
    label = np.asarray(label).ravel() > 0
    lo, hi = np.percentile(image, [0.01, 99.99])
    edges = np.linspace(lo, hi, bins + 1)
    pos, _ = np.histogram(np.clip(image[label], lo, hi), edges)
    neg, _ = np.histogram(np.clip(image[~label], lo, hi), edges)
    return edges, pos.astype(np.float64), neg.astype(np.float64)


def best_threshold_dice(image: np.ndarray, label: np.ndarray, bins: int = 512) -> tuple[float, float]:
    """Best Dice of ``image > t`` or ``image < t`` over all thresholds t, chosen with the label.

    Returns (dice, threshold).
    """
    edges, pos, neg = _histograms(image, label, bins)
    P = pos.sum()
    best = (0.0, float(edges[0]))
    for p_, n_, sign in ((pos[::-1].cumsum()[::-1], neg[::-1].cumsum()[::-1], 1), (pos.cumsum(), neg.cumsum(), -1)):
        dice = 2 * p_ / (P + p_ + n_ + 1e-12)
        i = int(np.argmax(dice))
        if dice[i] > best[0]:
            best = (float(dice[i]), float(edges[i] if sign > 0 else edges[i + 1]))
    return best


def best_band_dice(image: np.ndarray, label: np.ndarray, bins: int = 256) -> tuple[float, float, float]:
    """Best Dice of ``low <= image <= high`` over all bands, chosen with the label.

    Returns (dice, low, high).
    """
    edges, pos, neg = _histograms(image, label, bins)
    P = pos.sum()
    cp = np.concatenate([[0.0], pos.cumsum()])
    cn = np.concatenate([[0.0], neg.cumsum()])
    tp = cp[None, 1:] - cp[:-1, None]  # [i, j]: bins i..j
    fp = cn[None, 1:] - cn[:-1, None]
    dice = np.where(tp > 0, 2 * tp / (P + tp + fp + 1e-12), 0.0)
    dice = np.triu(dice)
    i, j = np.unravel_index(int(np.argmax(dice)), dice.shape)
    return float(dice[i, j]), float(edges[i]), float(edges[j + 1])


def compartment_stats(ri: np.ndarray, compartments: np.ndarray, codes: dict[str, int]) -> dict[str, dict[str, float]]:
    """Mean, 5th/95th percentiles, max and voxel count of ``ri`` per compartment."""
    out = {}
    for name, code in codes.items():
        vals = np.asarray(ri)[np.asarray(compartments) == code]
        if vals.size == 0:
            continue
        p5, p95 = np.percentile(vals, [5, 95])
        out[name] = {"mean": float(vals.mean()), "p5": float(p5), "p95": float(p95), "max": float(vals.max()),
                     "count": int(vals.size)}
    return out


def second_moment_widths(volume: np.ndarray, spacing: tuple[float, float, float], fraction: float = 0.5):
    """RMS widths (um) along x, y, z of the part of a blob above ``fraction`` of its peak."""
    v = np.asarray(volume, np.float64)
    w = np.where(v >= fraction * v.max(), v, 0.0)
    total = w.sum()
    widths = []
    for axis, s in enumerate(spacing):
        coords = np.arange(v.shape[axis]) * s
        shape = [1, 1, 1]
        shape[axis] = -1
        c = coords.reshape(shape)
        mean = (w * c).sum() / total
        widths.append(float(np.sqrt((w * (c - mean) ** 2).sum() / total)))
    return tuple(widths)
