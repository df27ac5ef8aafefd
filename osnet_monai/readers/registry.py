"""Pick a reader by file suffix, and load any supported tomogram into one convention.

``load_tomogram`` returns float32 refractive index in NIfTI/MONAI axis order, (X, Y, Z) or
(X, Y, Z, T), with ``spacing`` in micrometres, whatever the file format. A 2D section comes back as
(X, Y, 1) with ``is_2d=True`` so downstream code can treat it as a one-section stack; ``input_ndim=2``
tells it apart from a 3D file with one section, so the outputs can be written 2D like the input.

Unit conventions for formats that do not state units: NRRD/MetaImage spacing is taken as micrometres;
NIfTI spacing is converted from the header's ``xyzt_units`` (``micron``, ``meter``; ``mm`` is honoured only
when the result is a plausible voxel size, because ITK labels every NIfTI it writes as mm even when the
numbers are micrometres; ``unknown`` is taken as micrometres, as MONAI writes it).
"""

from __future__ import annotations

import inspect
import os
import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import nibabel as nib
import numpy as np
from monai.data import ITKReader, NibabelReader
from monai.data.image_reader import ImageReader
from monai.utils import MetaKeys

from ._util import diag_affine, length_to_um, parse_medium_ri, plausible_time_step, time_to_s
from .capture import LibraryMessages, c_library_stderr, library_messages
from .checks import MAX_VOXEL_UM, check_declared_size, check_tomogram, spacing_from_affine
from .errors import InputError, input_error
from .tcf import TCFReader
from .tiff import TiffStackReader

__all__ = ["file_stem", "is_supported", "load_tomogram", "reader_for", "register_reader", "supported_suffixes"]

PathLike = str | os.PathLike
ReaderFactory = Callable[..., ImageReader]

# suffix (lower case, with the dot) -> (factory, format name used in meta["format"] and messages)
_REGISTRY: dict[str, tuple[ReaderFactory, str]] = {}
_FORMAT_LABEL = {"nifti": "NIfTI", "itk": "NRRD/MetaImage", "tiff": "TIFF", "tcf": "HDF5/TCF"}


def register_reader(suffixes: str | Iterable[str], factory: ReaderFactory, format_name: str) -> None:
    """Route files ending in ``suffixes`` (e.g. ``".nii.gz"``; matched case-insensitively) to ``factory()``.

    ``factory`` is called with keyword ``default_spacing_um`` when its signature has that parameter.
    """
    for suffix in [suffixes] if isinstance(suffixes, str) else suffixes:
        suffix = suffix.lower() if suffix.startswith(".") else f".{suffix.lower()}"
        _REGISTRY[suffix] = (factory, format_name)


register_reader((".nii", ".nii.gz"), NibabelReader, "nifti")
register_reader((".nrrd", ".nhdr", ".mha", ".mhd"), ITKReader, "itk")
register_reader((".tif", ".tiff", ".ome.tif", ".ome.tiff"), TiffStackReader, "tiff")
register_reader((".tcf", ".h5", ".hdf5"), TCFReader, "tcf")


def supported_suffixes() -> tuple[str, ...]:
    """Every registered suffix, e.g. ``(".h5", ".hdf5", ".mha", ...)``."""
    return tuple(sorted(_REGISTRY))


def _matching_suffix(path: PathLike) -> str | None:
    name = os.path.basename(os.fspath(path)).lower()
    # longest suffix first so ".nii.gz" wins over ".nii"-like prefixes and ".ome.tif" over ".tif"
    for suffix in sorted(_REGISTRY, key=len, reverse=True):
        if name.endswith(suffix):
            return suffix
    return None


def _lookup(path: PathLike) -> tuple[ReaderFactory, str] | None:
    suffix = _matching_suffix(path)
    return _REGISTRY[suffix] if suffix else None


def is_supported(path: PathLike) -> bool:
    """Whether a reader is registered for ``path``'s suffix (case-insensitive)."""
    return _matching_suffix(path) is not None


