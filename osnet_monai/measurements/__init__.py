"""
Per-nucleus measurements from refractive-index (RI) tomograms, split by job:

- :py:mod:`~osnet_monai.measurements.cells`: cell mask from the RI, nucleus labels with touching nuclei
  separated (:py:func:`label_nuclei`, :py:func:`split_touching`), one region per cell (:py:func:`label_cells`);
- :py:mod:`~osnet_monai.measurements.morphology`: 3D volume, surface area, sphericity, dry mass, and the
  cell's volume, dry mass and nucleus-to-cell ratio (:py:func:`measure_nuclei`); 2D area, perimeter,
  circularity (:py:func:`measure_sections_2d`);
- :py:mod:`~osnet_monai.measurements.tracking`: tracks with divisions (:py:class:`NucleusTracker`),
  frame-to-frame matching (:py:func:`track_nuclei`), the lineage of a labelled series;
- :py:mod:`~osnet_monai.measurements.table`: CSV column orders and writers (measurements, lineage).

Arrays are indexed ``[x, y, z]`` with spacing in um; see :py:mod:`~osnet_monai.measurements.morphology`
for the dry-mass and surface-area definitions.
"""

from __future__ import annotations

from osnet_monai.measurements.cells import cell_mask_from_ri, label_cells, label_nuclei, split_touching
from osnet_monai.measurements.morphology import measure_nuclei, measure_sections_2d
from osnet_monai.measurements.table import (
    MEASUREMENT_COLUMNS,
    MEASUREMENT_COLUMNS_2D,
    TRACK_COLUMNS,
    measurements_to_csv,
    tracks_to_csv,
)
from osnet_monai.measurements.tracking import NucleusTracker, track_nuclei, tracks_from_labels

__all__ = [
    "MEASUREMENT_COLUMNS",
    "MEASUREMENT_COLUMNS_2D",
    "TRACK_COLUMNS",
    "NucleusTracker",
    "cell_mask_from_ri",
    "label_cells",
    "label_nuclei",
    "measure_nuclei",
    "measure_sections_2d",
    "split_touching",
    "track_nuclei",
    "tracks_from_labels",
    "measurements_to_csv",
    "tracks_to_csv",
]
