"""Calibration of the nucleus probability: reliability curve, expected calibration error (ECE) and
the decision threshold that maximises the mean per-volume Dice.

All functions take probabilities and binary labels of any shape (flattened inside). The
reliability statistics read at most ``MAX_VOXELS`` voxels, drawn deterministically; Dice is
counted exactly on every voxel.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from osnet_monai.atomic import atomic_output

__all__ = [
    "MAX_VOXELS",
    "subsample",
    "reliability_curve",
    "expected_calibration_error",
    "dice_curve",
    "pick_threshold",
    "choose_threshold",
    "reliability_figure",
    "DEFAULT_CANDIDATES",
]

MAX_VOXELS = 4_000_000
DEFAULT_CANDIDATES = np.linspace(0.05, 0.95, 91)


def subsample(prob, label, max_voxels: int = MAX_VOXELS, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Flattened ``(prob, label)``, at most ``max_voxels`` of them: the same voxels on every call.

    Random positions (seeded), not a stride, which could alias with rows or sections.
    Shapes: any, equal -> ``(N,)``, ``(N,)``.
    """
    prob, label = np.asarray(prob).reshape(-1), np.asarray(label).reshape(-1)
    if prob.shape != label.shape:
        raise ValueError(f"prob and label must have the same number of voxels, got {prob.size} and {label.size}.")
    if prob.size > max_voxels:
        index = np.sort(np.random.default_rng(seed).integers(0, prob.size, max_voxels))
        prob, label = prob[index], label[index]
    return prob, label


def _bin_stats(prob, label, bins: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per equal-width bin of [0, 1]: (counts, positives, sum of probabilities)."""
    if bins < 1:
        raise ValueError(f"bins must be >= 1, got {bins}.")
    prob, label = subsample(prob, label)
    prob = np.clip(prob.astype(np.float64), 0.0, 1.0)
    index = np.minimum((prob * bins).astype(np.int64), bins - 1)  # p = 1 goes to the last bin
    counts = np.bincount(index, minlength=bins)
    positives = np.bincount(index, weights=(label > 0).astype(np.float64), minlength=bins)
    sums = np.bincount(index, weights=prob, minlength=bins)
    return counts, positives, sums


def reliability_curve(prob, label, bins: int = 15) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(bin_centres, observed_frequency, counts)``, each ``(bins,)``, over equal-width bins of [0, 1].

    ``observed_frequency`` is the share of nucleus voxels among those whose probability falls in
    the bin; NaN for empty bins.
    """
    counts, positives, _ = _bin_stats(prob, label, bins)
    centres = (np.arange(bins) + 0.5) / bins
    with np.errstate(invalid="ignore", divide="ignore"):
        observed = np.where(counts > 0, positives / np.maximum(counts, 1), np.nan)
    return centres, observed, counts


def expected_calibration_error(prob, label, bins: int = 15) -> float:
    """ECE = sum_b (n_b / N) |observed frequency_b - mean probability_b| over equal-width bins.

    The nucleus probability against the nucleus frequency (binary, positive class).
    """
    counts, positives, sums = _bin_stats(prob, label, bins)
    filled = counts > 0
    if not filled.any():
        raise ValueError("no voxels to compute the ECE on.")
    gap = np.abs(positives[filled] - sums[filled]) / counts[filled]
    return float((counts[filled] / counts.sum() * gap).sum())


def dice_curve(prob, label, candidates: Sequence[float] = DEFAULT_CANDIDATES) -> np.ndarray:
    """Dice of ``prob >= t`` (as ``AsDiscreted`` thresholds) against ``label`` for every candidate t.

    One pass over the voxels: each voxel is counted at the number of candidates it reaches.
    Empty truth and empty prediction score 1. Shapes: any, equal -> ``(len(candidates),)``.
    """
    t = np.asarray(candidates, dtype=np.float64)
    if t.ndim != 1 or t.size == 0 or np.any(np.diff(t) <= 0):
        raise ValueError("candidates must be a non-empty increasing 1D sequence.")
    prob, label = np.asarray(prob).reshape(-1), np.asarray(label).reshape(-1) > 0
    if prob.shape != label.shape:
        raise ValueError(f"prob and label must have the same number of voxels, got {prob.size} and {label.size}.")
    # reached[i] = how many candidates are <= prob[i]: voxel i is predicted at t_j for j < reached[i]
    reached = np.searchsorted(t, prob, side="right")
    all_hist = np.bincount(reached, minlength=t.size + 1)
    pos_hist = np.bincount(reached[label], minlength=t.size + 1)
    predicted = all_hist[::-1].cumsum()[::-1][1:]  # voxels with reached > j
    true_pos = pos_hist[::-1].cumsum()[::-1][1:]
    truth = int(label.sum())
    denominator = predicted + truth
    return np.where(denominator > 0, 2.0 * true_pos / np.maximum(denominator, 1), 1.0)


def pick_threshold(candidates: Sequence[float], mean_dice: Sequence[float]) -> tuple[float, float]:
    """The candidate of highest mean Dice, ties to the one closest to 0.5: ``(threshold, mean_dice)``."""
    t, score = np.asarray(candidates, dtype=np.float64), np.asarray(mean_dice, dtype=np.float64)
    best = np.flatnonzero(score >= score.max() - 1e-12)
    chosen = best[np.argmin(np.abs(t[best] - 0.5))]
    return float(t[chosen]), float(score[chosen])


def choose_threshold(
    probs: Sequence[np.ndarray], labels: Sequence[np.ndarray], candidates: Sequence[float] = DEFAULT_CANDIDATES
) -> tuple[float, float]:
    """The threshold maximising the mean per-volume Dice over validation volumes: ``(threshold, mean_dice)``.

    Ties go to the candidate closest to 0.5.
    """
    if len(probs) == 0 or len(probs) != len(labels):
        raise ValueError(f"need one label per probability volume and at least one, got {len(probs)} and {len(labels)}.")
    curves = np.stack([dice_curve(p, y, candidates) for p, y in zip(probs, labels)])
    return pick_threshold(candidates, curves.mean(axis=0))


def reliability_figure(prob, label, path: str | os.PathLike, bins: int = 15, title: str | None = None) -> str:
    """Writes a reliability diagram PNG (observed nucleus frequency against probability, voxel
    counts below) to ``path``; returns it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    centres, observed, counts = reliability_curve(prob, label, bins)
    ece = expected_calibration_error(prob, label, bins)
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(4.5, 5.5), sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    top.plot([0, 1], [0, 1], color="0.6", linestyle="--", linewidth=1, label="perfect calibration")
    filled = counts > 0
    top.bar(centres[filled], observed[filled], width=1.0 / bins, edgecolor="black", color="tab:blue", alpha=0.7, label="observed")
    top.set_ylabel("nucleus frequency")
    top.set_xlim(0, 1)
    top.set_ylim(0, 1)
    top.legend(loc="upper left", fontsize=8)
    top.set_title(title or f"Reliability, ECE = {ece:.4f}", fontsize=10)
    bottom.bar(centres, np.maximum(counts, 0.5), width=1.0 / bins, color="0.5", log=True)
    bottom.set_xlabel("predicted nucleus probability")
    bottom.set_ylabel("voxels")
    fig.tight_layout()
    with atomic_output(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)
    return str(path)
