"""TIFF reader for RI sections, stacks and ImageJ hyperstacks, with voxel size from ImageJ or OME metadata."""

from __future__ import annotations

import logging
import math
import os
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from typing import Any

import numpy as np
import tifffile
from monai.data.image_reader import ImageReader, _copy_compatible_dict, _stack_images
from monai.data.utils import is_supported_format
from monai.utils import MetaKeys, SpaceKeys, ensure_tuple

from ._util import diag_affine, length_to_um, parse_medium_ri, plausible_time_step, time_to_s
from .capture import LibraryMessages, library_messages
from .checks import check_declared_size
from .errors import InputError, input_error

__all__ = ["TiffStackReader"]

PathLike = str | os.PathLike
_UNKNOWN_AXES = set("QI")  # tifffile's letters for "planes of unknown meaning" and "image sequence"


class _TiffImage:
    """What :meth:`TiffStackReader.read` returns: the pixel array as stored and the parsed metadata."""

    def __init__(self, path: str, data: np.ndarray, axes: str, meta: dict) -> None:
        self.path, self.data, self.axes, self.meta = path, data, axes, meta


def _canonical_axes(axes: str) -> str:
    """Map tifffile's series axes to X, Y, Z, T or C (colour / channel / anything non-spatial)."""
    out = []
    unknown = [i for i, a in enumerate(axes) if a in _UNKNOWN_AXES]
    has_z, has_t = "Z" in axes, "T" in axes
    for i, a in enumerate(axes):
        if a in "XYZT":
            out.append(a)
        elif a in _UNKNOWN_AXES:
            # Untagged leading axes: one is Z (or T beside a Z); two are (T, Z), as in a (T, Z, Y, X) stack.
            if len(unknown) == 1:
                out.append("T" if has_z and not has_t else "Z")
            else:
                out.append("T" if i == unknown[0] and not has_t else "Z")
        else:  # S (samples: RGB), C (channels), E/H/A/P/L/... : not a spatial or time axis
            out.append("C")
    return "".join(out)


def _to_xyz_order(data: np.ndarray, axes: str) -> tuple[np.ndarray, str]:
    """Drop singleton non-spatial axes and transpose to X, Y, [Z], [T], [C] order."""
    keep = [i for i, a in enumerate(axes) if a in "XY" or data.shape[i] > 1 or (a == "Z" and axes.count("Z") == 1)]
    data = data.reshape([data.shape[i] for i in keep])
    axes = "".join(axes[i] for i in keep)
    if axes.count("Z") > 1 or axes.count("T") > 1:
        # Two axes mapped to the same letter (e.g. Z plus an untagged axis): keep them apart as C.
        seen: set[str] = set()
        fixed = []
        for a in axes:
            fixed.append("C" if a in seen and a in "ZT" else a)
            seen.add(a)
        axes = "".join(fixed)
    order = sorted(range(len(axes)), key=lambda i: ("XYZTC".index(axes[i]), i))
    return data.transpose(order), "".join(axes[i] for i in order)


def _imagej_spacing(tif: tifffile.TiffFile) -> tuple[list[float | None], float | None]:
    """([x, y, z] in um or None each, time step in s or None) from ImageJ resolution tags and metadata."""
    ij = tif.imagej_metadata or {}
    factor = length_to_um(ij.get("unit", ""))
    xyz: list[float | None] = [None, None, None]
    if factor is not None:
        page = tif.pages[0]
        for k, tag in enumerate(("XResolution", "YResolution")):
            if tag in page.tags:
                num, den = page.tags[tag].value
                if num > 0 and den > 0:
                    xyz[k] = den / num * factor  # the tag holds pixels per unit
        if "spacing" in ij:
            xyz[2] = float(ij["spacing"]) * factor
    dt = None
    if "finterval" in ij:
        dt = plausible_time_step(float(ij["finterval"]) * (time_to_s(ij.get("tunit", "s")) or 1.0))
    return xyz, dt


