"""Input checks for RI tomograms, and the one place that recognises refractive-index units.

All checks are cheap enough for a 1172 x 1172 x 210 float32 volume (about 1.1 GB): one full pass
(a sum, which is NaN/Inf if any value is) plus statistics on a regular-grid sample of about a million
voxels. Each failure raises :class:`InputError` with one line naming the file and the problem.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from typing import Any, TypeVar

import numpy as np
import torch

from .errors import input_error

__all__ = [
    "MAX_VOXEL_UM",
    "MIN_VOXEL_UM",
    "RI_RANGE",
    "RI_X10000_RANGE",
    "DEFLATE_MAX_RATIO",
    "as_refractive_index",
    "check_declared_size",
    "check_tomogram",
    "detect_ri_scale",
    "spacing_from_affine",
]

PathLike = str | os.PathLike
ArrayT = TypeVar("ArrayT", np.ndarray, torch.Tensor)

#: Median refractive index a cell tomogram can have (culture medium ~1.337, lipid droplets up to ~1.48).
RI_RANGE: tuple[float, float] = (1.0, 1.8)
#: The same range as stored by Tomocube's uint16 format, RI x 10,000.
RI_X10000_RANGE: tuple[float, float] = (10_000.0, 18_000.0)
#: Largest plausible voxel size in micrometres; anything above is a unit error (mm or nm taken for um).
MAX_VOXEL_UM: float = 50.0
#: Smallest plausible voxel size: 10 nm is far below any optical system's sampling (nm or m taken for um).
MIN_VOXEL_UM: float = 0.01
# Upper bounds on the 99.9th percentile: RI above 2.5 (denser than diamond) is not a cell.
_RI_HI, _RI_X10000_HI = 2.5, 25_000.0
_SAMPLE = 1 << 20
#: deflate (gzip, zlib) shrinks data at most 1032:1 (a 258-byte match coded in 2 bits); 1100 leaves room
#: for headers. A header declaring more than this per stored byte is corrupt, whatever it says.
DEFLATE_MAX_RATIO = 1100


def _numpy_view(array: np.ndarray | torch.Tensor) -> np.ndarray:
    if isinstance(array, torch.Tensor):
        return array.detach().cpu().numpy()  # a view for CPU tensors
    return np.asarray(array)


def _grid_sample(a: np.ndarray, target: int = _SAMPLE) -> np.ndarray:
    """About ``target`` voxels on a regular grid (every k-th voxel along each axis), as a flat array."""
    if a.size <= target:
        return a.reshape(-1)
    k = max(1, math.ceil((a.size / target) ** (1.0 / a.ndim)))
    return np.ascontiguousarray(a[(slice(None, None, k),) * a.ndim]).reshape(-1)


def _value_stats(a: np.ndarray) -> tuple[float, float, float] | None:
    """(0.1th percentile, median, 99.9th percentile) of the finite non-zero values; None if all are zero.

    Zeros are left out because reconstructions and crops pad with zeros; they are not RI.
    """
    sample = _grid_sample(a)
    if np.issubdtype(sample.dtype, np.floating):
        sample = sample[np.isfinite(sample)]
    nonzero = sample[sample != 0]
    if nonzero.size == 0:
        if sample.size == a.size or not np.any(a):
            return None
        nonzero = a[a != 0]  # rare: a few non-zero voxels the grid missed
        if np.issubdtype(nonzero.dtype, np.floating):
            nonzero = nonzero[np.isfinite(nonzero)]
        if nonzero.size == 0:
            return None
    lo, med, hi = np.percentile(nonzero.astype(np.float64, copy=False), [0.1, 50.0, 99.9])
    return float(lo), float(med), float(hi)


def _hint(dtype: np.dtype, lo: float, med: float, hi: float) -> str:
    integer = np.issubdtype(dtype, np.integer)
    if not integer and abs(med) < 0.3:
        return "this looks like RI contrast (n - n_medium): add the medium RI"
    if med < 0 or lo < 0:
        return "negative values, which no refractive index has"
    if dtype == np.uint8:
        return "this looks like an 8-bit image"
    if integer and hi <= 255:
        return "small integers: a label mask or an 8-bit image?"
    if integer and hi <= 4095:
        return "this looks like raw camera counts"
    return "this is not a refractive index"


def detect_ri_scale(array: np.ndarray | torch.Tensor, path: PathLike | None = None) -> float:
    """Factor that turns ``array`` into refractive index: ``1.0`` (already RI) or ``1e-4`` (RI x 10,000).

    Decided from the median and tails of the non-zero values: RI has a median in 1.0-1.8 (float data
    only: integers cannot hold RI); Tomocube's uint16 format (or a TIFF exported from it) has a median
    in 10,000-18,000. Anything else, e.g. 8-bit images, camera counts or negative values, is refused.

    Raises:
        InputError: all-zero/empty data, or values that are neither RI nor RI x 10,000 (the message
            says which range was found and which was expected).
    """
    a = _numpy_view(array)
    if a.size == 0:
        raise input_error(path, f"empty volume (shape {tuple(a.shape)})")
    stats = _value_stats(a)
    if stats is None:
        raise input_error(path, "all voxels are zero: nothing to segment")
    lo, med, hi = stats
    if np.issubdtype(a.dtype, np.floating) and RI_RANGE[0] <= med <= RI_RANGE[1] and lo > 0 and hi <= _RI_HI:
        return 1.0
    if RI_X10000_RANGE[0] <= med <= RI_X10000_RANGE[1] and lo > 0 and hi <= _RI_X10000_HI:
        return 1e-4
    raise input_error(
        path,
        f"values span {lo:.6g} to {hi:.6g} (median {med:.6g}, dtype {a.dtype}): {_hint(a.dtype, lo, med, hi)}; "
        f"expected refractive index (about {RI_RANGE[0]}-{RI_RANGE[1]}, medium ~1.337) "
        f"or Tomocube RI x 10,000 (about {RI_X10000_RANGE[0]:,.0f}-{RI_X10000_RANGE[1]:,.0f})",
    )


def as_refractive_index(array: ArrayT, path: PathLike | None = None) -> ArrayT:
    """Return ``array`` as float32 refractive index, dividing by 10,000 when it holds RI x 10,000.

    Same shape and axis order as the input; a numpy array in gives a numpy array out, a tensor gives a
    tensor (e.g. a ``MetaTensor`` keeps its meta). No copy when the input is float32 RI already.

    Raises:
        InputError: see :func:`detect_ri_scale`.
    """
    scale = detect_ri_scale(array, path)
    if isinstance(array, torch.Tensor):
        out = array.to(torch.float32)
        return out / 10_000.0 if scale != 1.0 else out
    a = np.asarray(array)
    if scale != 1.0:
        return np.divide(a, np.float32(10_000.0), dtype=np.float32)  # exact as uint16 -> float32 -> / 1e4
    return a.astype(np.float32, copy=False)


def _spacing_from_meta(meta: Mapping[str, Any], n_spatial: int) -> np.ndarray | None:
    if meta.get("spacing") is not None:
        return np.asarray(meta["spacing"], dtype=np.float64).reshape(-1)[:n_spatial]
    affine = meta.get("affine")
    if affine is not None:
        return spacing_from_affine(affine)[:n_spatial]
    return None


def spacing_from_affine(affine) -> np.ndarray:
    """The voxel size along each spatial axis of an ``(r + 1) x (r + 1)`` affine: the lengths of its
    first ``r`` columns (a rotated or flipped grid keeps its spacing).

    Examples:
        >>> spacing_from_affine(np.diag([-0.2, 0.2, 0.5, 1.0])).tolist()
        [0.2, 0.2, 0.5]
    """
    affine = np.asarray(affine, dtype=np.float64)
    r = affine.shape[0] - 1
    return np.sqrt((affine[:r, :r] ** 2).sum(axis=0))


def _check_shape(a: np.ndarray, meta: Mapping[str, Any], path: PathLike | None) -> None:
    shape = tuple(a.shape)
    if a.size == 0:
        raise input_error(path, f"empty volume (shape {shape})")
    if a.dtype.fields is not None:
        raise input_error(path, f"colour pixels (dtype {a.dtype}); expected a single-channel RI volume")
    if not (np.issubdtype(a.dtype, np.integer) or np.issubdtype(a.dtype, np.floating)):
        raise input_error(path, f"unsupported data type {a.dtype}; expected integer or floating-point RI values")
    if a.ndim < 2 or a.ndim > 4:
        raise input_error(path, f"{a.ndim}D data of shape {shape}; expected a 3D (X, Y, Z) volume, a 4D (X, Y, Z, T) time series or a 2D section")
    axes = str(meta.get("axes", ""))
    if "C" in axes:
        raise input_error(path, f"shape {shape} with axes {axes} has a colour/channel axis; expected one RI channel")
    if a.ndim == 4 and not axes and a.dtype == np.uint8 and shape[-1] in (3, 4):
        raise input_error(path, f"4D data of shape {shape} ends in a colour channel; expected (X, Y, Z, T) RI")


def _check_spacing(a: np.ndarray, meta: Mapping[str, Any], path: PathLike | None) -> None:
    n_spatial = min(a.ndim, 3)
    spacing = _spacing_from_meta(meta, n_spatial)
    if spacing is None:
        return
    text = ", ".join(f"{s:.6g}" for s in spacing)
    if spacing.size != n_spatial or not np.all(np.isfinite(spacing)):
        raise input_error(path, f"voxel size ({text}) um: expected {n_spatial} finite values, one per spatial axis")
    if np.any(spacing < MIN_VOXEL_UM) or np.any(spacing > MAX_VOXEL_UM):
        raise input_error(
            path, f"voxel size ({text}) um is not plausible: each must lie in [{MIN_VOXEL_UM:g}, {MAX_VOXEL_UM:g}] um (a unit error?)"
        )


def _check_finite(a: np.ndarray, path: PathLike | None) -> None:
    if not np.issubdtype(a.dtype, np.floating):
        return
    # One pass: a float32 sum is NaN/Inf as soon as one value is, or when it overflows float32 (checked
    # below): float64 values beyond float32's range would turn into Inf in the float32 result.
    with np.errstate(over="ignore", invalid="ignore"):
        if np.isfinite(a.sum(dtype=np.float32)):
            return
    n_nan = int(np.count_nonzero(np.isnan(a)))
    n_inf = int(np.count_nonzero(np.isinf(a)))
    if n_nan or n_inf:
        raise input_error(path, f"contains {n_nan} NaN and {n_inf} infinite values (of {a.size} voxels)")
    # finite values whose sum overflows: magnitudes no refractive index has, which would overflow
    # every later step (normalisation, resampling) too
    peak = float(np.max(np.abs(a)))
    raise input_error(path, f"values as large as {peak:.3g} (dtype {a.dtype}): not a refractive index")


def _gib(n: float) -> str:
    return f"{n / 2**30:.3g} GiB" if n >= 2**27 else f"{n / 2**20:.3g} MiB" if n >= 2**17 else f"{int(n)} bytes"


def check_declared_size(
    path: PathLike | None,
    shape: tuple[int, ...],
    itemsize: int,
    stored_bytes: int | None,
    codec: str | None = None,
    voxels_read: int | None = None,
    part: str = "",
) -> None:
    """Refuse, before anything is allocated, a header whose data cannot be in the file or in memory.

    A corrupt or hostile header can declare a volume of terabytes in a file of kilobytes; reading it
    would allocate (or decompress) until memory runs out. The data of ``shape`` x ``itemsize``
    bytes must fit in what the file stores: exactly for raw data (``codec=None``: more means a
    truncated file), at most :data:`DEFLATE_MAX_RATIO` times for ``codec="deflate"``; other codecs
    have no useful bound and are only held to memory. The float32 result (``voxels_read`` voxels,
    the whole ``shape`` by default) must fit in the memory available now.

    Args:
        path: the file, for the message.
        shape: the data's shape as its header declares it.
        itemsize: bytes per stored voxel.
        stored_bytes: bytes the file holds for the data; ``None`` when unknown (memory check only).
        codec: ``None`` (raw), ``"deflate"`` (gzip/zlib) or any other name (no ratio bound).
        voxels_read: voxels that reading will allocate as float32 (one frame when streaming).
        part: which part of the file, for the message (e.g. ``"time point 000003"``).

    Raises:
        InputError: negative sizes, more data declared than stored, or more than memory can hold.
    """
    dims = tuple(int(n) for n in shape)
    part = f"{part}: " if part else ""
    if any(n < 0 for n in dims):
        raise input_error(path, f"{part}header declares a negative size {dims}: corrupt header")
    declared = math.prod(dims) * int(itemsize)
    if stored_bytes is not None:
        bound = stored_bytes if codec is None else stored_bytes * DEFLATE_MAX_RATIO if codec == "deflate" else None
        if bound is not None and declared > bound:
            held = f"{_gib(stored_bytes)}" + (f" compressed ({codec})" if codec else "")
            raise input_error(
                path, f"{part}header declares shape {dims} x {itemsize} bytes ({_gib(declared)}) but the file holds {held}: "
                "truncated, or a corrupt header",
            )
    needed = 4 * (math.prod(dims) if voxels_read is None else int(voxels_read))
    available = _available_memory()
    if available is not None and needed > available:
        raise input_error(path, f"{part}shape {dims} needs {_gib(needed)} of memory as float32; {_gib(available)} available")


def _available_memory() -> int | None:
    try:
        import psutil
    except ImportError:  # pragma: no cover - psutil comes with monai[psutil]
        return None
    return int(psutil.virtual_memory().available)


def check_tomogram(
    array: np.ndarray | torch.Tensor, meta: Mapping[str, Any] | None = None, path: PathLike | None = None
) -> tuple[np.ndarray, dict]:
    """Validate a loaded tomogram and return it as float32 refractive index.

    Checks, in order: empty, non-numeric or colour data; dimensionality (2D section, 3D (X, Y, Z) or
    4D (X, Y, Z, T) only: 1D, 5D+ and a trailing colour/channel axis are refused); voxel size
    (meta ``spacing``, else the affine: finite, > 0, <= 50 um); NaN/Inf; all-zero; and the value range
    (:func:`detect_ri_scale`).

    Args:
        array: the data in the reader's axis order; any shape check above refers to it.
        meta: the reader's meta dict (``spacing``/``affine``, ``axes``, ``filename_or_obj``); may be None.
        path: the file, for the message; defaults to ``meta["filename_or_obj"]``.

    Returns:
        ``(ri, meta)``: float32 RI with the input's shape (no copy when already float32 RI), and a copy of
        ``meta`` with ``ri_scale_detected`` (True when the values were RI x 10,000 and were divided here).

    Raises:
        InputError: one line naming the file and the problem.
    """
    meta = dict(meta or {})
    if path is None:
        path = meta.get("filename_or_obj")
    a = _numpy_view(array)
    _check_shape(a, meta, path)
    _check_spacing(a, meta, path)
    _check_finite(a, path)
    scale = detect_ri_scale(a, path)
    meta["ri_scale_detected"] = scale != 1.0
    if scale != 1.0:
        return np.divide(a, np.float32(10_000.0), dtype=np.float32), meta
    return a.astype(np.float32, copy=False), meta
