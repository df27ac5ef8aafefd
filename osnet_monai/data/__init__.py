"""Data sets for training and evaluation: sections of tomograms, datalists, grouped folds."""

from __future__ import annotations

from osnet_monai.data.datalist import (
    file_stem,
    find_dataset,
    fold_split,
    grouped_folds,
    resolve_datalist,
)
from osnet_monai.data.sections import SectionDataset

__all__ = [
    "file_stem",
    "find_dataset",
    "fold_split",
    "grouped_folds",
    "resolve_datalist",
    "SectionDataset",
]