def file_stem(path: PathLike) -> str:
    """File name without its image suffix (``cell_01.nii.gz`` -> ``cell_01``, ``a.ome.tif`` -> ``a``)."""
    name = os.path.basename(os.fspath(path))
    suffix = _matching_suffix(name)
    return name[: -len(suffix)] if suffix else os.path.splitext(name)[0]


def reader_for(path: PathLike, default_spacing_um: Sequence[float] | None = None) -> ImageReader:
    """A MONAI ``ImageReader`` instance for ``path``, chosen by suffix.

    ``.nii``/``.nii.gz``: ``NibabelReader``; ``.nrrd``/``.nhdr``/``.mha``/``.mhd``: ``ITKReader``;
    ``.tif``/``.tiff``: :class:`TiffStackReader` (given ``default_spacing_um``); ``.tcf``/``.h5``/``.hdf5``:
    :class:`TCFReader`.

    Raises:
        InputError: the suffix is not supported.
    """
    found = _lookup(path)
    if found is None:
        raise input_error(path, f"unsupported file type; supported: {', '.join(supported_suffixes())}")
    factory, _ = found
    try:
        takes_spacing = "default_spacing_um" in inspect.signature(factory).parameters
    except (TypeError, ValueError):  # builtins/extension types without a signature
        takes_spacing = False
    return factory(default_spacing_um=default_spacing_um) if takes_spacing else factory()


def format_of(path: PathLike) -> str:
    """The registered format name of ``path`` ("nifti", "itk", "tiff", "tcf"), or "unknown"."""
    found = _lookup(path)
    return found[1] if found else "unknown"


def _check_ndim(path: str, shape: Sequence[int]) -> None:
    """Refuse data with fewer than 2 dimensions: no section can be cut from a line or a single value."""
    if len(shape) < 2:
        raise input_error(
            path, f"{len(shape)} dimension(s) {tuple(int(s) for s in shape)}; expected a 2D section, a 3D stack or a 4D series"
        )


def nifti_meta(path: str, shape: Sequence[int], meta: dict) -> None:
    """Spacing (um), time step and medium RI from a NIfTI header, following the module's unit rules.

    ``shape`` is the data's shape as stored. The whole-file read and the frame-by-frame reader
    (:func:`osnet_monai.readers.open_frames`, which reads the header only) share it, so the
    dimensionality check and ``input_ndim`` live here.
    """
    ndim = len(shape)
    _check_ndim(path, shape)
    meta["input_ndim"] = ndim
    # The header as stored: MONAI's reader may rewrite pixdim (time step included) to match the affine.
    header = nib.load(path).header
    affine = np.asarray(meta[MetaKeys.AFFINE], dtype=np.float64)
    spacing = spacing_from_affine(affine)
    r = spacing.size
    space_unit, time_unit = header.get_xyzt_units()
    factor, source = length_to_um(space_unit if space_unit != "micron" else "um"), "nifti"
    if space_unit == "mm" and not np.all(spacing * 1e3 <= MAX_VOXEL_UM):
        factor, source = 1.0, "nifti_assumed_um"  # ITK labels everything mm; the numbers are um
    elif factor is None:
        factor, source = 1.0, "nifti_assumed_um"
    affine[:r, :] *= factor
    meta[MetaKeys.AFFINE] = affine
    meta["spacing"] = spacing * factor
    meta["spacing_source"] = source
    if ndim == 4:
        with np.errstate(over="ignore", invalid="ignore"):
            dt = plausible_time_step(float(header["pixdim"][4]) * (time_to_s(time_unit) or 1.0))
        if dt is not None:
            meta["time_step_s"] = dt
    medium = parse_medium_ri([header["descrip"]])
    if medium is not None:
        meta["medium_ri"] = medium
    meta["axes"] = "XYZTC"[: ndim] if ndim >= 3 else "XY"


def check_nifti_size(path: str, frames: bool = False) -> None:
    """The NIfTI header's data size against the file (gzip: deflate's bound) and memory, before reading.

    ``frames``: only one (X, Y, Z) frame is read at a time (:func:`osnet_monai.readers.open_frames`).
    """
    header = nib.load(path).header  # header only: the data stays on disk
    shape = tuple(int(n) for n in header.get_data_shape())
    gzipped = path.lower().endswith(".gz")
    size = os.path.getsize(path)
    stored = size if gzipped else size - int(header.get_data_offset())
    per_frame = int(np.prod(shape[:3], dtype=np.float64)) if frames and len(shape) == 4 else None
    check_declared_size(path, shape, header.get_data_dtype().itemsize, max(stored, 0),
                        "deflate" if gzipped else None, voxels_read=per_frame)


