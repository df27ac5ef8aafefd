"""MONAI dictionary transforms for RI tomograms."""

from __future__ import annotations

from osnet_monai.transforms.elastic import PAPER_ELASTIC_PARAMS, RandPaperElasticd, paper_elastic_displacement
from osnet_monai.transforms.instrument import RandCorrelatedNoised, RandFringesd
from osnet_monai.transforms.io import LoadTomogramd
from osnet_monai.transforms.spatial import SectionSpacingd
from osnet_monai.transforms.intensity import (
    DEFAULT_CONTRAST_SCALE,
    NORMALISATIONS,
    NormalizeRId,
    background_noise_std,
    estimate_medium_ri,
    robust_contrast_scale,
    medium_ri_from_meta,
)

__all__ = [
    "LoadTomogramd",
    "RandCorrelatedNoised",
    "RandFringesd",
    "SectionSpacingd",
    "PAPER_ELASTIC_PARAMS",
    "RandPaperElasticd",
    "paper_elastic_displacement",
    "DEFAULT_CONTRAST_SCALE",
    "NORMALISATIONS",
    "NormalizeRId",
    "background_noise_std",
    "estimate_medium_ri",
    "robust_contrast_scale",
    "medium_ri_from_meta",
]
