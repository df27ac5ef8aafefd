"""Writing a NIfTI frame by frame, under a temporary name, renamed when complete."""

from __future__ import annotations

import gzip
import os
from collections.abc import Sequence
from pathlib import Path

import nibabel as nib
import numpy as np

from osnet_monai.atomic import publish, temporary_sibling

__all__ = ["StreamingNiftiWriter"]

VOX_OFFSET = 352  # 348-byte header + 4-byte extension flag: data follow directly


class StreamingNiftiWriter:
    """An (X, Y, Z) or (X, Y, Z, T) NIfTI-1 written one frame at a time, or an (X, Y) section.

    nibabel writes whole arrays; a long time-lapse would then need every frame in memory. NIfTI
    stores voxels in Fortran order with time slowest, so each frame is one contiguous block that
    can be appended to the (gzip) stream as it is produced.

    Args:
        path: final file name (``.nii`` or ``.nii.gz``); the data go to a hidden temporary file in
            the same folder, renamed to ``path`` by :meth:`close` once all frames are written.
        frame_shape: (X, Y, Z), or (X, Y) for a 2D section.
        n_frames: time points; 1 writes a 3D (2D) file, more an (X, Y, Z, T) file ((X, Y, 1, T)
            for 2D frames, as NIfTI's fourth axis is time).
        affine: 4 x 4 voxel-to-micrometre affine.
        dtype: voxel type, e.g. ``np.uint8``.
        time_step_s: seconds between frames (NIfTI ``pixdim[4]``).
        descrip: header description (e.g. ``"medium_ri=1.3370"``).
    """

    def __init__(
        self,
        path: str | os.PathLike,
        frame_shape: Sequence[int],
        n_frames: int,
        affine: np.ndarray,
        dtype: np.dtype | type = np.uint8,
        time_step_s: float | None = None,
        descrip: str = "",
    ) -> None:
        self.path = Path(path)
        self.frame_shape = tuple(int(s) for s in frame_shape)
        self.n_frames = int(n_frames)
        self.dtype = np.dtype(dtype)
        self.written = 0
        header = nib.Nifti1Header()
        if not 2 <= len(self.frame_shape) <= 3:
            raise ValueError(f"{self.path}: frame_shape must be (X, Y, Z) or (X, Y), got {self.frame_shape}.")
        data_shape = self.frame_shape
        if self.n_frames > 1:
            data_shape = self.frame_shape + (1,) * (3 - len(self.frame_shape)) + (self.n_frames,)
        header.set_data_shape(data_shape)
        header.set_data_dtype(self.dtype)
        affine = np.asarray(affine, dtype=np.float64)
        header.set_qform(affine, code=1)
        header.set_sform(affine, code=1)
        header.set_xyzt_units("micron", "sec")
        if self.n_frames > 1 and time_step_s:
            header["pixdim"][4] = float(time_step_s)
        header.set_data_offset(VOX_OFFSET)
        header["descrip"] = descrip.encode()[:79]
        self._tmp = temporary_sibling(self.path)
        raw = open(self._tmp, "wb")
        # level 1: masks compress almost as well as at 9, several times faster
        self._file = gzip.GzipFile(filename="", fileobj=raw, mode="wb", compresslevel=1, mtime=0) if self.path.name.endswith(".gz") else raw
        self._raw = raw
        header.write_to(self._file)  # header and extension flag
        self._file.write(b"\0" * (VOX_OFFSET - self._file.tell()))

    def write(self, frame: np.ndarray) -> None:
        """Appends the next frame, shape ``frame_shape``."""
        frame = np.asarray(frame)
        if frame.shape != self.frame_shape:
            raise ValueError(f"{self.path}: frame shape {frame.shape} differs from {self.frame_shape}.")
        if self.written >= self.n_frames:
            raise ValueError(f"{self.path}: all {self.n_frames} frames are already written.")
        self._file.write(frame.astype(self.dtype, copy=False).tobytes(order="F"))
        self.written += 1

    def close(self) -> Path:
        """Finishes the file and renames it to ``path``; every frame must have been written."""
        if self.written != self.n_frames:
            self.discard()
            raise ValueError(f"{self.path}: {self.written} of {self.n_frames} frames written; nothing kept.")
        self._file.close()
        self._raw.close()
        return publish(self._tmp, self.path)

    def discard(self) -> None:
        """Drops the partial file."""
        for f in (self._file, self._raw):
            try:
                f.close()
            except Exception:  # noqa: BLE001 - the file is being thrown away
                pass
        self._tmp.unlink(missing_ok=True)