# where an ITK header keeps its encoding and its data file (NRRD fields, MetaImage tags)
_ITK_FIELDS = re.compile(rb"^(encoding|data ?file|CompressedData|ElementDataFile)\s*[:=]\s*(.*?)\s*$", re.I | re.M)


_NRRD_TYPES = {
    "signed char", "int8", "int8_t", "uchar", "unsigned char", "uint8", "uint8_t", "short", "short int",
    "signed short", "signed short int", "int16", "int16_t", "ushort", "unsigned short", "unsigned short int",
    "uint16", "uint16_t", "int", "signed int", "int32", "int32_t", "uint", "unsigned int", "uint32", "uint32_t",
    "longlong", "long long", "long long int", "signed long long", "signed long long int", "int64", "int64_t",
    "ulonglong", "unsigned long long", "unsigned long long int", "uint64", "uint64_t", "float", "double",
}
_MET_TYPES = {f"MET_{t}" for t in ("CHAR", "UCHAR", "SHORT", "USHORT", "INT", "UINT", "LONG", "ULONG",
                                   "LONG_LONG", "ULONG_LONG", "FLOAT", "DOUBLE")}


def _check_itk_header(path: str, head: bytes) -> None:
    """The few NRRD/MetaImage header fields that size the data, checked before ITK reads them: ITK
    aborts or crashes the whole process on some corrupt values (``NDims = 1e+300``)."""
    nrrd = path.lower().endswith((".nrrd", ".nhdr"))
    text = head.decode("latin-1")
    sep = ":" if nrrd else "="
    fields = {}
    for line in text.splitlines():
        if nrrd and not line.strip():
            break  # the end of an attached NRRD header
        key, found, value = line.partition(sep)
        if found and not key.startswith("#"):
            fields.setdefault(key.strip().lower(), value.strip().lstrip("="))
        if not nrrd and key.strip() == "ElementDataFile":
            break
    if nrrd and not text.startswith("NRRD000"):
        raise input_error(path, "not a NRRD file (no NRRD000x magic line)")
    ndim_key, size_key, type_key = ("dimension", "sizes", "type") if nrrd else ("ndims", "dimsize", "elementtype")
    required = (ndim_key, size_key, type_key, "encoding") if nrrd else (ndim_key, size_key, type_key, "elementdatafile")
    missing = [key for key in required if key not in fields]
    if missing:
        raise input_error(path, f"corrupt header: no {', '.join(missing)} field")
    try:
        ndim = int(fields[ndim_key])
        sizes = [int(n) for n in fields[size_key].split()]
    except (KeyError, ValueError) as exc:
        raise input_error(path, f"corrupt header: {ndim_key} and {size_key} must be integers", exc) from exc
    kind = fields.get(type_key, "")
    if not 1 <= ndim <= 5 or len(sizes) != ndim or not all(1 <= n < 2**31 for n in sizes):
        raise input_error(path, f"corrupt header: {ndim_key} {ndim}, {size_key} {sizes[:6]}")
    if (kind.lower() not in _NRRD_TYPES) if nrrd else (kind.upper() not in _MET_TYPES):
        raise input_error(path, f"corrupt header: unknown pixel type {kind[:40]!r}")
    channels = fields.get("elementnumberofchannels", "1")
    if not channels.isdigit() or not 1 <= int(channels) <= 16:
        raise input_error(path, f"corrupt header: {channels[:20]!r} channels")


