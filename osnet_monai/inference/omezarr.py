"""Writing ``NAME.ome.zarr`` (OME-NGFF, the current version of ome-zarr-py) one frame at a time.

The counterpart of :class:`~osnet_monai.inference.nifti_stream.StreamingNiftiWriter` for viewers
that read OME-Zarr (napari, Fiji's MoBIE and BigDataViewer, the browser viewers). ome-zarr-py lays
out the store and writes every piece of metadata (multiscales, axes, coordinate transformations,
image-label); its pyramid functions downsample each frame. Frames then go into the arrays as they
come, so memory holds one frame whatever the length of the series.
"""

from __future__ import annotations

import os
import shutil
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from osnet_monai.atomic import publish_tree, temporary_sibling

__all__ = ["OME_ZARR_MISSING", "StreamingOmeZarrWriter", "ome_zarr_available", "pyramid_factors"]

#: the one line a user reads when asking for OME-Zarr without the extra
OME_ZARR_MISSING = "OME-Zarr output needs the ome-zarr package: pip install 'osnet-monai[ome-zarr]'"

#: x-y chunk edge (pixels); a chunk holds one frame's z range
CHUNK_XY = 256


def ome_zarr_available() -> bool:
    from importlib.util import find_spec

    return find_spec("ome_zarr") is not None and find_spec("zarr") is not None


def pyramid_factors(shape_yx: Sequence[int], min_size: int = 128) -> list[int]:
    """x-y downsampling factors 2, 4, ... of the levels below full resolution, while the smaller
    side stays at least ``min_size`` pixels (z is never downsampled: tomograms have few sections).

    Examples:
        >>> pyramid_factors((448, 448)), pyramid_factors((1024, 900)), pyramid_factors((96, 80))
        ([2], [2, 4], [])
    """
    factors, factor = [], 2
    while min(shape_yx) // factor >= min_size:
        factors.append(factor)
        factor *= 2
    return factors


def _import_ome_zarr():
    with warnings.catch_warnings():
        # ome-zarr-py builds a deprecated Scaler as a default argument when its writer is imported
        warnings.simplefilter("ignore", DeprecationWarning)
        import zarr
        from ome_zarr import writer
        from ome_zarr.scale import Methods, method_dispatch
    return zarr, writer, Methods, method_dispatch


