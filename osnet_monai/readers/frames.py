"""Frame-by-frame access to tomograms, so a 4D series streams with one frame in memory.

A view of :func:`osnet_monai.readers.load_tomogram`, not a second reader: formats without frame
access go through ``load_tomogram`` itself; NIfTI and TCF frames are sliced from the file (nibabel's
array proxy, the TCF group per time point) but their metadata comes from the same parsers
(``nifti_meta``, ``tcf_info``), the format from the same registry (``format_of``) and every frame
passes the same ``check_tomogram``. The whole-file path stays on MONAI's readers because
``LoadTomogramd`` (training, MONAI Label) hands their metadata on.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import nibabel as nib
import numpy as np
from monai.utils import MetaKeys

from .capture import library_messages, quietly
from .checks import check_tomogram
from ._util import diag_affine
from .errors import InputError, input_error
from .registry import check_nifti_size, format_of, load_tomogram, nifti_meta
from .tcf import read_tcf_frame, tcf_info

__all__ = ["FrameSource", "open_frames"]


@dataclass
class FrameSource:
    """A tomogram opened for frame reads.

    Attributes:
        path: the file.
        n_frames: time points (1 for a 2D section or a 3D stack).
        meta: per-file meta (``affine``, ``spacing`` um, ``spatial_shape`` (X, Y, Z), ``time_step_s``,
            ``medium_ri`` when known, ``is_2d``, ``format``).
        read: ``read(t) -> (ri, meta)``: frame ``t`` as checked float32 RI ``(X, Y, Z)``.
    """

    path: str
    n_frames: int
    meta: dict
    read: Callable[[int], tuple[np.ndarray, dict]]

    def __iter__(self) -> Iterator[tuple[np.ndarray, dict]]:
        for t in range(self.n_frames):
            yield self.read(t)


def _frame_meta(meta: dict, t: int, n_frames: int) -> dict:
    frame = {k: v for k, v in meta.items() if k not in (MetaKeys.ORIGINAL_CHANNEL_DIM,)}
    frame[MetaKeys.ORIGINAL_CHANNEL_DIM] = "no_channel"
    frame[MetaKeys.SPATIAL_SHAPE] = np.asarray(meta[MetaKeys.SPATIAL_SHAPE])[:3]
    frame["time_index"], frame["frame_count"] = t, n_frames
    frame["time_s"] = t * float(meta["time_step_s"]) if meta.get("time_step_s") else float(t)
    frame["axes"] = "XYZ"
    return frame


def _open_nifti(path: str) -> FrameSource:
    """4D NIfTI through nibabel's array proxy: each frame is read on its own, never the whole series."""
    try:
        check_nifti_size(path, frames=True)
        image = nib.load(path)
        shape = tuple(int(s) for s in image.shape)
        meta = {MetaKeys.AFFINE: np.asarray(image.affine, dtype=np.float64)}
        nifti_meta(path, shape, meta)  # header only: no data read
    except InputError:
        raise
    except Exception as exc:
        raise input_error(path, "not a valid NIfTI file (corrupt or truncated?)", exc) from exc
    n_frames = shape[3] if len(shape) == 4 else 1
    frame_shape = shape[:3] if len(shape) >= 3 else shape + (1,)  # a 2D section is a one-section stack
    meta.update(
        {
            "format": "nifti",
            "filename_or_obj": path,
            MetaKeys.SPATIAL_SHAPE: np.asarray(frame_shape),
            "is_2d": frame_shape[2] == 1,
        }
    )

    def read(t: int) -> tuple[np.ndarray, dict]:
        try:
            data = np.asarray(image.dataobj[..., t] if len(shape) == 4 else image.dataobj, dtype=np.float32)
        except FileNotFoundError as exc:
            raise input_error(path, f"frame {t} cannot be read: the file was removed or moved while being read") from exc
        except Exception as exc:
            raise input_error(path, f"frame {t} cannot be read (corrupt or truncated?)", exc) from exc
        ri, frame_meta = check_tomogram(data, _frame_meta(meta, t, n_frames), path)
        return (ri[:, :, None] if ri.ndim == 2 else ri), frame_meta

    return FrameSource(path, n_frames, meta, read)


def _open_tcf(path: str) -> FrameSource:
    info = tcf_info(path)
    n_frames = len(info.frames)
    source_meta = {
        MetaKeys.AFFINE: diag_affine(info.spacing_um),
        "spacing": np.asarray(info.spacing_um, dtype=np.float64),
        "format": "tcf",
        "filename_or_obj": path,
        MetaKeys.SPATIAL_SHAPE: np.asarray(info.shape_xyz),
        "is_2d": False,
    }
    if info.time_step_s:
        source_meta["time_step_s"] = info.time_step_s
    if info.medium_ri is not None:
        source_meta["medium_ri"] = info.medium_ri

    def read(t: int) -> tuple[np.ndarray, dict]:
        if not os.path.exists(path):  # the file is opened again for every frame
            raise input_error(path, f"frame {t} cannot be read: the file was removed or moved while being read")
        data, meta = read_tcf_frame(path, t, info)
        return check_tomogram(data, {**_frame_meta(source_meta, t, n_frames), **meta}, path)

    return FrameSource(path, n_frames, source_meta, read)


def _open_whole(path: str, default_spacing_um: Sequence[float] | None) -> FrameSource:
    """Formats without frame access (TIFF, NRRD, MetaImage) are read once."""
    data, meta = load_tomogram(path, default_spacing_um=default_spacing_um)
    n_frames = data.shape[3] if data.ndim == 4 else 1
    meta[MetaKeys.SPATIAL_SHAPE] = np.asarray(data.shape[:3])

    def read(t: int) -> tuple[np.ndarray, dict]:
        frame = data[..., t] if data.ndim == 4 else data
        return np.ascontiguousarray(frame), _frame_meta(meta, t, n_frames)

    return FrameSource(path, n_frames, meta, read)


def open_frames(path: str | os.PathLike, default_spacing_um: Sequence[float] | None = None) -> FrameSource:
    """Opens any supported tomogram for frame-by-frame reading.

    NIfTI and TCF frames are read one at a time (peak memory: one frame); other formats are read
    whole once. Every frame is checked (:func:`check_tomogram`) and returned as float32 RI.

    Raises:
        InputError: one line naming the file and the problem.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise input_error(path, "file not found")
    fmt = format_of(path)
    opener = {"nifti": _open_nifti, "tcf": _open_tcf}.get(fmt)
    with library_messages(path):
        source = opener(path) if opener is not None else _open_whole(path, default_spacing_um)
    # frames are read later, each with the libraries' messages kept off the console too
    source.read = quietly(path, source.read)
    return source
