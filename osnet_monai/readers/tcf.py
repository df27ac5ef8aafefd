"""Tomocube TCF (HDF5) reader for refractive-index tomograms, whole-file and frame by frame.

Layout read here (as written by Tomocube's software and read by the ``tcfile`` package)::

    /                     attrs FormatVersion ("1.2", "1.4.1", ...)
    /Data/3D              attrs ResolutionX/Y/Z (um per voxel), SizeX/Y/Z, DataCount, TimeInterval (s)
    /Data/3D/000000       one RI volume per time point, stored (Z, Y, X); attrs Time (s), RIMin, RIMax
    /Info/Device          attrs RI (medium refractive index), NA, Magnification, Wavelength
    /Data/3DFL            a fluorescence channel, when recorded: attrs ResolutionX/Y/Z, SizeX/Y/Z, OffsetZ
                          (um, the grid's z-origin in the RI frame), DataCount; /Data/3DFL/CH0/000000 ...
                          one (Z, Y, X) intensity volume per time point (read by read_tcf_fluorescence)

Attributes are usually stored as one-element arrays. Format versions before 1.3 store float32 RI;
later versions store uint16 RI x 10,000. A short-lived intermediate format stored each time point as a
group of ``TILE_nnnn`` datasets (uint16 RI x 10,000, or uint8 (RI - RIMin) x 1,000 when the group's
``ScalarType`` attribute is true); it is read too. The data type decides the scaling, not the version
string, because a float volume is RI whatever the version says.

Everything returned is float32 RI in NIfTI/MONAI axis order: (X, Y, Z) for one time point and
(X, Y, Z, T) for a time series, with ``affine = diag(rx, ry, rz, 1)`` in micrometres.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import h5py
import numpy as np
from monai.data.image_reader import ImageReader, _copy_compatible_dict, _stack_images
from monai.data.utils import is_supported_format
from monai.utils import MetaKeys, SpaceKeys, ensure_tuple

from ._util import diag_affine, plausible_medium_ri, plausible_time_step
from .capture import library_messages
from .checks import check_declared_size
from .errors import InputError, input_error

try:  # registers the LZ4/Zstd/... HDF5 filters that recent Tomocube files are compressed with
    import hdf5plugin  # noqa: F401

    _HAS_HDF5PLUGIN = True
except ImportError:  # pragma: no cover - depends on the environment
    _HAS_HDF5PLUGIN = False

__all__ = [
    "TCFInfo",
    "TCFReader",
    "iter_tcf_frames",
    "read_tcf_fluorescence",
    "read_tcf_frame",
    "tcf_fluorescence_channels",
    "tcf_frame_count",
    "tcf_info",
]

PathLike = str | os.PathLike
_FRAME_NAME = re.compile(r"^\d{6}$")
_TILE_NAME = re.compile(r"^TILE_\d+$")
_RI3D = "/Data/3D"
_FL3D = "/Data/3DFL"


@dataclass(frozen=True)
class TCFInfo:
    """Header of a TCF file: what is needed to read any of its RI frames without reading pixels.

    Attributes:
        path: the file.
        frames: dataset (or tile group) names under ``/Data/3D`` in time order, e.g. ``("000000", "000001")``.
        shape_zyx: shape of one frame as stored, (Z, Y, X).
        spacing_um: voxel size (x, y, z) in micrometres.
        time_step_s: time between frames in seconds, ``None`` for a single frame or when not recorded.
        frame_times_s: per-frame ``Time`` attributes in seconds when every frame has one, else ``None``.
        medium_ri: refractive index of the medium (``/Info/Device`` attribute ``RI``), ``None`` if absent.
        format_version: the root ``FormatVersion`` attribute ("" if absent).
    """

    path: str
    frames: tuple[str, ...]
    shape_zyx: tuple[int, int, int]
    spacing_um: tuple[float, float, float]
    time_step_s: float | None
    frame_times_s: tuple[float, ...] | None
    medium_ri: float | None
    format_version: str

    @property
    def shape_xyz(self) -> tuple[int, int, int]:
        """Shape of one frame as returned, (X, Y, Z)."""
        return self.shape_zyx[::-1]  # type: ignore[return-value]

    def frame_index(self, t: int) -> int:
        """Normalise a time index (negative counts from the end); out of range raises ``InputError``."""
        n = len(self.frames)
        if not isinstance(t, (int, np.integer)) or isinstance(t, bool):
            raise TypeError(f"time index must be an int, got {type(t).__name__}")
        if not -n <= t < n:
            raise input_error(self.path, f"time point {t} out of range: the file has {n} time point(s)")
        return int(t) % n


def _attr(node: h5py.Group | h5py.Dataset, name: str, default: Any = None) -> Any:
    """Attribute as a Python scalar: Tomocube stores most attributes as one-element arrays."""
    if name not in node.attrs:
        return default
    value = node.attrs[name]
    if isinstance(value, np.ndarray):
        if value.size == 0:
            return default
        value = value.reshape(-1)[0]
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return value.item() if isinstance(value, np.generic) else value


def _float_attr(node: h5py.Group | h5py.Dataset, name: str) -> float | None:
    try:
        value = float(_attr(node, name))
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def _open(path: PathLike) -> h5py.File:
    if not os.path.exists(path):
        raise input_error(path, "file not found")
    try:
        return h5py.File(path, "r")
    except Exception as exc:  # h5py reports both a non-HDF5 file and a truncated one as OSError
        raise input_error(path, "not a valid HDF5/TCF file (corrupt or truncated?)", exc) from exc


@contextmanager
def _reading(path: PathLike) -> Iterator[None]:
    """One corrupt file makes h5py raise KeyError, ValueError, OSError, RuntimeError, TypeError...:
    to the user they all mean the same, so they become one :class:`InputError` (messages folded)."""
    with library_messages(path):
        try:
            yield
        except InputError:
            raise
        except Exception as exc:  # noqa: BLE001 - see above
            raise input_error(path, "not a valid HDF5/TCF file (corrupt or truncated?)", exc) from exc


#: HDF5 filters that do not shrink data (byte shuffling, checksums)
_NON_COMPRESSING = {"shuffle", "fletcher32", "2", "3"}


def _codec(node: h5py.Dataset) -> str | None:
    """``None`` (raw), ``"deflate"`` (gzip) or the filter's name, for :func:`check_declared_size`."""
    filters = {str(k) for k in node._filters} - _NON_COMPRESSING  # noqa: SLF001 - h5py's own record of the pipeline
    if not filters:
        return None
    return "deflate" if filters <= {"gzip", "1"} else ",".join(sorted(filters))