def _ome_spacing(tif: tifffile.TiffFile) -> tuple[list[float | None], float | None]:
    """([x, y, z] in um or None each, time step in s or None) from the OME-XML ``Pixels`` element."""
    xyz: list[float | None] = [None, None, None]
    try:
        root = ET.fromstring(tif.ome_metadata or "")
    except ET.ParseError:
        return xyz, None
    pixels = next((el for el in root.iter() if el.tag.rsplit("}", 1)[-1] == "Pixels"), None)
    if pixels is None:
        return xyz, None
    for k, axis in enumerate("XYZ"):
        value = pixels.get(f"PhysicalSize{axis}")
        factor = length_to_um(pixels.get(f"PhysicalSize{axis}Unit", "µm"))  # OME's default unit is um
        if value is not None and factor is not None:
            xyz[k] = float(value) * factor
    dt = None
    if pixels.get("TimeIncrement") is not None:
        factor = time_to_s(pixels.get("TimeIncrementUnit", "s"))
        dt = plausible_time_step(float(pixels.get("TimeIncrement")) * factor) if factor is not None else None
    return xyz, dt


def _refuse_if_corrupt(path: str, said: LibraryMessages) -> None:
    """tifffile logs structural damage (a page offset past the end, a corrupt tag list, series
    metadata that the pages contradict) as errors and goes on with what it could read: a truncated
    24-section stack comes back as one section. Such a file is refused, naming what tifffile found."""
    errors = said.at_least(logging.ERROR, "tifffile")
    if errors:
        raise input_error(path, f"corrupt TIFF file (tifffile: {errors[0]})")


_DEFLATE = {"ADOBE_DEFLATE", "DEFLATE"}


def _check_tiff_size(path: str, series: list) -> None:
    """The series' declared size against the file's bytes (deflate's bound when compressed), before reading."""
    shape = (len(series), *series[0].shape) if len(series) > 1 else tuple(series[0].shape)
    codecs = {getattr(p.keyframe.compression, "name", str(p.keyframe.compression)) for p in series}
    codec = None if codecs == {"NONE"} else "deflate" if codecs <= _DEFLATE else ",".join(sorted(codecs))
    check_declared_size(path, shape, series[0].dtype.itemsize if series[0].dtype is not None else 1,
                        os.path.getsize(path), codec)


