"""Acquisition presets: the optics, sampling and storage of the ODT systems the phantoms imitate.

A :class:`Preset` holds the nominal values of one instrument/laboratory. :func:`randomise_preset`
draws a per-field variant around those nominal values ("domain randomisation") so that a model
trained on the phantoms does not learn one exact medium RI, NA or noise level.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

__all__ = ["Preset", "PRESETS", "TRAINING_PRESETS", "DEFAULT_PRESET", "get_preset", "randomise_preset"]


@dataclass(frozen=True)
class Preset:
    """Nominal acquisition parameters of one ODT system.

    Args:
        name: key in :data:`PRESETS`.
        description: one line on what the preset imitates and why.
        voxel_size_um: (x, y, z) voxel size in micrometres.
        field_shape: (X, Y, Z) voxels of one tomogram.
        wavelength_um: vacuum wavelength of the illumination (0.532 um for the HT-2H laser).
        na_objective: numerical aperture of the detection objective.
        na_condenser: numerical aperture of the illumination (condenser) side.
        medium_ri: refractive index of the culture medium (the background).
        noise_std: standard deviation of the additive reconstruction noise (RI units).
        dtype: ``"float32"`` (RI) or ``"uint16"`` (Tomocube-style RI x 10,000).
        nonneg_fill: apply the non-negativity constraint (RI >= medium) that partly fills the
            missing cone, as vendor reconstruction software does.
        nonneg_iterations: iterations of that constraint.
        cone_recovery: the share of the missing cone next to the measured band that the
            laboratory's regularised reconstruction restores (effective model, see
            :func:`~osnet_monai.phantoms.optics.simulate_odt`); brings imaged cell RI to the levels real
            tomograms show. Independent of ``nonneg_fill`` (the explicit Gerchberg-Papoulis iterations).
        recovery_decay_per_um: how fast (cycles/um) that recovery fades deeper into the cone.
        time_step_s: interval between time-lapse frames in seconds.
        cell_density: mean number of cell centres per 1,000 um^2 of field (before edge effects).
        substrate_z_um: height of the coverslip surface above the first z-section.
        role: ``"training"`` or ``"cross_lab"`` (held out, never in the default training set).
    """

    name: str
    description: str
    voxel_size_um: tuple[float, float, float]
    field_shape: tuple[int, int, int]
    wavelength_um: float = 0.532
    na_objective: float = 1.2
    na_condenser: float = 1.2
    medium_ri: float = 1.337
    noise_std: float = 0.0010
    dtype: str = "float32"
    nonneg_fill: bool = True
    nonneg_iterations: int = 6
    cone_recovery: float = 0.9
    recovery_decay_per_um: float = 0.3
    time_step_s: float = 600.0
    cell_density: float = 1.6
    substrate_z_um: float = 3.0
    role: str = "training"

    def __post_init__(self) -> None:
        if self.dtype not in ("float32", "uint16"):
            raise ValueError(f"dtype must be 'float32' or 'uint16', got {self.dtype!r}")
        if len(self.voxel_size_um) != 3 or min(self.voxel_size_um) <= 0:
            raise ValueError(f"voxel_size_um must be three positive numbers, got {self.voxel_size_um!r}")
        if len(self.field_shape) != 3 or min(self.field_shape) < 8:
            raise ValueError(f"field_shape must be three sizes >= 8, got {self.field_shape!r}")
        for key in ("na_objective", "na_condenser"):
            value = getattr(self, key)
            if not 0 < value < self.medium_ri:
                raise ValueError(f"{key} must lie in (0, medium_ri={self.medium_ri}), got {value}")

    @property
    def field_size_um(self) -> tuple[float, float, float]:
        return tuple(float(n * v) for n, v in zip(self.field_shape, self.voxel_size_um))  # type: ignore[return-value]

    @property
    def lateral_cutoff_per_um(self) -> float:
        """Lateral band limit (NA_obj + NA_cond) / lambda in cycles per micrometre."""
        return (self.na_objective + self.na_condenser) / self.wavelength_um

    def replace(self, **changes) -> Preset:
        return dataclasses.replace(self, **changes)


PRESETS: dict[str, Preset] = {
    "ht2h": Preset(
        name="ht2h",
        description=(
            "Default training preset: the paper's HT-2H (Tomocube) at 532 nm, water-immersion NA 1.2 "
            "objective and NA 1.2 condenser, 0.098 x 0.098 x 0.195 um voxels, 448 x 448 x 64 field, "
            "RPMI medium 1.337, float RI with the vendor's non-negativity fill"
        ),
        voxel_size_um=(0.098, 0.098, 0.195),
        field_shape=(448, 448, 64),
        wavelength_um=0.532,
        na_objective=1.2,
        na_condenser=1.2,
        medium_ri=1.337,
        noise_std=0.0010,
        dtype="float32",
        nonneg_fill=True,
        nonneg_iterations=4,
        cone_recovery=0.9,
        time_step_s=600.0,
        cell_density=1.6,
        substrate_z_um=3.0,
    ),
    "hx1": Preset(
        name="hx1",
        description=(
            "Second training preset, HT-X1-like: 450 nm partially coherent LED, NA 0.95 objective and "
            "NA 0.72 condenser, 0.15 x 0.15 x 0.30 um voxels, 320 x 320 x 44 field, medium 1.3365, "
            "Tomocube uint16 RI x 10,000 storage"
        ),
        voxel_size_um=(0.15, 0.15, 0.30),
        field_shape=(320, 320, 44),
        wavelength_um=0.450,
        na_objective=0.95,
        na_condenser=0.72,
        medium_ri=1.3365,
        noise_std=0.0014,
        dtype="uint16",
        nonneg_fill=True,
        nonneg_iterations=3,
        cone_recovery=0.8,
        time_step_s=300.0,
        cell_density=1.4,
        substrate_z_um=3.0,
    ),
    "cross_lab": Preset(
        name="cross_lab",
        description=(
            "Held-out cross-laboratory preset: a low-NA system (NA 0.8 objective, 0.7 condenser, 532 nm) "
            "sampled at 0.196 x 0.196 x 0.839 um, 256 x 256 x 24 field, live cells in DMEM 1.3345, "
            "noisier, a weaker regularised reconstruction without the non-negativity fill, uint16 RI x 10,000"
        ),
        voxel_size_um=(0.196, 0.196, 0.839),
        field_shape=(256, 256, 24),
        wavelength_um=0.532,
        na_objective=0.8,
        na_condenser=0.7,
        medium_ri=1.3345,
        noise_std=0.0022,
        dtype="uint16",
        nonneg_fill=False,
        nonneg_iterations=0,
        cone_recovery=0.65,
        recovery_decay_per_um=0.2,
        time_step_s=900.0,
        cell_density=1.1,
        substrate_z_um=4.0,
        role="cross_lab",
    ),
}

#: presets that may appear in a training set (everything but the held-out cross-lab system)
TRAINING_PRESETS: tuple[str, ...] = tuple(k for k, p in PRESETS.items() if p.role == "training")
DEFAULT_PRESET = "ht2h"


def get_preset(preset: str | Preset) -> Preset:
    """Look a preset up by name (or pass a :class:`Preset` through)."""
    if isinstance(preset, Preset):
        return preset
    if not isinstance(preset, str) or preset not in PRESETS:
        raise ValueError(f"preset must be one of {sorted(PRESETS)}, got {preset!r}")
    return PRESETS[preset]


def randomise_preset(preset: Preset, rng: np.random.Generator, strength: float = 1.0) -> Preset:
    """A per-field variant of ``preset``: mild, seeded variation centred on the nominal values.

    Medium RI +-0.0015, each NA x U(0.95, 1.03) (kept below the medium RI), noise x logU(0.6, 1.7),
    cell density x U(0.75, 1.35), substrate height +-1 um. ``strength=0`` returns the nominal preset.
    """
    if strength <= 0:
        return preset
    s = float(strength)
    medium = preset.medium_ri + s * rng.uniform(-0.0015, 0.0015)
    na_o = min(preset.na_objective * (1 + s * rng.uniform(-0.05, 0.03)), medium - 0.03)
    na_c = min(preset.na_condenser * (1 + s * rng.uniform(-0.05, 0.03)), medium - 0.03)
    noise = preset.noise_std * float(np.exp(s * rng.uniform(np.log(0.6), np.log(1.7))))
    density = preset.cell_density * (1 + s * rng.uniform(-0.25, 0.35))
    substrate = preset.substrate_z_um + s * rng.uniform(-1.0, 1.0)
    return preset.replace(
        medium_ri=round(float(medium), 4),
        na_objective=float(na_o),
        na_condenser=float(na_c),
        noise_std=float(noise),
        cell_density=float(density),
        substrate_z_um=float(max(1.0, substrate)),
    )
