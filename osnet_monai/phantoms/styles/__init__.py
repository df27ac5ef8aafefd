"""Rendering styles: independent phantom generators, each its own cell model, texture, optics and artefacts.

``STYLES`` maps a style's name to the dotted path of its module; every module defines
``DESCRIPTION`` (one line) and ``render(seed: int, index: int, frames: int = 1) -> StyleField``.
Modules load on first use, so listing styles stays cheap.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from .base import Acquisition, StyleField, draw_acquisition, style_rng

__all__ = ["STYLES", "Acquisition", "StyleField", "draw_acquisition", "get_style", "render_style", "style_rng"]

STYLES: dict[str, str] = {
    "classic": "osnet_monai.phantoms.styles.classic",
    "beam": "osnet_monai.phantoms.styles.beam",
    "spectral": "osnet_monai.phantoms.styles.spectral",
    "organic": "osnet_monai.phantoms.styles.organic",
}


def get_style(name: str) -> ModuleType:
    """The module of style ``name``; a ValueError lists the styles when the name is unknown."""
    if name not in STYLES:
        raise ValueError(f"style must be one of {', '.join(STYLES)}, got {name!r}")
    return importlib.import_module(STYLES[name])


def render_style(name: str, seed: int = 0, index: int = 0, frames: int = 1) -> StyleField:
    """Render field ``index`` of style ``name`` (a pure function of name, seed, index and frames)."""
    if int(frames) < 1:
        raise ValueError(f"frames must be >= 1, got {frames!r}")
    return get_style(name).render(int(seed), int(index), int(frames))