class TiffStackReader(ImageReader):
    """MONAI ``ImageReader`` for 2D images, 3D stacks and 4D ImageJ/OME hyperstacks stored as TIFF.

    TIFF stores a stack as (Z, Y, X) and a hyperstack as (T, Z, Y, X); ``get_data`` returns them as
    (X, Y), (X, Y, Z) and (X, Y, Z, T). Axes that are neither spatial nor time (RGB samples, channels)
    are kept last and named ``C`` in meta ``axes`` so the input checks can refuse them. Values are
    returned as stored: uint16 stays uint16 (RI x 10,000 recognition happens in the checks/normalisation),
    float stays float.

    Voxel size, in order of preference: ImageJ metadata (XResolution/YResolution tags in pixels per
    ``unit``, ``spacing`` for z, ``finterval`` for time), OME-XML (PhysicalSizeX/Y/Z with units,
    TimeIncrement), then ``default_spacing_um``. Meta ``spacing_source`` is ``"imagej"``, ``"ome"``,
    ``"default"`` (no metadata and no default: an :class:`InputError`); a ``+default``
    suffix means some axes came from the default.

    Args:
        default_spacing_um: voxel size (x, y, z) in micrometres for files without usable metadata.
    """

    def __init__(self, default_spacing_um: Sequence[float] | None = None) -> None:
        super().__init__()
        if default_spacing_um is not None and len(default_spacing_um) != 3:
            raise ValueError(f"default_spacing_um must be (x, y, z), got {default_spacing_um!r}")
        self.default_spacing_um = None if default_spacing_um is None else tuple(float(s) for s in default_spacing_um)

    def verify_suffix(self, filename: Sequence[PathLike] | PathLike) -> bool:
        """True for ``.tif``/``.tiff`` (any case, including ``.ome.tif``)."""
        return is_supported_format(filename, ["tif", "tiff"])

    def read(self, data: Sequence[PathLike] | PathLike, **kwargs: Any) -> _TiffImage | list[_TiffImage]:
        """Read the pixels and metadata of each file (a list when several files are given)."""
        images = [self._read_one(os.fspath(name)) for name in ensure_tuple(data)]
        return images if len(images) > 1 else images[0]

    def _read_one(self, path: str) -> _TiffImage:
        if not os.path.exists(path):
            raise input_error(path, "file not found")
        with library_messages(path) as said:
            try:
                return self._parse(path, said)
            except InputError:
                raise
            except Exception as exc:  # noqa: BLE001 - tifffile raises many types for one corrupt file
                raise input_error(path, "not a valid TIFF file (corrupt or truncated?)", exc) from exc

    def _parse(self, path: str, said: LibraryMessages) -> _TiffImage:
        with tifffile.TiffFile(path) as tif:
            series = tif.series
            first = series[0]
            stack = len(series) > 1 and first.ndim == 2 and all(s.shape == first.shape and s.dtype == first.dtype for s in series)
            _check_tiff_size(path, [*series] if stack else [first])
            _refuse_if_corrupt(path, said)
            if stack:
                # Pages appended one by one without a shape description: a stack of sections.
                data, axes = np.stack([s.asarray() for s in series]), "Z" + first.axes
            else:
                data, axes = first.asarray(), first.axes
            _refuse_if_corrupt(path, said)
            if tif.is_imagej:
                xyz, dt = _imagej_spacing(tif)
                source = "imagej"
            elif tif.is_ome:
                xyz, dt = _ome_spacing(tif)
                source = "ome"
            else:
                xyz, dt, source = [None, None, None], None, ""
            texts = [tif.pages[0].description, (tif.imagej_metadata or {}).get("Info", "")]

        data, axes = _to_xyz_order(data, _canonical_axes(axes))
        if "T" in axes and "Z" not in axes:  # a time series of one section: (X, Y, T) -> (X, Y, 1, T)
            data, axes = data[:, :, None], "XYZ" + axes[2:]
        n_spatial = sum(a in "XYZ" for a in axes)
        spacing, source = self._resolve_spacing(xyz, source, n_spatial, path)
        affine = diag_affine(spacing)
        extra = [a for a in axes if a not in "XYZ"]
        meta: dict[str, Any] = {
            MetaKeys.AFFINE: affine,
            MetaKeys.ORIGINAL_AFFINE: affine.copy(),
            MetaKeys.SPATIAL_SHAPE: np.asarray(data.shape[:n_spatial]),
            MetaKeys.SPACE: SpaceKeys.RAS,
            MetaKeys.ORIGINAL_CHANNEL_DIM: -1 if extra else "no_channel",
            "spacing": np.asarray(spacing, dtype=np.float64),
            "spacing_source": source,
            "axes": axes,
            "format": "tiff",
            "filename_or_obj": path,
        }
        if dt is not None and dt > 0 and "T" in axes:
            meta["time_step_s"] = dt
        medium = parse_medium_ri(texts)
        if medium is not None:
            meta["medium_ri"] = medium
        return _TiffImage(path, data, axes, meta)

    def _resolve_spacing(
        self, xyz: list[float | None], source: str, n_spatial: int, path: str
    ) -> tuple[list[float], str]:
        found = [s for s in xyz[:n_spatial] if s is not None]
        if not found:
            if self.default_spacing_um is not None:
                return list(self.default_spacing_um[:n_spatial]), "default"
            # a guessed voxel size resamples the cells to the wrong size and the masks come out wrong
            raise input_error(
                path,
                "no voxel size in the TIFF metadata (ImageJ or OME); give it with --spacing X Y Z "
                "(osnet-monai segment) or default_spacing_um (bundle configs), in um",
            )
        if len(found) == n_spatial:
            return [float(s) for s in xyz[:n_spatial]], source  # type: ignore[arg-type]
        fallback = self.default_spacing_um or (1.0, 1.0, 1.0)
        return [float(s) if s is not None else fallback[k] for k, s in enumerate(xyz[:n_spatial])], f"{source}+default"

    def get_data(self, img: _TiffImage | Sequence[_TiffImage]) -> tuple[np.ndarray, dict]:
        """Return ``(array, meta)``: (X, Y), (X, Y, Z) or (X, Y, Z, T) as stored (dtype unchanged).

        Several files are stacked as MONAI's readers do.
        """
        arrays: list[np.ndarray] = []
        compatible_meta: dict = {}
        for image in ensure_tuple(img):
            arrays.append(image.data)
            _copy_compatible_dict(dict(image.meta), compatible_meta)
        return _stack_images(arrays, compatible_meta), compatible_meta