def _check_itk_size(path: str) -> None:
    """NRRD/MetaImage: the header's data size (read by ITK's ImageIO, no pixels) against the file(s)."""
    import itk

    with open(path, "rb") as f:
        _check_itk_header(path, f.read(1 << 16))

    io = itk.ImageIOFactory.CreateImageIO(path, itk.CommonEnums.IOFileMode_ReadMode)
    if io is None:
        raise input_error(path, "not a valid NRRD/MetaImage file (no ITK reader recognises it)")
    io.SetFileName(path)
    io.ReadImageInformation()
    shape = tuple(int(io.GetDimensions(i)) for i in range(io.GetNumberOfDimensions()))
    itemsize = int(io.GetComponentSize()) * int(io.GetNumberOfComponents())
    with open(path, "rb") as f:
        head = f.read(1 << 16)
    # an attached NRRD header ends at its first blank line, a MetaImage one after ElementDataFile
    if path.lower().endswith((".nrrd", ".nhdr")):
        end = head.find(b"\n\n") + 2 if b"\n\n" in head else len(head)
    else:
        tag = head.find(b"ElementDataFile")
        end = head.find(b"\n", tag) + 1 if tag >= 0 and b"\n" in head[tag:] else len(head)
    head = head[:end]
    fields = {k.lower().replace(b" ", b""): v for k, v in _ITK_FIELDS.findall(head)}
    encoding = fields.get(b"encoding", b"raw").lower()
    compressed = encoding in (b"gzip", b"gz") or fields.get(b"compresseddata", b"false").lower() == b"true"
    codec = "deflate" if compressed else None if encoding == b"raw" else encoding.decode("ascii", "replace")
    stored: int | None = max(os.path.getsize(path) - end, 0)
    data_file = (fields.get(b"datafile") or fields.get(b"elementdatafile") or b"").decode("utf-8", "replace")
    if data_file and data_file.upper() != "LOCAL":
        data_path = os.path.join(os.path.dirname(path), data_file)
        stored = os.path.getsize(data_path) if os.path.isfile(data_path) else None  # lists and patterns: memory only
    check_declared_size(path, shape, itemsize, stored, codec)


def _itk_meta(img: Any, array: np.ndarray, meta: dict) -> None:
    """Spacing (taken as um), time step of a 4D scalar image, colour axis of vector pixels."""
    spacing = np.asarray(meta["spacing"], dtype=np.float64)
    colour = img.GetNumberOfComponentsPerPixel() > 1
    n_spatial = min(len(spacing), 3)
    meta["spacing"] = spacing[:n_spatial]
    meta["spacing_source"] = "itk_assumed_um"
    if not colour and array.ndim == 4 and len(spacing) == 4 and plausible_time_step(spacing[3]) is not None:
        meta["time_step_s"] = float(spacing[3])
    base = "XYZ"[:n_spatial]
    meta["axes"] = base + ("C" if colour else "T" * (array.ndim - n_spatial))
    medium = parse_medium_ri(v for v in meta.values() if isinstance(v, (str, bytes)))
    if medium is not None:
        meta["medium_ri"] = medium


def _promote_2d(array: np.ndarray, meta: dict, default_spacing_um: Sequence[float] | None) -> np.ndarray:
    """(X, Y) -> (X, Y, 1) with a z spacing, so a section goes through the same code as a stack."""
    array = array[:, :, None]
    spacing = list(np.asarray(meta["spacing"], dtype=np.float64)[:2])
    z = float(default_spacing_um[2]) if default_spacing_um is not None else 1.0  # z is unused for one section
    meta["spacing"] = np.asarray([*spacing, z])
    meta["axes"] = "XYZ" + str(meta.get("axes", "XY"))[2:]
    return array


