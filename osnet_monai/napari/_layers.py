"""From files to napari layer data and back, without Qt: array orders, the engine run on a layer,
labels, tracks and the measurement table.

The project keeps arrays in NIfTI order, frames (X, Y, Z) and series (X, Y, Z, T); napari shows the
slowest axis first, (T, Z, Y, X), and a 2D section as (Y, X) ((T, Y, X) for a series of them).
"""

from __future__ import annotations

import csv
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from osnet_monai.readers import file_stem, format_medium_tag, is_supported, open_frames

__all__ = [
    "LayerData",
    "Segmentation",
    "read_tomogram",
    "segment_image",
    "segmentation_layers",
    "to_napari",
    "tracks_from_rows",
]

LayerData = tuple  # (data, kwargs, layer type), napari's LayerDataTuple
META_KEY = "osnet_monai"  # the layer metadata this plugin reads and writes


def to_napari(frame_xyz: np.ndarray, is_2d: bool) -> np.ndarray:
    """One frame (X, Y, Z) in napari order: (Z, Y, X), or (Y, X) for a 2D section."""
    frame = np.asarray(frame_xyz).T
    return frame[0] if is_2d else frame


def read_tomogram(path: str | os.PathLike) -> list[LayerData]:
    """An RI image layer of any tomogram the package reads: voxel size (um) and time step (s) as
    scale, axes named; a series is a lazy stack whose frames are read when napari shows them."""
    import dask
    import dask.array as da

    path = os.fspath(path)
    source = open_frames(path)
    meta = source.meta
    is_2d = bool(meta.get("is_2d"))
    first, _ = source.read(0)  # checked here, so a bad file fails while opening, in one line
    if source.n_frames > 1:
        def frame(t: int) -> np.ndarray:
            return to_napari(source.read(t)[0], is_2d)

        shape = to_napari(first, is_2d).shape
        data = da.stack([da.from_delayed(dask.delayed(frame)(t), shape, np.float32) for t in range(source.n_frames)])
    else:
        data = to_napari(first, is_2d)
    spacing = [float(s) for s in np.asarray(meta["spacing"]).reshape(-1)[:3]]
    time_step = float(meta.get("time_step_s") or 0.0) or None
    spatial = ["y", "x"] if is_2d else ["z", "y", "x"]
    scale = [spacing[{"x": 0, "y": 1, "z": 2}[a]] for a in spatial]
    axes = spatial
    if source.n_frames > 1:
        scale, axes = [time_step or 1.0, *scale], ["t", *spatial]
    medium = meta.get("medium_ri")
    kwargs = {
        "name": file_stem(path),
        "scale": scale,
        "axis_labels": axes,
        "units": [("second" if a == "t" else "micrometer") for a in axes],
        "colormap": "gray",
        "contrast_limits": [float(v) for v in np.percentile(first, [0.5, 99.9])],
        "metadata": {META_KEY: {"path": path, "n_frames": source.n_frames, "is_2d": is_2d, "spacing_um": spacing,
                                "time_step_s": time_step, "medium_ri": None if medium is None else float(medium)}},
    }
    return [(data, kwargs, "image")]


def _scale_of(transforms: list[dict]) -> list[float]:
    return next(t["scale"] for t in transforms if t["type"] == "scale")


def read_ome_zarr(path: str | os.PathLike) -> list[LayerData]:
    """The RI image (multiscale) and the labels of an OME-Zarr store, lazily, through ome-zarr-py."""
    from ome_zarr.io import parse_url
    from ome_zarr.reader import Label, Reader

    path = os.fspath(path).rstrip("/")
    location = parse_url(path, mode="r")
    if location is None:
        raise ValueError(f"{path}: not an OME-Zarr store")
    stem = Path(path).name.removesuffix(".zarr").removesuffix(".ome")
    layers = []
    for node in Reader(location)():
        if not node.data:
            continue
        axes = [a["name"] if isinstance(a, dict) else str(a) for a in node.metadata["axes"]]
        label = node.load(Label) is not None
        kwargs = {
            "name": f"{stem} {node.metadata.get('name', 'labels')}" if label else stem,
            "scale": _scale_of(node.metadata["coordinateTransformations"][0]),
            "axis_labels": axes,
            "multiscale": len(node.data) > 1,
            "metadata": {META_KEY: {"path": path}},
        }
        if not label:
            kwargs["colormap"] = "gray"
        layers.append((node.data if len(node.data) > 1 else node.data[0], kwargs, "labels" if label else "image"))
    return layers


