"""What a person should look at first: per-frame quality records of a segmentation, and the flags drawn from them.

:class:`QualityRecord` is filled by the writer frame by frame (it sees the nucleus ids, the
probability and the RI while they are in memory) and saved as ``NAME_quality.json``;
:func:`quality_flags` turns a record and the measurement rows into flags for the run report:

- ``no cell``: no cell in the tomogram (or in a frame): RI nowhere above the medium
  (:func:`~osnet_monai.measurements.cell_mask_from_ri`);
- ``no nucleus``: a frame with cell but without nucleus;
- ``field edge``: a nucleus touching the x-y edge of the field (its measurements are truncated);
- ``volume jump``: a tracked nucleus whose volume (area for a 2D section) changes by more than a
  set fraction from one frame to the next (a tracking or segmentation error, or a division);
- ``low probability``: a nucleus whose mean probability is under a set value (the model is unsure).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from osnet_monai.atomic import atomic_output
from osnet_monai.measurements import cell_mask_from_ri

__all__ = ["Flag", "QualityRecord", "quality_flags", "read_quality", "JUMP_FRACTION", "MIN_MEAN_PROBABILITY"]

#: a nucleus volume (area) changing by more than this fraction between frames is flagged
JUMP_FRACTION = 0.3
#: a nucleus whose mean probability is under this is flagged
MIN_MEAN_PROBABILITY = 0.75


def _edge_ids(labels_xyz: np.ndarray) -> set[int]:
    """Ids present on the x-y border of the field, labels (X, Y, Z)."""
    faces = (labels_xyz[0], labels_xyz[-1], labels_xyz[:, 0], labels_xyz[:, -1])
    return {int(i) for face in faces for i in np.unique(face) if i}


@dataclass
class QualityRecord:
    """Per-frame facts of one tomogram's segmentation, for :func:`quality_flags`.

    Args:
        path: the input file.
        name: its output name (``NAME``).
        n_frames: time points.
        spacing_um: voxel size (sx, sy, sz).
    """

    path: str
    name: str
    n_frames: int
    spacing_um: tuple[float, ...]
    frames: list[dict] = field(default_factory=list)

    def add_frame(
        self, frame: int, labels_xyz: np.ndarray, prob_xyz: np.ndarray | None, ri_xyz: np.ndarray, medium_ri: float,
        cell_mask_xyz: np.ndarray | None = None,
    ) -> None:
        """Records one frame: labels (X, Y, Z) int, nucleus probability (X, Y, Z) float or None, RI (X, Y, Z);
        ``cell_mask_xyz``, the frame's cell mask when the caller has it (else computed from the RI if needed)."""
        labels = np.asarray(labels_xyz)
        # nucleus voxels only: whole-volume int64 and float64 copies would not fit beside a large stack
        inside = labels > 0
        ids_inside = labels[inside]
        ids = np.unique(ids_inside)
        nuclei: dict[str, dict] = {}
        if ids.size:
            mean_prob = None
            if prob_xyz is not None:
                sums = np.bincount(ids_inside, weights=np.asarray(prob_xyz)[inside], minlength=int(ids.max()) + 1)
                counts = np.bincount(ids_inside, minlength=int(ids.max()) + 1)
                mean_prob = sums[ids] / counts[ids]
            edge = _edge_ids(labels)
            for k, i in enumerate(ids.tolist()):
                nuclei[str(i)] = {
                    "mean_probability": None if mean_prob is None else round(float(mean_prob[k]), 4),
                    "touches_edge": i in edge,
                }
        # a nucleus lies in a cell; only a frame without one needs the cell mask
        if cell_mask_xyz is None and not ids.size:
            cell_mask_xyz = cell_mask_from_ri(np.asarray(ri_xyz), float(medium_ri), self.spacing_um[:3])
        cell = bool(ids.size) or bool(np.any(cell_mask_xyz))
        self.frames.append({"frame": int(frame), "cell_found": cell, "nuclei": nuclei})

    def to_dict(self) -> dict:
        return {"path": self.path, "name": self.name, "n_frames": self.n_frames,
                "spacing_um": [float(s) for s in self.spacing_um], "frames": self.frames}

    def save(self, path: str | os.PathLike) -> Path:
        """Writes the record as JSON (atomically); returns the path."""
        with atomic_output(path) as tmp:
            tmp.write_text(json.dumps(self.to_dict(), indent=1) + "\n")
        return Path(path)


def read_quality(path: str | os.PathLike) -> QualityRecord:
    data = json.loads(Path(path).read_text())
    return QualityRecord(data["path"], data["name"], int(data["n_frames"]), tuple(data["spacing_um"]), data["frames"])


