"""Writers: NIfTI (image + label), Tomocube-style TCF (HDF5) and the MONAI datalist.

Everything is written under a temporary name in the destination folder and renamed when complete,
so an interrupted run never leaves a truncated file behind.
"""

from __future__ import annotations

import gzip
import json
import os
import pathlib
from collections.abc import Sequence

import numpy as np

from osnet_monai.atomic import atomic_output
from osnet_monai.readers import format_medium_tag

__all__ = ["write_nifti", "write_tcf", "write_json", "write_lineage", "ri_to_uint16", "LINEAGE_COLUMNS"]

#: header of a lineage file: the Cell Tracking Challenge's ``man_track.txt`` columns (L B E P), named
#: as in ``osnet_monai.measurements.TRACK_COLUMNS`` (the segment command's NAME_tracks.csv)
LINEAGE_COLUMNS = ("track_id", "first_frame", "last_frame", "parent_id")

#: the NIfTI ``descrip`` field carries the medium RI in exactly this format


def _atomic_write_bytes(path: pathlib.Path, data: bytes) -> None:
    with atomic_output(path) as tmp:
        tmp.write_bytes(data)


def ri_to_uint16(ri: np.ndarray) -> np.ndarray:
    """Tomocube storage: round(RI x 10,000) as uint16."""
    return np.clip(np.round(np.asarray(ri, np.float64) * 10000.0), 0, 65535).astype(np.uint16)


def write_nifti(
    path: str | os.PathLike,
    array: np.ndarray,
    voxel_size_um: Sequence[float],
    time_step_s: float | None = None,
    medium_ri: float | None = None,
) -> pathlib.Path:
    """Write a 3-D (X, Y, Z) or 4-D (X, Y, Z, T) array as NIfTI-1 (gzipped when ``path`` ends in
    ``.gz``), byte-for-byte deterministic.

    Affine diag(vx, vy, vz) in micrometres, ``xyzt_units`` micron + sec, ``pixdim[4]`` the time step,
    ``descrip`` ``medium_ri=%.4f``. The array is stored in its own dtype (no scaling).
    """
    import nibabel as nib

    path = pathlib.Path(path)
    array = np.asarray(array)
    if array.ndim not in (3, 4):
        raise ValueError(f"array must be 3-D or 4-D, got shape {array.shape}")
    vx, vy, vz = (float(s) for s in voxel_size_um)
    affine = np.diag([vx, vy, vz, 1.0])
    img = nib.Nifti1Image(array, affine)
    hdr = img.header
    hdr.set_data_dtype(array.dtype)
    hdr.set_xyzt_units(xyz="micron", t="sec")
    zooms = (vx, vy, vz) + ((float(time_step_s or 0.0),) if array.ndim == 4 else ())
    hdr.set_zooms(zooms)
    if array.ndim == 3 and time_step_s:
        hdr["pixdim"][4] = float(time_step_s)
    if medium_ri is not None:
        hdr["descrip"] = format_medium_tag(medium_ri).encode()
    hdr.set_slope_inter(np.nan, np.nan)
    img.set_qform(affine, code=1)
    img.set_sform(affine, code=1)
    raw = img.to_bytes()
    _atomic_write_bytes(path, gzip.compress(raw, compresslevel=1, mtime=0) if path.name.lower().endswith(".gz") else raw)
    return path