def _check_stored(path: PathLike, name: str, node: h5py.Dataset | h5py.Group, shape_zyx: tuple[int, ...]) -> None:
    """A frame's declared size against the bytes HDF5 stores for it, before anything is allocated."""
    if isinstance(node, h5py.Dataset):
        check_declared_size(path, tuple(node.shape), node.dtype.itemsize, node.id.get_storage_size(), _codec(node),
                            part=f"time point {name}")
        return
    tiles = [node[k] for k in node.keys() if _TILE_NAME.match(k) and isinstance(node[k], h5py.Dataset)]
    codecs = {_codec(tile) for tile in tiles}
    itemsize = 1 if bool(_attr(node, "ScalarType", False)) else 2
    stored = sum(tile.id.get_storage_size() for tile in tiles)
    check_declared_size(path, shape_zyx, itemsize, stored, codecs.pop() if len(codecs) == 1 else "mixed",
                        part=f"time point {name}")


def _info_from_open(f: h5py.File, path: PathLike) -> TCFInfo:
    if _RI3D not in f:
        present = ", ".join(sorted(f["Data"].keys())) if isinstance(f.get("Data"), h5py.Group) else ""
        what = f"it holds only /Data/{{{present}}}" if present else "no /Data group: not a Tomocube TCF file"
        raise input_error(path, f"no 3D refractive-index data at {_RI3D} ({what})")
    group = f[_RI3D]
    frames = sorted((k for k in group.keys() if _FRAME_NAME.match(k)), key=int)
    if not frames:
        raise input_error(path, f"{_RI3D} holds no time-point volumes (expected datasets named 000000, ...)")
    count = _attr(group, "DataCount")
    if isinstance(count, (int, np.integer)) and count > len(frames):
        raise input_error(path, f"DataCount says {count} time points but only {len(frames)} are stored (truncated?)")

    spacing = tuple(_float_attr(group, f"Resolution{a}") for a in "XYZ")
    if any(s is None for s in spacing):
        raise input_error(path, f"{_RI3D} lacks the ResolutionX/ResolutionY/ResolutionZ attributes (voxel size)")

    first = group[frames[0]]
    if isinstance(first, h5py.Dataset):
        shape = tuple(int(n) for n in first.shape)
    else:  # tiled frames: the full size is only in the group attributes
        shape = tuple(int(_attr(group, f"Size{a}", 0)) for a in "ZYX")
    if len(shape) != 3:
        raise input_error(path, f"{_RI3D}/{frames[0]} has shape {shape}; expected a 3D (Z, Y, X) volume")

    for name in frames:
        _check_stored(path, name, group[name], shape)
    times = [_float_attr(group[name], "Time") for name in frames]
    frame_times = tuple(times) if len(frames) > 1 and all(t is not None for t in times) else None  # type: ignore[arg-type]
    if frame_times is not None and not all(plausible_time_step(b - a) for a, b in zip(frame_times, frame_times[1:])):
        frame_times = None  # not increasing, or absurd: the frames are timed by the time step or their index
    dt: float | None = None
    if len(frames) > 1:
        dt = plausible_time_step(_float_attr(group, "TimeInterval"))
        if dt is None and frame_times is not None:
            dt = plausible_time_step(float(np.median(np.diff(frame_times))))

    medium = None
    if isinstance(f.get("Info/Device"), h5py.Group):
        medium = plausible_medium_ri(_attr(f["Info/Device"], "RI"))
    version = _attr(f, "FormatVersion", "")
    return TCFInfo(
        path=os.fspath(path),
        frames=tuple(frames),
        shape_zyx=shape,  # type: ignore[arg-type]
        spacing_um=spacing,  # type: ignore[arg-type]
        time_step_s=dt,
        frame_times_s=frame_times,
        medium_ri=medium,
        format_version=str(version),
    )