def _read_rows(path: Path) -> tuple[list[str], list[dict]]:
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        rows = [{k: _number(v) for k, v in row.items()} for row in reader]
        return list(reader.fieldnames or []), rows


def _number(text: str):
    try:
        value = float(text)
    except ValueError:
        return text
    return int(value) if value.is_integer() and "." not in text else value


def tracks_from_rows(rows: Sequence[dict], spacing_um: Sequence[float], is_2d: bool) -> tuple[np.ndarray, dict[int, list[int]]]:
    """napari Tracks data and graph from the measurement rows.

    Returns:
        data ``(N, 5)`` ``[track id, frame, z, y, x]`` in voxels ((N, 4) without z for 2D), from the
        rows' nucleus ids, frames and centroids (um); graph ``{daughter id: [mother id]}`` from
        ``parent_id`` (a division), empty when the table has no divisions.
    """
    sx, sy, sz = (float(s) for s in spacing_um[:3])
    points, graph = [], {}
    for r in rows:
        point = [r["nucleus_id"], r["frame"]]
        if not is_2d:
            point.append(r["centroid_z_um"] / sz)
        points.append(point + [r["centroid_y_um"] / sy, r["centroid_x_um"] / sx])
        if isinstance(r.get("parent_id"), int) and r["parent_id"] > 0:
            graph[int(r["nucleus_id"])] = [int(r["parent_id"])]
    return np.asarray(sorted(points), dtype=np.float64).reshape(-1, 4 if is_2d else 5), graph


@dataclass
class Segmentation:
    """What the engine found in one image: arrays in napari order, shaped like the image layer."""

    name: str
    nuclei: np.ndarray
    cells: np.ndarray
    columns: list[str]
    rows: list[dict]
    tracks: np.ndarray | None
    graph: dict[int, list[int]]
    output_dir: Path


def _input_file(data, scale: Sequence[float], info: dict, folder: Path) -> tuple[str, bool]:
    """The file to segment: the layer's own when the plugin read it from a supported file, else the
    layer written as NIfTI frame by frame (voxel size and time step from its scale)."""
    from osnet_monai.inference import StreamingNiftiWriter

    path = info.get("path")
    if path and is_supported(path) and os.path.isfile(path):
        return path, bool(info.get("is_2d"))
    ndim = np.ndim(data)
    if ndim not in (2, 3, 4):
        raise ValueError(f"the image has {ndim} dimensions; expected (Y, X), (Z, Y, X) or (T, Z, Y, X)")
    is_2d, n_frames = ndim == 2, (data.shape[0] if ndim == 4 else 1)
    spatial = list(scale[-2:]) if is_2d else list(scale[-3:])
    spacing = spatial[::-1] + ([1.0] if is_2d else [])  # (x, y, z)
    time_step = float(scale[0]) if ndim == 4 else None
    frame_shape = tuple(data.shape[-1:-3:-1]) if is_2d else tuple(data.shape[-1:-4:-1])
    medium = info.get("medium_ri")
    target = folder / f"{info.get('name') or 'image'}.nii.gz"
    writer = StreamingNiftiWriter(target, frame_shape, n_frames, np.diag([*spacing, 1.0]), np.float32, time_step,
                                  format_medium_tag(medium) if medium else "")
    try:
        for t in range(n_frames):
            frame = np.asarray(data[t] if ndim == 4 else data, dtype=np.float32)
            writer.write(frame.T)
    except Exception:
        writer.discard()
        raise
    writer.close()
    return str(target), is_2d


def _as_napari(mask: np.ndarray, shape: Sequence[int]) -> np.ndarray:
    """A mask as written (X, Y[, Z][, T]) in napari order, shaped like the image (only unit axes differ)."""
    return np.ascontiguousarray(np.asarray(mask).T).reshape(tuple(shape))