def load_tomogram(
    path: PathLike,
    default_spacing_um: Sequence[float] | None = None,
    check: bool = True,
) -> tuple[np.ndarray, dict]:
    """Read a tomogram in any supported format and return it as float32 RI with micrometre spacing.

    Args:
        path: a ``.nii``/``.nii.gz``, ``.nrrd``/``.nhdr``/``.mha``/``.mhd``, ``.tif``/``.tiff`` or
            ``.tcf``/``.TCF``/``.h5`` file.
        default_spacing_um: voxel size (x, y, z) for TIFFs without voxel-size metadata, and the z
            spacing given to a 2D section.
        check: run :func:`check_tomogram` (shape, voxel size, NaN/Inf, all-zero, RI range; uint16
            RI x 10,000 without metadata is divided by 10,000 and flagged ``ri_scale_detected``).
            ``False`` only casts to float32.

    Returns:
        ``(array, meta)``. ``array``: float32, (X, Y, Z) or (X, Y, Z, T); a 2D section is (X, Y, 1).
        ``meta``: ``affine`` (4 x 4, um), ``spacing`` (x, y, z um), ``spatial_shape``,
        ``original_channel_dim`` (-1 for 4D, ``"no_channel"`` otherwise), ``axes`` ("XYZ"/"XYZT"),
        ``is_2d`` (one section: a 2D file, or a 3D file with Z = 1), ``input_ndim`` (dimensions of the
        array as stored in the file: 2 for a 2D section, which is then promoted to (X, Y, 1)), ``format`` ("nifti", "itk", "tiff", "tcf"), ``spacing_source``, ``filename_or_obj``,
        ``ri_scale_detected`` (when checked), and ``time_step_s`` / ``medium_ri`` when the file gives them.

    Raises:
        InputError: one line naming the file and the problem: missing, unsupported suffix, unreadable
            or corrupt, fewer than 2 dimensions, or failing a check.
    """
    path_str = os.fspath(path)
    if not os.path.exists(path_str):
        raise input_error(path_str, "file not found")
    with library_messages(path_str) as said:
        return _load(path_str, default_spacing_um, check, said)


def _load(
    path_str: str, default_spacing_um: Sequence[float] | None, check: bool, said: LibraryMessages
) -> tuple[np.ndarray, dict]:
    fmt = format_of(path_str)
    reader = reader_for(path_str, default_spacing_um=default_spacing_um)
    try:
        if fmt == "nifti":
            check_nifti_size(path_str)
            img = reader.read(path_str)
            array, meta = reader.get_data(img)
            array, meta = np.asarray(array), dict(meta)
            nifti_meta(path_str, array.shape, meta)
        elif fmt == "itk":
            with c_library_stderr(said, "itk"):  # ITK prints its complaints to std::cerr
                _check_itk_size(path_str)
                img = reader.read(path_str)
                array, meta = reader.get_data(img)
            array, meta = np.array(array), dict(meta)  # ITK hands out a view of its own buffer; own the memory
            _itk_meta(img, array, meta)
        else:
            img = reader.read(path_str)
            array, meta = reader.get_data(img)
            array, meta = np.asarray(array), dict(meta)
    except InputError:
        raise
    except Exception as exc:  # any library's parse/IO error means the same thing to the user
        raise input_error(path_str, f"not a valid {_FORMAT_LABEL.get(fmt, fmt)} file (corrupt or truncated?)", exc) from exc

    _check_ndim(path_str, array.shape)  # before promotion, which indexes the first two axes
    meta["format"] = fmt
    meta["filename_or_obj"] = path_str
    meta["input_ndim"] = array.ndim
    meta.setdefault("axes", "XYZT"[: array.ndim])
    if array.ndim == 2:
        array = _promote_2d(array, meta, default_spacing_um)
    if array.ndim == 4 and array.shape[3] == 1 and str(meta["axes"]).endswith("T"):
        array, meta["axes"] = array[..., 0], "XYZ"  # a 4D file with one time point is a volume
        meta.pop("time_step_s", None)
    n_spatial = min(array.ndim, 3)
    spacing = np.asarray(meta["spacing"], dtype=np.float64)[:n_spatial]
    meta["spacing"] = spacing
    affine = np.asarray(meta.get(MetaKeys.AFFINE, np.eye(4)), dtype=np.float64)
    meta[MetaKeys.AFFINE] = affine if affine.shape == (4, 4) else diag_affine(spacing)
    meta[MetaKeys.SPATIAL_SHAPE] = np.asarray(array.shape[:n_spatial])
    meta[MetaKeys.ORIGINAL_CHANNEL_DIM] = -1 if array.ndim == 4 else "no_channel"
    meta["is_2d"] = bool(array.ndim >= 3 and array.shape[2] == 1)

    if check:
        return check_tomogram(array, meta, path_str)
    return array.astype(np.float32, copy=False), meta