def tcf_info(path: PathLike) -> TCFInfo:
    """Read the header of a TCF file (no pixel data).

    Raises:
        InputError: missing file, not HDF5/corrupt, no ``/Data/3D`` volumes, no voxel size, truncated,
            or a frame declaring more data than the file stores.
    """
    with _reading(path), _open(path) as f:
        return _info_from_open(f, path)


def tcf_frame_count(path: PathLike) -> int:
    """Number of RI time points stored in the TCF file at ``path``."""
    return len(tcf_info(path).frames)


def _to_ri(raw: np.ndarray, out: np.ndarray, uint8_offset: float | None) -> None:
    """Write refractive index for stored values ``raw`` into the float32 array ``out`` (same shape)."""
    if np.issubdtype(raw.dtype, np.floating):
        out[...] = raw  # format < 1.3: stored as RI already
    elif uint8_offset is not None:
        np.divide(raw, np.float32(1e3), out=out)
        out += np.float32(uint8_offset)
    else:
        np.divide(raw, np.float32(1e4), out=out)  # format >= 1.3: uint16 RI x 10,000


def _fill_frame(f: h5py.File, info: TCFInfo, name: str, out_zyx: np.ndarray) -> None:
    """Read time point ``name`` into ``out_zyx`` (float32, (Z, Y, X)) as refractive index."""
    node = f[f"{_RI3D}/{name}"]
    try:
        if isinstance(node, h5py.Dataset):
            if tuple(node.shape) != info.shape_zyx:
                raise input_error(info.path, f"time point {name} has shape {node.shape}, frame 0 has {info.shape_zyx}")
            _to_ri(node[()], out_zyx, None)
            return
        # Tiled intermediate format: tiles carry their placement as inclusive index ranges.
        scalar_u8 = bool(_attr(node, "ScalarType", False))
        stored = np.zeros(info.shape_zyx, dtype=np.uint8 if scalar_u8 else np.uint16)
        tiles = sorted(k for k in node.keys() if _TILE_NAME.match(k))
        if not tiles:
            raise input_error(info.path, f"time point {name} is a group without TILE_nnnn datasets")
        for tile_name in tiles:
            tile = node[tile_name]
            if _attr(tile, "SamplingStep", 1) != 1:
                continue  # down-sampled preview tiles duplicate the full-resolution ones
            first = [int(_attr(tile, f"DataIndexOffsetPoint{a}", 0)) for a in "ZYX"]
            last = [int(_attr(tile, f"DataIndexLastPoint{a}", 0)) for a in "ZYX"]
            dst = tuple(slice(a, b + 1) for a, b in zip(first, last))
            src = tuple(slice(0, b - a + 1) for a, b in zip(first, last))
            stored[dst] += tile[src]
        _to_ri(stored, out_zyx, float(_attr(node, "RIMin", 0.0)) if scalar_u8 else None)
    except OSError as exc:
        if "filter" in str(exc).lower():
            hint = "" if _HAS_HDF5PLUGIN else "; install hdf5plugin"
            raise input_error(info.path, f"time point {name} uses an unavailable HDF5 compression filter{hint}", exc) from exc
        raise input_error(info.path, f"cannot read time point {name} (truncated or corrupt file?)", exc) from exc


