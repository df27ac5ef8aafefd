"""What every rendering style shares: the output record and the instrument ranges drawn per field.

A *style* renders whole synthetic tomograms with its own cell model, texture synthesis, optics and
artefacts. Styles share only this module: the ranges below (one home for "how wide is the world of
ODT instruments") and :class:`StyleField`, the record they return.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "Acquisition",
    "StyleField",
    "draw_acquisition",
    "style_rng",
    "NUCLEUS_DELTA_RANGE",
    "BASE_NOISE_STD",
    "NOISE_FACTOR_RANGE",
]

#: nucleus-minus-cytoplasm RI difference drawn per cell (Schuermann et al. 2016: usually negative)
NUCLEUS_DELTA_RANGE = (-0.015, 0.010)
#: today's reconstruction noise (RI units) of the ht2h preset; styles scale it by NOISE_FACTOR_RANGE
BASE_NOISE_STD = 0.0010
NOISE_FACTOR_RANGE = (0.3, 4.0)


@dataclass(frozen=True)
class Acquisition:
    """One field's instrument, drawn over ranges at least as wide as published ODT systems.

    Args:
        voxel_size_um: (x, y, z) in micrometres; x = y.
        field_shape: (X, Y, Z) voxels.
        wavelength_um: vacuum wavelength of the illumination.
        na_illumination: illumination (condenser) NA; the scan covers this cone.
        na_objective: detection NA.
        medium_ri: RI of the medium (the background).
        noise_std: reconstruction noise (RI units) the style should reach.
        storage: ``"float32"`` (RI) or ``"uint16"`` (RI x 10,000).
        time_step_s: interval between frames of a series.
    """

    voxel_size_um: tuple[float, float, float]
    field_shape: tuple[int, int, int]
    wavelength_um: float
    na_illumination: float
    na_objective: float
    medium_ri: float
    noise_std: float
    storage: str
    time_step_s: float

    @property
    def field_size_um(self) -> tuple[float, float, float]:
        return tuple(float(n * v) for n, v in zip(self.field_shape, self.voxel_size_um))  # type: ignore[return-value]


@dataclass
class StyleField:
    """One rendered tomogram.

    ``image`` is float32 RI (X, Y, Z) or (X, Y, Z, T) regardless of ``acquisition.storage`` (the
    writer quantises); ``label`` is the uint8 nucleus mask of the same shape; ``nuclei`` optionally
    the instance ids (0 background). ``params`` records what was drawn (for the docs and tests).
    """

    image: np.ndarray
    label: np.ndarray
    acquisition: Acquisition
    style: str
    nuclei: np.ndarray | None = None
    params: dict = field(default_factory=dict)


def style_rng(style: str, seed: int, index: int) -> np.random.Generator:
    """The generator of field ``index`` of style ``style`` with ``seed`` (independent of worker order)."""
    return np.random.default_rng(np.random.SeedSequence([int(seed), int(index), zlib.crc32(style.encode())]))


def _log_uniform(rng: np.random.Generator, low: float, high: float) -> float:
    return float(np.exp(rng.uniform(np.log(low), np.log(high))))


def draw_acquisition(
    rng: np.random.Generator,
    *,
    field_um: tuple[float, float] = (34.0, 56.0),
    depth_um: tuple[float, float] = (11.0, 18.0),
    max_lateral: int = 320,
    max_axial: int = 64,
) -> Acquisition:
    """Draw one field's instrument.

    Lateral voxel 0.08-0.25 um, axial 0.15-1.0 um (log-uniform), wavelength 405-633 nm,
    illumination NA 0.4-1.2, objective NA 0.6-1.4 (both kept 0.02 below the medium RI, so the
    missing cone changes shape), medium RI 1.330-1.345, noise 0.3x-4x :data:`BASE_NOISE_STD`
    (log-uniform), float or uint16 storage. The field spans ``field_um`` laterally (at most
    ``max_lateral`` voxels, so fine voxels give smaller fields) and ``depth_um`` axially.
    """
    vxy = float(rng.uniform(0.08, 0.25))
    vz = _log_uniform(rng, 0.15, 1.0)
    medium = round(float(rng.uniform(1.330, 1.345)), 4)
    na_ill = min(float(rng.uniform(0.4, 1.2)), medium - 0.02)
    na_obj = min(float(rng.uniform(0.6, 1.4)), medium - 0.02)
    n_xy = int(np.clip(round(rng.uniform(*field_um) / vxy), 96, max_lateral))
    n_xy += n_xy % 2
    n_z = int(np.clip(round(rng.uniform(*depth_um) / vz), 12, max_axial))
    n_z += n_z % 2
    return Acquisition(
        voxel_size_um=(round(vxy, 4), round(vxy, 4), round(vz, 4)),
        field_shape=(n_xy, n_xy, n_z),
        wavelength_um=round(float(rng.uniform(0.405, 0.633)), 4),
        na_illumination=round(na_ill, 3),
        na_objective=round(na_obj, 3),
        medium_ri=medium,
        noise_std=BASE_NOISE_STD * _log_uniform(rng, *NOISE_FACTOR_RANGE),
        storage="uint16" if rng.random() < 0.5 else "float32",
        time_step_s=float(rng.choice([60.0, 180.0, 300.0, 600.0, 900.0])),
    )