@dataclass(frozen=True)
class Flag:
    """One thing to look at: ``kind`` (see the module doc), the input's ``name``, where, and why."""

    kind: str
    name: str
    message: str
    frame: int | None = None
    nucleus_id: int | None = None


def _frames_text(frames: Sequence[int]) -> str:
    return f"frame{'s' if len(frames) > 1 else ''} {', '.join(map(str, frames))}"


def _record_flags(record: QualityRecord, min_mean_probability: float) -> list[Flag]:
    flags = []
    no_cell = [f["frame"] for f in record.frames if not f["cell_found"]]
    if no_cell and len(no_cell) == len(record.frames):
        flags.append(Flag("no cell", record.name, "no cell in the tomogram (RI nowhere above the medium)"))
    elif no_cell:
        flags += [Flag("no cell", record.name, f"frame {t}: no cell", frame=t) for t in no_cell]
    for f in record.frames:
        if f["cell_found"] and not f["nuclei"]:
            flags.append(Flag("no nucleus", record.name, f"frame {f['frame']}: cell without a segmented nucleus", frame=f["frame"]))
    by_nucleus: dict[int, dict[str, list]] = {}
    for f in record.frames:
        for i, facts in f["nuclei"].items():
            mine = by_nucleus.setdefault(int(i), {"edge": [], "low": []})
            if facts["touches_edge"]:
                mine["edge"].append(f["frame"])
            p = facts.get("mean_probability")
            if p is not None and p < min_mean_probability:
                mine["low"].append((f["frame"], p))
    for i, mine in sorted(by_nucleus.items()):
        if mine["edge"]:
            flags.append(Flag("field edge", record.name, f"nucleus {i} touches the field edge in {_frames_text(mine['edge'])}",
                              frame=mine["edge"][0], nucleus_id=i))
        if mine["low"]:
            worst = min(p for _, p in mine["low"])
            flags.append(Flag("low probability", record.name,
                              f"nucleus {i}: mean probability {worst:.2f} < {min_mean_probability:.2f} in {_frames_text([t for t, _ in mine['low']])}",
                              frame=mine["low"][0][0], nucleus_id=i))
    return flags


def _jump_flags(name: str, rows: Iterable[Mapping], jump_fraction: float) -> list[Flag]:
    """Volume (area) jumps of tracked nuclei between consecutive frames, from measurement rows."""
    size_key = None
    tracks: dict[int, list[tuple[int, float]]] = {}
    for row in rows:
        size_key = size_key or ("volume_um3" if "volume_um3" in row else "area_um2")
        tracks.setdefault(int(row["nucleus_id"]), []).append((int(row["frame"]), float(row[size_key])))
    flags = []
    for i, points in sorted(tracks.items()):
        points.sort()
        for (t0, v0), (t1, v1) in zip(points, points[1:]):
            if t1 == t0 + 1 and v0 > 0 and abs(v1 - v0) / v0 > jump_fraction:
                what = "volume" if size_key == "volume_um3" else "area"
                flags.append(Flag("volume jump", name, f"nucleus {i}: {what} {v0:.4g} -> {v1:.4g} from frame {t0} to {t1} "
                                  f"({(v1 - v0) / v0:+.0%}, more than {jump_fraction:.0%})", frame=t1, nucleus_id=i))
    return flags


def quality_flags(
    name: str,
    rows: Iterable[Mapping],
    record: QualityRecord | None = None,
    jump_fraction: float = JUMP_FRACTION,
    min_mean_probability: float = MIN_MEAN_PROBABILITY,
) -> list[Flag]:
    """The flags of one input: from its quality record (when there is one) and its measurement rows.

    Args:
        name: the input's output name.
        rows: its measurement rows (``frame``, ``nucleus_id``, ``volume_um3`` or ``area_um2``).
        record: its :class:`QualityRecord`; without one, only volume jumps are flagged.
        jump_fraction: relative volume (area) change between consecutive frames that is flagged.
        min_mean_probability: mean nucleus probability under which a nucleus is flagged.

    Examples:
        >>> rows = [{"frame": 0, "nucleus_id": 1, "volume_um3": 500.0}, {"frame": 1, "nucleus_id": 1, "volume_um3": 800.0}]
        >>> [f.message for f in quality_flags("cell", rows)]
        ['nucleus 1: volume 500 -> 800 from frame 0 to 1 (+60%, more than 30%)']
    """
    flags = _record_flags(record, min_mean_probability) if record is not None else []
    return flags + _jump_flags(name, rows, jump_fraction)
