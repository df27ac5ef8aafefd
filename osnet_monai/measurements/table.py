"""
The measurement table: column order and an atomic CSV writer.

:py:data:`MEASUREMENT_COLUMNS` fixes the CSV column order of 3D frames; ``frame`` and ``time_s`` are
added by the caller (one call of :py:func:`~osnet_monai.measurements.measure_nuclei` measures one
frame). :py:data:`MEASUREMENT_COLUMNS_2D` is the column order for 2D sections
(:py:func:`~osnet_monai.measurements.measure_sections_2d`). Units are in the column names: um, um^2,
um^3, pg (dry mass), pg/um (dry mass per um of section thickness), s.

``nucleus_id`` is the nucleus's id in ``NAME_nucleus.nii.gz`` and ``NAME_cell.nii.gz``: over a series,
its track id (constant along the track, Cell Tracking Challenge convention), and ``parent_id`` the
track it started from (its mother at a division; 0 for none). :py:data:`TRACK_COLUMNS` are the
columns of the lineage file (``NAME_tracks.csv``): the CTC ``res_track.txt`` columns L B E P, named.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from osnet_monai.atomic import atomic_output

__all__ = ["MEASUREMENT_COLUMNS", "MEASUREMENT_COLUMNS_2D", "TRACK_COLUMNS", "measurements_to_csv", "tracks_to_csv"]

#: CSV column order written by :py:func:`measurements_to_csv`
MEASUREMENT_COLUMNS: tuple[str, ...] = (
    "frame",
    "time_s",
    "nucleus_id",
    "parent_id",
    "volume_um3",
    "surface_area_um2",
    "equivalent_diameter_um",
    "sphericity",
    "mean_ri",
    "dry_mass_pg",
    "cell_volume_um3",
    "cell_dry_mass_pg",
    "nucleus_to_cell_volume_ratio",
    "centroid_x_um",
    "centroid_y_um",
    "centroid_z_um",
)

#: CSV column order for a 2D section (:py:func:`~osnet_monai.measurements.measure_sections_2d`)
MEASUREMENT_COLUMNS_2D: tuple[str, ...] = (
    "frame",
    "time_s",
    "nucleus_id",
    "parent_id",
    "area_um2",
    "perimeter_um",
    "equivalent_diameter_um",
    "circularity",
    "mean_ri",
    "dry_mass_pg_per_um",
    "centroid_x_um",
    "centroid_y_um",
)

#: CSV columns of the lineage (:py:func:`tracks_to_csv`): one row per track, frames zero-based, inclusive
TRACK_COLUMNS: tuple[str, ...] = ("track_id", "first_frame", "last_frame", "parent_id")


def measurements_to_csv(
    rows: Iterable[Mapping[str, Any]], path: str | os.PathLike, columns: Sequence[str] | None = None
) -> str:
    """
    Write measurement rows to CSV atomically, columns in :py:data:`MEASUREMENT_COLUMNS` order
    (:py:data:`MEASUREMENT_COLUMNS_2D` for 2D sections).

    The file is written under a temporary name in the same directory and moved into place with
    ``os.replace``: readers never see a half-written file, and on any error the previous file (if
    any) is left untouched and the temporary file is removed.

    Args:
        rows: dicts from :py:func:`~osnet_monai.measurements.measure_nuclei` or
            :py:func:`~osnet_monai.measurements.measure_sections_2d`, each with ``frame`` and
            ``time_s`` added by the caller; missing keys are written empty, unknown keys raise
            ``ValueError``.
        path: destination CSV path.
        columns: the header; default :py:data:`MEASUREMENT_COLUMNS_2D` when the first row has
            ``area_um2``, else :py:data:`MEASUREMENT_COLUMNS`. Pass it for a file that may have no
            rows (a 2D section without nuclei), so the header still says which kind it is.

    Returns:
        the path written, as a string.

    Examples:
        .. code-block:: python

            rows = []
            for t, (labels, ri) in enumerate(frames):
                for r in measure_nuclei(labels, ri, spacing, 1.337):
                    rows.append({"frame": t, "time_s": t * dt, **r})
            measurements_to_csv(rows, "nuclei.csv")
    """
    path = os.fspath(path)
    rows = list(rows)
    if columns is None:
        columns = MEASUREMENT_COLUMNS_2D if rows and "area_um2" in rows[0] else MEASUREMENT_COLUMNS
    with atomic_output(path) as tmp:
        with open(tmp, "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=list(columns), restval="", extrasaction="raise")
            writer.writeheader()
            for row in rows:
                writer.writerow(row)
    return path


def tracks_to_csv(tracks: Iterable[Sequence[int]], path: str | os.PathLike) -> str:
    """
    Write the lineage atomically: one row ``(track_id, first_frame, last_frame, parent_id)`` per track
    (:py:data:`TRACK_COLUMNS`, e.g. :py:attr:`~osnet_monai.measurements.NucleusTracker.tracks`).

    Args:
        tracks: rows of four non-negative integers.
        path: destination CSV path.

    Returns:
        the path written, as a string.
    """
    path = os.fspath(path)
    rows = [[int(v) for v in row] for row in tracks]
    if any(len(row) != len(TRACK_COLUMNS) or min(row) < 0 for row in rows):
        raise ValueError(f"tracks must be rows of {len(TRACK_COLUMNS)} non-negative integers ({', '.join(TRACK_COLUMNS)}).")
    with atomic_output(path) as tmp:
        with open(tmp, "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(TRACK_COLUMNS)
            writer.writerows(rows)
    return path
