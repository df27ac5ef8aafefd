"""The plugin's reader: which paths it takes, and the layers it gives (see :mod:`._layers`)."""

from __future__ import annotations

import os
from collections.abc import Callable

from osnet_monai.napari._layers import LayerData, read_ome_zarr, read_tomogram
from osnet_monai.readers import is_supported

__all__ = ["get_reader"]


def _is_ome_zarr(path: str) -> bool:
    return path.rstrip("/").lower().endswith(".ome.zarr") and os.path.isdir(path)


def _read(paths: str | list[str]) -> list[LayerData]:
    layers: list[LayerData] = []
    for path in [paths] if isinstance(paths, str) else paths:
        layers += read_ome_zarr(path) if _is_ome_zarr(path) else read_tomogram(path)
    return layers


def get_reader(path: str | list[str]) -> Callable[[str | list[str]], list[LayerData]] | None:
    """napari's reader hook: a reader when every path is a tomogram the package reads or an
    ``.ome.zarr`` store, else None (napari then asks other plugins)."""
    paths = [path] if isinstance(path, str) else list(path)
    if paths and all(_is_ome_zarr(os.fspath(p)) or (is_supported(os.fspath(p)) and not os.path.isdir(p)) for p in paths):
        return _read
    return None