class StreamingOmeZarrWriter:
    """An OME-Zarr image with labels, written frame by frame under a temporary name.

    Layout (NGFF 0.5, zarr v3)::

        NAME.ome.zarr/            multiscales "RI": s0 (full), s1 (x-y / 2), ...
          labels/nucleus/         the same grid, image-label metadata, uint16 ids (track ids grow)

    Axes ``t, z, y, x`` (``t`` only for a series, ``z`` not for a 2D section), units micrometre and
    second; the coordinate transformations hold the voxel size and the time step.

    Args:
        path: final folder name (``NAME.ome.zarr``); written as a hidden sibling and renamed by
            :meth:`close` once every frame is in.
        frame_shape: (X, Y, Z), or (X, Y) for a 2D section (the project's array order).
        n_frames: time points; 1 writes no time axis.
        spacing_um: voxel size (sx, sy[, sz]) in um.
        time_step_s: seconds between frames (1 when unknown: frame index).
        label_names: one labels image per name, in :meth:`write` order.
        name: the image name in the metadata.
        attributes: extra group attributes (e.g. ``{"medium_ri": 1.337}``), stored under ``osnet_monai``.

    Raises:
        ImportError: ome-zarr is not installed (:data:`OME_ZARR_MISSING`).
    """

    def __init__(
        self,
        path: str | os.PathLike,
        frame_shape: Sequence[int],
        n_frames: int,
        spacing_um: Sequence[float],
        time_step_s: float | None = None,
        label_names: Sequence[str] = ("nucleus",),
        name: str = "RI",
        attributes: Mapping | None = None,
    ) -> None:
        if not ome_zarr_available():
            raise ImportError(OME_ZARR_MISSING)
        zarr, writer, Methods, self._dispatch = _import_ome_zarr()
        self._resize, self._nearest = Methods.RESIZE, Methods.NEAREST
        self.path = Path(path)
        self.frame_shape = tuple(int(s) for s in frame_shape)
        if len(self.frame_shape) not in (2, 3):
            raise ValueError(f"{self.path}: frame_shape must be (X, Y, Z) or (X, Y), got {self.frame_shape}.")
        self.n_frames = int(n_frames)
        self.label_names = tuple(label_names)
        self.written = 0
        spatial = "zyx"[3 - len(self.frame_shape):]
        self.axes = (["t"] if self.n_frames > 1 else []) + list(spatial)
        # 7 digits: a voxel size read from a float32 header (0.19499999) is stated as the file meant it (0.195)
        spacing = dict(zip("xyz", (float(f"{float(s):.7g}") for s in spacing_um)))
        scale = {"t": float(f"{float(time_step_s or 1.0):.7g}"), **{a: spacing[a] for a in spatial}}
        units = {"t": "second", **dict.fromkeys(spatial, "micrometer")}
        frame_zyx = self.frame_shape[::-1]
        shape = ((self.n_frames,) if self.n_frames > 1 else ()) + frame_zyx
        chunks = ((1,) if self.n_frames > 1 else ()) + frame_zyx[:-2] + tuple(min(s, CHUNK_XY) for s in frame_zyx[-2:])
        factors = pyramid_factors(frame_zyx[-2:])
        common = dict(
            scale_factors=factors, axes=self.axes, scale={a: scale[a] for a in self.axes},
            axes_units={a: units[a] for a in self.axes}, storage_options={"chunks": chunks}, compute=False,
        )
        self._tmp = temporary_sibling(self.path)
        try:
            import dask.array as da

            group = zarr.open_group(str(self._tmp), mode="w", zarr_format=3)
            # lazy zeros: the library creates the arrays and metadata; compute=False writes no voxel
            writer.write_image(da.zeros(shape, chunks=chunks, dtype=np.float32), group, name=name, method=self._resize, **common)
            for label in self.label_names:
                writer.write_labels(
                    da.zeros(shape, chunks=chunks, dtype=np.uint16), group, name=label, scaler=None, method=self._nearest,
                    label_metadata={"source": {"image": "../../"}}, **common,
                )
            if attributes:
                group.attrs["osnet_monai"] = dict(attributes)
            self._image = [group[f"s{i}"] for i in range(len(factors) + 1)]
            self._labels = {label: [group[f"labels/{label}/s{i}"] for i in range(len(factors) + 1)] for label in self.label_names}
        except Exception:
            shutil.rmtree(self._tmp, ignore_errors=True)
            raise

    def _levels(self, frame_zyx: np.ndarray, arrays: list, method) -> None:
        """Writes ``frame_zyx`` into frame ``written`` of each level, downsampled by ome-zarr-py's own pyramid function."""
        import dask.array as da

        index = ((self.written,) if self.n_frames > 1 else ()) + (Ellipsis,)
        arrays[0][index] = frame_zyx
        spec = self._dispatch[method]
        for level in arrays[1:]:
            target = level.shape[len(index) - 1:]
            level[index] = np.asarray(spec["func"](da.from_array(frame_zyx), target, **spec["kwargs"]).compute(), dtype=level.dtype)

    def write(self, ri: np.ndarray, *labels: np.ndarray) -> None:
        """Appends the next frame: RI and one label array per ``label_names``, each of shape ``frame_shape``."""
        if self.written >= self.n_frames:
            raise ValueError(f"{self.path}: all {self.n_frames} frames are already written.")
        if len(labels) != len(self.label_names):
            raise ValueError(f"{self.path}: {len(labels)} label arrays for labels {list(self.label_names)}.")
        for array in (ri, *labels):
            if np.shape(array) != self.frame_shape:
                raise ValueError(f"{self.path}: frame shape {np.shape(array)} differs from {self.frame_shape}.")
        self._levels(np.asarray(ri, dtype=np.float32).T, self._image, self._resize)
        for name, label in zip(self.label_names, labels):
            label = np.asarray(label)
            if label.max(initial=0) > np.iinfo(np.uint16).max:
                raise ValueError(f"{self.path}: {name} ids above 65535 do not fit the uint16 labels.")
            self._levels(label.astype(np.uint16).T, self._labels[name], self._nearest)
        self.written += 1

    def close(self) -> Path:
        """Renames the store to ``path``; every frame must have been written."""
        if self.written != self.n_frames:
            self.discard()
            raise ValueError(f"{self.path}: {self.written} of {self.n_frames} frames written; nothing kept.")
        return publish_tree(self._tmp, self.path)

    def discard(self) -> None:
        """Drops the partial store."""
        shutil.rmtree(self._tmp, ignore_errors=True)
