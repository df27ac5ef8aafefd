"""Small helpers shared by the readers: length units, ``medium_ri=`` parsing, diagonal affines."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence

import numpy as np

__all__ = ["diag_affine", "length_to_um", "parse_medium_ri", "time_to_s", "plausible_medium_ri", "plausible_time_step"]

# Length units as microscopy software spells them, in micrometres. ImageJ stores the micro sign
# escaped ("\\u00B5m") and both U+00B5 (micro sign) and U+03BC (Greek mu) occur in the wild.
_LENGTH_UM: dict[str, float] = {
    "um": 1.0, "µm": 1.0, "micron": 1.0, "microns": 1.0, "micrometer": 1.0, "micrometre": 1.0,
    "nm": 1e-3, "nanometer": 1e-3, "nanometre": 1e-3,
    "mm": 1e3, "millimeter": 1e3, "millimetre": 1e3,
    "cm": 1e4, "centimeter": 1e4, "centimetre": 1e4,
    "m": 1e6, "meter": 1e6, "metre": 1e6,
    "å": 1e-4, "angstrom": 1e-4,
}
_TIME_S: dict[str, float] = {
    "s": 1.0, "sec": 1.0, "second": 1.0, "seconds": 1.0,
    "ms": 1e-3, "msec": 1e-3, "millisecond": 1e-3, "milliseconds": 1e-3,
    "us": 1e-6, "µs": 1e-6, "usec": 1e-6, "microsecond": 1e-6,
    "min": 60.0, "minute": 60.0, "minutes": 60.0,
    "h": 3600.0, "hr": 3600.0, "hour": 3600.0, "hours": 3600.0,
}
#: the medium tag this project writes (NIfTI ``descrip``) and reads back: one format, one parser
MEDIUM_TAG_FORMAT = "medium_ri=%.4f"
_MEDIUM_RI = re.compile(r"medium_ri\s*[:=]+\s*([0-9]*\.?[0-9]+)", re.IGNORECASE)


def format_medium_tag(medium_ri: float) -> str:
    """``medium_ri=1.3370``: the text :func:`parse_medium_ri` reads back."""
    return MEDIUM_TAG_FORMAT % float(medium_ri)


def _norm_unit(unit: object) -> str:
    if isinstance(unit, bytes):
        unit = unit.decode("utf-8", "replace")
    text = str(unit).strip().lower()
    return text.replace("\\u00b5", "µ").replace("\u03bc", "µ")


def length_to_um(unit: object) -> float | None:
    """Factor that converts a length in ``unit`` to micrometres, or ``None`` for an unknown/pixel unit."""
    return _LENGTH_UM.get(_norm_unit(unit))


def time_to_s(unit: object) -> float | None:
    """Factor that converts a time in ``unit`` to seconds, or ``None`` when the unit is unknown."""
    return _TIME_S.get(_norm_unit(unit))


def plausible_medium_ri(value: object) -> float | None:
    """``float(value)`` when it is a finite refractive index a culture medium could have (1.0-1.8)."""
    try:
        ri = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return ri if math.isfinite(ri) and 1.0 <= ri <= 1.8 else None


#: a time-lapse interval above a year is a corrupt field, not an experiment
MAX_TIME_STEP_S = 3.2e7


def plausible_time_step(value: object) -> float | None:
    """``float(value)`` when it is a time step in seconds a time-lapse could have (0, 1 year], else None.

    Like an implausible medium RI, an implausible time step is treated as not stated: frames are
    then timed by their index.
    """
    try:
        dt = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        return None
    return dt if math.isfinite(dt) and 0 < dt <= MAX_TIME_STEP_S else None


def parse_medium_ri(texts: Iterable[object]) -> float | None:
    """Find ``medium_ri=1.3370`` (the tag this project writes, e.g. in NIfTI ``descrip``) in any of ``texts``."""
    for text in texts:
        if isinstance(text, np.ndarray):
            text = text.item() if text.size == 1 else None
        if isinstance(text, bytes):
            text = text.decode("utf-8", "replace")
        if not isinstance(text, str):
            continue
        match = _MEDIUM_RI.search(text)
        if match:
            ri = plausible_medium_ri(match.group(1))
            if ri is not None:
                return ri
    return None


def diag_affine(spacing: Sequence[float]) -> np.ndarray:
    """``diag(*spacing, 1)`` as float64: the voxel-to-micrometre affine of an axis-aligned grid at the origin."""
    return np.diag([*(float(s) for s in spacing), 1.0])
