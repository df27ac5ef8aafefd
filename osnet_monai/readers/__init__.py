"""Readers and input checks for refractive-index tomograms.

Every reader returns NIfTI/MONAI axis order: (X, Y, Z) for a volume, (X, Y, Z, T) for a time series,
with the voxel size in micrometres (meta ``spacing`` and ``affine = diag(rx, ry, rz, 1)`` for formats
without an orientation). :func:`load_tomogram` reads any supported file and checks it;
:func:`check_tomogram` and :func:`as_refractive_index` apply the same rules to arrays already in memory.

Supported: NIfTI (``.nii``, ``.nii.gz``; MONAI ``NibabelReader``), NRRD/MetaImage (``.nrrd``, ``.nhdr``,
``.mha``, ``.mhd``; MONAI ``ITKReader``), TIFF (``.tif``, ``.tiff``; :class:`TiffStackReader`) and
Tomocube TCF (``.tcf``/``.TCF``, ``.h5``; :class:`TCFReader`, plus :func:`read_tcf_frame` for streaming).
"""

from __future__ import annotations

from .checks import (
    MAX_VOXEL_UM,
    MIN_VOXEL_UM,
    RI_RANGE,
    RI_X10000_RANGE,
    as_refractive_index,
    check_tomogram,
    detect_ri_scale,
    spacing_from_affine,
)
from ._util import format_medium_tag, parse_medium_ri
from .errors import InputError
from .frames import FrameSource, open_frames
from .registry import file_stem, is_supported, load_tomogram, reader_for, register_reader, supported_suffixes
from .tcf import (
    TCFInfo,
    TCFReader,
    iter_tcf_frames,
    read_tcf_fluorescence,
    read_tcf_frame,
    tcf_fluorescence_channels,
    tcf_frame_count,
    tcf_info,
)
from .tiff import TiffStackReader

__all__ = [
    "MAX_VOXEL_UM",
    "MIN_VOXEL_UM",
    "RI_RANGE",
    "RI_X10000_RANGE",
    "InputError",
    "FrameSource",
    "open_frames",
    "TCFInfo",
    "TCFReader",
    "TiffStackReader",
    "as_refractive_index",
    "check_tomogram",
    "detect_ri_scale",
    "spacing_from_affine",
    "file_stem",
    "format_medium_tag",
    "is_supported",
    "parse_medium_ri",
    "iter_tcf_frames",
    "load_tomogram",
    "read_tcf_fluorescence",
    "read_tcf_frame",
    "tcf_fluorescence_channels",
    "reader_for",
    "register_reader",
    "supported_suffixes",
    "tcf_frame_count",
    "tcf_info",
]
