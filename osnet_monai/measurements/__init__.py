"""
Per-nucleus measurements from refractive-index (RI) tomograms, split by job:

- :py:mod:`~osnet_monai.measurements.cells`: cell mask from the RI, nucleus labels;
- :py:mod:`~osnet_monai.measurements.morphology`: 3D volume, surface area, sphericity, dry mass
  (:py:func:`measure_nuclei`) and 2D area, perimeter, circularity (:py:func:`measure_sections_2d`);
- :py:mod:`~osnet_monai.measurements.tracking`: nucleus ids kept from frame to frame;
- :py:mod:`~osnet_monai.measurements.table`: CSV column order and writer.

Arrays are indexed ``[x, y, z]`` with spacing in um; see :py:mod:`~osnet_monai.measurements.morphology`
for the dry-mass and surface-area definitions.
"""

from __future__ import annotations

from osnet_monai.measurements.cells import cell_mask_from_ri, label_nuclei
from osnet_monai.measurements.morphology import measure_nuclei, measure_sections_2d
from osnet_monai.measurements.table import MEASUREMENT_COLUMNS, MEASUREMENT_COLUMNS_2D, measurements_to_csv
from osnet_monai.measurements.tracking import track_nuclei

__all__ = [
    "MEASUREMENT_COLUMNS",
    "MEASUREMENT_COLUMNS_2D",
    "cell_mask_from_ri",
    "label_nuclei",
    "measure_nuclei",
    "measure_sections_2d",
    "track_nuclei",
    "measurements_to_csv",
]