def _frame_meta(info: TCFInfo) -> dict:
    """MONAI-style meta for one (X, Y, Z) frame."""
    affine = diag_affine(info.spacing_um)
    meta: dict[str, Any] = {
        MetaKeys.AFFINE: affine,
        MetaKeys.ORIGINAL_AFFINE: affine.copy(),
        MetaKeys.SPATIAL_SHAPE: np.asarray(info.shape_xyz),
        MetaKeys.SPACE: SpaceKeys.RAS,
        MetaKeys.ORIGINAL_CHANNEL_DIM: "no_channel",
        "spacing": np.asarray(info.spacing_um, dtype=np.float64),
        "spacing_source": "tcf",
        "axes": "XYZ",
        "format": "tcf",
        "tcf_format_version": info.format_version,
        "frame_count": len(info.frames),
        "filename_or_obj": info.path,
    }
    if info.medium_ri is not None:
        meta["medium_ri"] = info.medium_ri
    if info.time_step_s is not None:
        meta["time_step_s"] = info.time_step_s
    return meta


def _frame_time(info: TCFInfo, index: int) -> float | None:
    if info.frame_times_s is not None:
        return info.frame_times_s[index] - info.frame_times_s[0]
    if info.time_step_s is not None:
        return index * info.time_step_s
    return 0.0 if len(info.frames) == 1 else None


def _read_frame_open(f: h5py.File, info: TCFInfo, t: int) -> tuple[np.ndarray, dict]:
    index = info.frame_index(t)
    zyx = np.empty(info.shape_zyx, dtype=np.float32)
    _fill_frame(f, info, info.frames[index], zyx)
    meta = _frame_meta(info)
    meta["time_index"] = index
    time_s = _frame_time(info, index)
    if time_s is not None:
        meta["time_s"] = time_s
    return zyx.transpose(2, 1, 0), meta  # (Z, Y, X) -> (X, Y, Z) as a view: no copy


