"""Synthetic ODT (holotomography) tomograms with nucleus labels: the project's default data set."""

from __future__ import annotations

from .cells import COMPARTMENTS
from .field import FieldResult, render_field
from .optics import OdtOptics, simulate_odt, transfer_function
from .presets import DEFAULT_PRESET, PRESETS, TRAINING_PRESETS, Preset, get_preset, randomise_preset

__all__ = [
    "COMPARTMENTS",
    "DEFAULT_PRESET",
    "FieldResult",
    "OdtOptics",
    "PRESETS",
    "Preset",
    "TRAINING_PRESETS",
    "get_preset",
    "randomise_preset",
    "render_field",
    "simulate_odt",
    "transfer_function",
]

from .dataset import DEFAULT_DATASET, ensure_default_dataset, generate_dataset  # noqa: E402
from .io import write_nifti, write_tcf  # noqa: E402

__all__ += ["DEFAULT_DATASET", "ensure_default_dataset", "generate_dataset", "write_nifti", "write_tcf"]