def segment_image(
    data,
    scale: Sequence[float],
    metadata: dict | None = None,
    name: str = "image",
    model: str | os.PathLike | None = None,
    bundle: str | os.PathLike | None = None,
    tta: bool = False,
    output_dir: str | os.PathLike | None = None,
) -> Segmentation:
    """Segments an image layer's data with the bundle's engine (:func:`osnet_monai.inference.cli.segment`).

    Args:
        data: the layer's array in napari order, (T, Z, Y, X), (Z, Y, X) or (Y, X) (numpy or dask).
        scale: the layer's scale (time step, then voxel size in um, slowest axis first).
        metadata: the layer's metadata; when the plugin's reader opened a file, that file is segmented.
        name: output name for a layer without a file.
        model, bundle: checkpoint and bundle (default: the shipped model).
        tta: flip test-time augmentation.
        output_dir: where the engine writes (default: a new temporary folder).

    Raises:
        RuntimeError: the engine refused the image (the message names the reason).
    """
    import nibabel as nib

    from osnet_monai.inference.cli import segment
    from osnet_monai.inference.postprocessing import voxel_spacing
    from osnet_monai.inference.writer import output_paths

    info = dict((metadata or {}).get(META_KEY) or {})
    info.setdefault("name", name)
    work = Path(output_dir) if output_dir is not None else Path(tempfile.mkdtemp(prefix="osnet-napari-"))
    path, is_2d = _input_file(data, scale, info, work)
    out = work / "segmentation"
    overrides = {"ckpt_path": str(model)} if model else {}
    if tta:
        overrides["tta"] = True
    status = segment([path], out, bundle, **overrides)
    stem = file_stem(path)
    outputs = output_paths(out, stem)
    mask_path = outputs["nucleus"]
    if status != 0 or not mask_path.is_file():
        raise RuntimeError(_failure(out, path))
    mask_image = nib.load(mask_path)
    nuclei = _as_napari(np.asarray(mask_image.dataobj), np.shape(data))
    # the engine's own cells (one per nucleus, the ids the measurements use): the same as the CLI's
    cells = _as_napari(np.asarray(nib.load(outputs["cell"]).dataobj), np.shape(data))
    spacing = list(voxel_spacing(mask_image.affine))  # (x, y, z), also for a 2D mask
    series = np.ndim(data) == (3 if is_2d else 4)
    columns, rows = _read_rows(outputs["measurements"])
    tracks, graph = tracks_from_rows(rows, spacing, is_2d) if series and rows else (None, {})
    return Segmentation(stem, nuclei, cells, columns, rows, tracks, graph, out)


def _failure(out: Path, path: str) -> str:
    """The engine's own line for a refused file (from ``run.json`` when the run wrote one)."""
    import json

    run = out / "run.json"
    if run.is_file():
        failures = json.loads(run.read_text()).get("failures", {})
        if path in failures:
            return failures[path]
    return f"{path}: not segmented (see the console for the reason)"


def segmentation_layers(
    result: Segmentation, scale: Sequence[float], axis_labels: Sequence[str] | None = None, units: Sequence | None = None
) -> list[LayerData]:
    """Nucleus and cell labels and the tracks (series only), on the image's scale, axes and units
    (napari draws no scale bar units when layers disagree)."""
    grid = {"scale": list(scale)}
    if axis_labels is not None:
        grid["axis_labels"] = list(axis_labels)
    if units is not None:
        grid["units"] = list(units)
    layers: list[LayerData] = [
        (result.cells, {"name": f"{result.name} cells", "opacity": 0.25, **grid}, "labels"),
        (result.nuclei, {"name": f"{result.name} nuclei", "opacity": 0.6, **grid}, "labels"),
    ]
    if result.tracks is not None and len(result.tracks):
        kwargs = {"name": f"{result.name} tracks", "tail_length": 30, **grid}
        if result.graph:  # divisions: each daughter track points to its mother
            kwargs["graph"] = result.graph
        layers.append((result.tracks, kwargs, "tracks"))
    return layers