def read_tcf_frame(path: PathLike, t: int, info: TCFInfo | None = None) -> tuple[np.ndarray, dict]:
    """Read time point ``t`` only (negative counts from the end), without touching the other frames.

    ``info`` (from :func:`tcf_info`) spares re-parsing the file's layout when frames are read one by one.

    Returns:
        ``(array, meta)``: float32 RI of shape (X, Y, Z) (a transposed view of the stored (Z, Y, X)
        block), and meta with ``affine``, ``spacing`` (x, y, z um), ``spatial_shape``,
        ``original_channel_dim="no_channel"``, ``time_index``, ``time_s`` (when known), ``frame_count``,
        ``time_step_s`` and ``medium_ri`` when the file gives them.
    """
    with _reading(path), _open(path) as f:
        return _read_frame_open(f, info or _info_from_open(f, path), t)


def iter_tcf_frames(path: PathLike, time_points: Sequence[int] | None = None) -> Iterator[tuple[np.ndarray, dict]]:
    """Yield ``read_tcf_frame(path, t)`` for each time point (all by default), keeping the file open.

    Only one frame is held in memory at a time, so a long time-lapse can be segmented as a stream.
    """
    with _open(path) as f:
        with _reading(path):
            info = _info_from_open(f, path)
        for t in range(len(info.frames)) if time_points is None else time_points:
            with _reading(path):
                frame = _read_frame_open(f, info, t)
            yield frame


def tcf_fluorescence_channels(path: PathLike) -> tuple[str, ...]:
    """The fluorescence channels (``CH0``, ...) recorded in a TCF file; empty when there are none."""
    with _reading(path), _open(path) as f:
        group = f.get(_FL3D)
        if not isinstance(group, h5py.Group):
            return ()
        return tuple(sorted(k for k in group.keys() if re.match(r"^CH\d+$", k) and isinstance(group[k], h5py.Group)))


def read_tcf_fluorescence(path: PathLike, t: int = 0, channel: str = "CH0") -> tuple[np.ndarray, dict]:
    """Time point ``t`` of a fluorescence channel, on its own grid.

    Returns:
        ``(array, meta)``: float32 intensities of shape (X, Y, Z'), and meta with ``spacing`` (x, y, z
        um of the fluorescence grid), ``offset_z_um`` (its z-origin in the RI frame: voxel ``k``'s
        centre lies at ``(k + 0.5) * dz' + offset_z_um`` where RI voxel ``i``'s lies at
        ``(i + 0.5) * dz``), ``channel``, ``name`` (the stain, when recorded), ``time_index``.

    Raises:
        InputError: the file has no such channel or time point, or its grid is not stated.
    """
    with _reading(path), _open(path) as f:
        group = f.get(_FL3D)
        if not isinstance(group, h5py.Group):
            raise input_error(path, f"no fluorescence channel recorded ({_FL3D} is missing)")
        node = group.get(channel)
        if not isinstance(node, h5py.Group):
            present = ", ".join(sorted(group.keys())) or "none"
            raise input_error(path, f"no fluorescence channel {channel} in {_FL3D} (present: {present})")
        frames = sorted((k for k in node.keys() if _FRAME_NAME.match(k)), key=int)
        if not frames:
            raise input_error(path, f"{_FL3D}/{channel} holds no time-point volumes")
        if not -len(frames) <= t < len(frames):
            raise input_error(path, f"{_FL3D}/{channel} has {len(frames)} time point(s), time point {t} asked for")
        spacing = tuple(_float_attr(group, f"Resolution{a}") for a in "XYZ")
        if any(v is None or v <= 0 for v in spacing):
            raise input_error(path, f"{_FL3D} lacks valid ResolutionX/ResolutionY/ResolutionZ attributes (voxel size)")
        data = node[frames[t]]
        if not isinstance(data, h5py.Dataset) or data.ndim != 3:
            raise input_error(path, f"{_FL3D}/{channel}/{frames[t]} is not a (Z, Y, X) volume")
        check_declared_size(path, tuple(data.shape), data.dtype.itemsize, data.id.get_storage_size(), _codec(data),
                            part=f"fluorescence time point {frames[t]}")
        zyx = data[()].astype(np.float32)
        meta = {
            "spacing": np.asarray(spacing, dtype=np.float64),
            "offset_z_um": _float_attr(group, "OffsetZ") or 0.0,
            "channel": channel,
            "name": str(_attr(node, "Name", "")),
            "time_index": len(frames) + t if t < 0 else t,
            "frame_count": len(frames),
        }
        return zyx.transpose(2, 1, 0), meta