def write_tcf(
    path: str | os.PathLike,
    ri_zyx_frames: np.ndarray | Sequence[np.ndarray],
    voxel_size_um: Sequence[float],
    time_interval_s: float = 0.0,
    uint16: bool = True,
    *,
    title: str = "osnet-monai phantom",
    compression: str | None = "gzip",
    fluorescence=None,
) -> pathlib.Path:
    """Write RI volumes as a Tomocube TCF file (HDF5), shaped like the instrument's.

    Layout (what the ``tcfile`` reader and TomoStudio exports use): root attributes ``FormatVersion``,
    ``CreateDate``, ``DataID``, ``Description``, ``DeviceHost``, ``DeviceSerial``, ``DeviceModelType``,
    ``DeviceSoftwareVersion``, ``RecordingTime``, ``SoftwareVersion``, ``Title``, ``UniqueID``,
    ``UserID``; group ``/Data/3D`` with ``DataCount``, ``ResolutionX/Y/Z`` (um), ``SizeX/Y/Z``,
    ``TimeInterval`` (s), ``RIMin``, ``RIMax``; one dataset per time point ``/Data/3D/000000`` ... of
    shape (Z, Y, X) with ``RIMin``, ``RIMax``, ``Time``, ``RecordingTime``, ``PositionX/Y/Z/C``.
    Every attribute is a one-element array, as in the instrument's files.

    Args:
        path: destination (``.TCF``).
        ri_zyx_frames: one (Z, Y, X) RI volume, or a sequence / (T, Z, Y, X) array of them.
        voxel_size_um: (x, y, z) voxel size in um.
        time_interval_s: interval between time points.
        uint16: store RI x 10,000 as uint16 (format 1.4.x, current instruments) instead of float32 RI
            (format 1.2, older instruments).
        fluorescence: a :class:`~osnet_monai.phantoms.fluorescence.FluorescenceStack` stored as the
            instrument stores a fluorescence channel: group ``/Data/3DFL`` (``DataCount``, ``Channels``,
            ``ResolutionX/Y/Z``, ``SizeX/Y/Z``, ``TimeInterval``, ``OffsetZ`` in um, ``MinIntensity``,
            ``MaxIntensity``), channel group ``CH0`` (``Name``, ``Modality``) with one uint16 (Z, Y, X)
            dataset per time point ``/Data/3DFL/CH0/000000`` ... (attrs ``Time``, ``Min/MaxIntensity``).
    """
    import h5py

    path = pathlib.Path(path)
    frames = np.asarray(ri_zyx_frames, dtype=np.float32)
    if frames.ndim == 3:
        frames = frames[None]
    if frames.ndim != 4:
        raise ValueError(f"ri_zyx_frames must be (Z, Y, X) or (T, Z, Y, X), got shape {frames.shape}")
    n_t, nz, ny, nx = frames.shape
    vx, vy, vz = (float(s) for s in voxel_size_um)

    def s(value: str) -> np.ndarray:
        return np.array([value.encode()], dtype=f"S{max(1, len(value))}")

    def f64(value: float) -> np.ndarray:
        return np.array([value], dtype=np.float64)

    def i64(value: int) -> np.ndarray:
        return np.array([value], dtype=np.int64)

    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(path) as tmp:
        with h5py.File(tmp, "w", track_order=True) as f:
            root = {
                "FormatVersion": "1.4.1" if uint16 else "1.2",
                "CreateDate": "2020-01-01 00:00:00",
                "DataID": title,
                "Description": "synthetic ODT tomogram (osnet_monai.phantoms)",
                "DeviceHost": "osnet-monai",
                "DeviceSerial": "SIMULATED",
                "DeviceModelType": "HTX" if uint16 else "HT-2H",
                "DeviceSoftwareVersion": "osnet-monai",
                "RecordingTime": "2020-01-01 00:00:00.000",
                "SoftwareVersion": "osnet-monai",
                "Title": title,
                "UniqueID": title,
                "UserID": "phantom",
            }
            for key, value in root.items():
                f.attrs[key] = s(value)
            g = f.create_group("Data").create_group("3D")
            g.attrs["DataCount"] = i64(n_t)
            g.attrs["ResolutionX"] = f64(vx)
            g.attrs["ResolutionY"] = f64(vy)
            g.attrs["ResolutionZ"] = f64(vz)
            g.attrs["SizeX"] = i64(nx)
            g.attrs["SizeY"] = i64(ny)
            g.attrs["SizeZ"] = i64(nz)
            g.attrs["TimeInterval"] = f64(float(time_interval_s))
            g.attrs["RIMin"] = f64(float(frames.min()))
            g.attrs["RIMax"] = f64(float(frames.max()))
            opts = {"compression": compression, "compression_opts": 1} if compression == "gzip" else {}
            for t in range(n_t):
                vol = frames[t]
                data = ri_to_uint16(vol) if uint16 else vol
                ds = g.create_dataset(f"{t:06d}", data=data, chunks=(min(nz, 16), min(ny, 128), min(nx, 128)), **opts)
                ds.attrs["RIMin"] = f64(float(vol.min()))
                ds.attrs["RIMax"] = f64(float(vol.max()))
                ds.attrs["Time"] = f64(t * float(time_interval_s))
                ds.attrs["RecordingTime"] = s("2020-01-01 00:00:00.000")
                for axis in ("X", "Y", "Z", "C"):
                    ds.attrs[f"Position{axis}"] = f64(0.0)
            if fluorescence is not None:
                counts = np.asarray(fluorescence.counts, np.uint16)
                if counts.ndim != 4 or counts.shape[0] != n_t or counts.shape[2:] != (ny, nx):
                    raise ValueError(f"fluorescence counts must be (T={n_t}, Z, {ny}, {nx}), got {counts.shape}")
                fl = f["Data"].create_group("3DFL")
                fvx, fvy, fvz = (float(v) for v in fluorescence.voxel_size_um)
                for key, value in (("DataCount", i64(n_t)), ("Channels", i64(1)), ("ResolutionX", f64(fvx)), ("ResolutionY", f64(fvy)),
                                   ("ResolutionZ", f64(fvz)), ("SizeX", i64(nx)), ("SizeY", i64(ny)),
                                   ("SizeZ", i64(counts.shape[1])), ("TimeInterval", f64(float(time_interval_s))),
                                   ("OffsetZ", f64(float(fluorescence.offset_z_um))),
                                   ("MinIntensity", f64(float(counts.min()))), ("MaxIntensity", f64(float(counts.max())))):
                    fl.attrs[key] = value
                channel = fl.create_group("CH0")
                channel.attrs["Name"] = s(fluorescence.stain.name)
                channel.attrs["Modality"] = s(fluorescence.stain.modality)
                for t in range(n_t):
                    ds = channel.create_dataset(f"{t:06d}", data=counts[t], chunks=(min(counts.shape[1], 16), min(ny, 128), min(nx, 128)), **opts)
                    ds.attrs["Time"] = f64(t * float(time_interval_s))
                    ds.attrs["MinIntensity"] = f64(float(counts[t].min()))
                    ds.attrs["MaxIntensity"] = f64(float(counts[t].max()))
    return path


def write_json(path: str | os.PathLike, obj) -> pathlib.Path:
    path = pathlib.Path(path)
    _atomic_write_bytes(path, (json.dumps(obj, indent=2) + "\n").encode())
    return path


def write_lineage(path: str | os.PathLike, tracks) -> pathlib.Path:
    """Write tracks ``(id, first frame, last frame, parent id)`` as CSV with :data:`LINEAGE_COLUMNS`."""
    path = pathlib.Path(path)
    lines = [",".join(LINEAGE_COLUMNS)] + [",".join(str(int(v)) for v in row) for row in tracks]
    _atomic_write_bytes(path, ("\n".join(lines) + "\n").encode())
    return path