class TCFReader(ImageReader):
    """MONAI ``ImageReader`` for Tomocube TCF files (``.tcf``/``.TCF``, and ``.h5`` files in TCF layout).

    ``get_data`` returns float32 refractive index: (X, Y, Z) for a single time point, (X, Y, Z, T) for a
    time series, with ``original_channel_dim`` ``"no_channel"`` and ``-1`` respectively, so
    ``EnsureChannelFirstd`` turns a time series into (T, X, Y, Z) with time as channels.

    Args:
        time_points: ``None`` reads every time point; an ``int`` reads that one as (X, Y, Z); a sequence
            reads those as (X, Y, Z, T) even when it has one element.

    Example::

        LoadImaged(keys="image", reader=TCFReader(time_points=0))
    """

    def __init__(self, time_points: int | Sequence[int] | None = None) -> None:
        super().__init__()
        self.time_points = time_points

    def verify_suffix(self, filename: Sequence[PathLike] | PathLike) -> bool:
        """True for ``.tcf`` (any case), ``.h5`` and ``.hdf5`` files."""
        return is_supported_format(filename, ["tcf", "h5", "hdf5"])

    def read(self, data: Sequence[PathLike] | PathLike, **kwargs: Any) -> TCFInfo | list[TCFInfo]:
        """Read the header(s) only; pixels are read by :meth:`get_data`.

        Returns:
            a :class:`TCFInfo` per file (a list when several files are given).
        """
        infos = [tcf_info(name) for name in ensure_tuple(data)]
        return infos if len(infos) > 1 else infos[0]

    def get_data(self, img: TCFInfo | Sequence[TCFInfo]) -> tuple[np.ndarray, dict]:
        """Read the RI pixels for the header(s) from :meth:`read`.

        Returns:
            ``(array, meta)``; several files are stacked as MONAI's readers do (a new first axis for
            3D data, concatenated along time for 4D data).
        """
        arrays: list[np.ndarray] = []
        compatible_meta: dict = {}
        for info in ensure_tuple(img):
            with _reading(info.path):
                array, meta = self._read_one(info)
            arrays.append(array)
            _copy_compatible_dict(meta, compatible_meta)
        return _stack_images(arrays, compatible_meta), compatible_meta

    def _read_one(self, info: TCFInfo) -> tuple[np.ndarray, dict]:
        with _open(info.path) as f:
            if isinstance(self.time_points, (int, np.integer)) or (self.time_points is None and len(info.frames) == 1):
                return _read_frame_open(f, info, int(self.time_points or 0))
            indices = [info.frame_index(t) for t in (range(len(info.frames)) if self.time_points is None else self.time_points)]
            check_declared_size(info.path, (len(indices), *info.shape_zyx), 4, None)  # the whole series in memory
            # Fill a (T, Z, Y, X) block frame by frame, then view it as (X, Y, Z, T): one float32 copy in memory.
            tzyx = np.empty((len(indices), *info.shape_zyx), dtype=np.float32)
            for k, index in enumerate(indices):
                _fill_frame(f, info, info.frames[index], tzyx[k])
        meta = _frame_meta(info)
        meta[MetaKeys.ORIGINAL_CHANNEL_DIM] = -1
        meta["axes"] = "XYZT"
        meta["time_indices"] = np.asarray(indices)
        return tzyx.transpose(3, 2, 1, 0), meta
