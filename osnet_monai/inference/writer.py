"""The evaluator handler that turns segmented frames into the user's files: masks, measurements, pictures."""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from monai.utils import min_version, optional_import

from osnet_monai.inference.figures import overlay_sections, render_overlay, save_timecourse
from osnet_monai.inference.nifti_stream import StreamingNiftiWriter
from osnet_monai.inference.omezarr import OME_ZARR_MISSING, StreamingOmeZarrWriter, ome_zarr_available
from osnet_monai.inference.overlap import BackgroundWorker
from osnet_monai.inference.postprocessing import is_section_2d, voxel_spacing
from osnet_monai.inference.quality import QualityRecord
from osnet_monai.atomic import remove_stale_temporaries
from osnet_monai.readers import file_stem, format_medium_tag
from osnet_monai.measurements import (
    MEASUREMENT_COLUMNS,
    MEASUREMENT_COLUMNS_2D,
    NucleusTracker,
    cell_mask_from_ri,
    label_cells,
    label_nuclei,
    measure_nuclei,
    measure_sections_2d,
    measurements_to_csv,
    tracks_to_csv,
)

Events, _ = optional_import("ignite.engine", "0.4.11", min_version, "Events")

__all__ = ["OUTPUT_FORMATS", "CompletedOutputs", "TomogramWriter"]

#: where the nucleus and cell labels go: NIfTI files beside the input's name, or one OME-Zarr store
OUTPUT_FORMATS = ("nifti", "ome-zarr")
#: ids are track ids, which grow with divisions and gaps over a series: uint16 holds 65,535
LABEL_DTYPE = np.uint16

logger = logging.getLogger(__name__)


def _numpy(value) -> np.ndarray:
    return value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else np.asarray(value)


def output_paths(
    output_dir: str | os.PathLike, name: str, output_format: str = "nifti", save_prob: bool = False,
    save_figures: bool = True, n_frames: int = 1,
) -> dict[str, Path]:
    """Every output file of input ``NAME`` for these settings, by kind, in the order they are written
    (``quality`` last): the one place their names are spelled.

    Examples:
        >>> sorted(output_paths("out", "cell1", n_frames=3))
        ['cell', 'measurements', 'nucleus', 'overlay', 'quality', 'timecourse', 'tracks']
        >>> output_paths("out", "cell1", "ome-zarr", save_figures=False)["labels"].name
        'cell1.ome.zarr'
    """
    stem = Path(output_dir) / name
    if output_format == "ome-zarr":
        paths = {"labels": Path(f"{stem}.ome.zarr")}
    else:
        paths = {"nucleus": Path(f"{stem}_nucleus.nii.gz"), "cell": Path(f"{stem}_cell.nii.gz")}
    if save_prob:
        paths["prob"] = Path(f"{stem}_prob.nii.gz")
    paths["measurements"] = Path(f"{stem}_measurements.csv")
    if n_frames > 1:
        paths["tracks"] = Path(f"{stem}_tracks.csv")
    if save_figures:
        paths["overlay"] = Path(f"{stem}_overlay.png")
        if n_frames > 1:
            paths["timecourse"] = Path(f"{stem}_timecourse.png")
    paths["quality"] = Path(f"{stem}_quality.json")  # last: it says the others are complete
    return paths


@dataclass
class _OpenTomogram:
    """Outputs of the tomogram being written; frames arrive in order."""

    path: str
    name: str
    n_frames: int
    spacing: tuple[float, float, float]
    section_2d: bool  # a 2D input file: outputs (X, Y), 2D measurements
    labels: list  # the labels' writers: NIfTI nucleus and cell, or the one OME-Zarr store
    prob: StreamingNiftiWriter | None
    tracker: NucleusTracker
    quality: QualityRecord
    paths: dict[str, Path]  # output_paths(): where each output goes
    rows: list = field(default_factory=list)
    frames_done: int = 0
    overlay: dict | None = None  # the overlay figure's sections (figures.overlay_sections), not whole frames


class CompletedOutputs:
    """Whether an input's outputs in ``output_dir`` are complete for these settings (``segment --resume``):
    ``NAME_quality.json``, which :class:`TomogramWriter` writes last, is there and names the input, and
    so are the labels of ``output_format``, the probability when ``save_prob`` and the overlay when
    ``save_figures``. A run killed part-way leaves no ``NAME_quality.json`` for the file it was writing.

    Args:
        output_dir: the run's output folder.
        output_format, save_prob, save_figures: the run's settings (as :class:`TomogramWriter`'s).
    """

    def __init__(self, output_dir: str | os.PathLike, output_format: str = "nifti", save_prob: bool = False, save_figures: bool = True) -> None:
        self.output_dir = Path(output_dir)
        self.output_format = output_format
        self.save_prob = save_prob
        self.save_figures = save_figures

    def __call__(self, path: str) -> bool:
        quality = output_paths(self.output_dir, file_stem(path))["quality"]
        try:
            record = json.loads(quality.read_text())
        except (OSError, ValueError):
            return False
        if os.path.abspath(str(record.get("path", ""))) != os.path.abspath(path):
            return False  # another input of the same name wrote these
        needed = output_paths(self.output_dir, file_stem(path), self.output_format, self.save_prob, self.save_figures,
                              int(record.get("n_frames", 1)))
        return all(p.exists() for p in needed.values())


class TomogramWriter:
    """Writes, for each input ``NAME``: ``NAME_nucleus.nii.gz`` (uint16, 0 background, each nucleus its
    own id: touching nuclei separated, over a series the track id), ``NAME_cell.nii.gz`` (each cell
    with its nucleus's id), optionally ``NAME_prob.nii.gz``, ``NAME_measurements.csv`` (one row per
    nucleus per frame, with its cell and its parent track), ``NAME_quality.json`` (per-frame facts for
    the run report's flags), ``NAME_overlay.png`` and, for a series, ``NAME_tracks.csv`` (the lineage
    in Cell Tracking Challenge columns, divisions included) and ``NAME_timecourse.png``. With
    ``output_format="ome-zarr"`` the RI and both label images go into ``NAME.ome.zarr`` instead of the
    two NIfTI label files.

    A 2D input (one x-y section; the reader's meta ``input_ndim`` is 2) gets 2D masks of its own
    (X, Y) shape and affine, and the 2D measurements (:data:`MEASUREMENT_COLUMNS_2D`: area,
    perimeter, circularity, dry mass per um of thickness), as its z spacing is a placeholder. A 3D
    file with one section stays (X, Y, 1) with the 3D measurements.

    Attach to the inference evaluator (``val_handlers``); items come from
    :class:`osnet_monai.inference.TomogramStream`, with ``pred`` the network's output, which
    ``postprocessing`` turns into nucleus ids (integer, :class:`~osnet_monai.inference.LabelNucleid`)
    or a binary mask (float, labelled here) on the input's own grid ``(1, X, Y, Z)`` (without
    ``postprocessing``, the evaluator's own must have done so). With ``workers=1`` postprocessing,
    measuring and writing run on a thread while the evaluator segments the next frame
    (:class:`osnet_monai.inference.overlap.BackgroundWorker`); the outputs are the same as with 0.
    Every file is written under a temporary name and renamed when complete; the outputs of a file
    that fails part-way are discarded.

    Args:
        output_dir: folder for the outputs.
        save_prob: also write the nucleus probability (float32).
        refractive_increment_ml_per_g: RI increment for dry mass. Defaults to 0.19.
        save_figures: write the PNGs.
        pred_key, prob_key: postprocessing keys of the mask and of the probability.
        stream: the :class:`TomogramStream`; a file whose outputs cannot be written is recorded in
            its ``failures`` (so the run exits non-zero) and the other files go on.
        postprocessing: applied to each frame before it is written (inference.json's ``postprocessing``).
        workers: 0 exports each frame in the evaluator's loop, 1 on a thread behind it. Frames of a
            series are tracked in order, so one thread is the most; more cores serve more files
            (sharded over processes with torchrun).
        on_frame: callables given ``(item, written)`` after each frame is exported (``written``
            False when its file was refused), e.g. a progress bar; on the export thread with ``workers=1``.
        output_format: one of :data:`OUTPUT_FORMATS`.
        tracker_args: keyword arguments of :class:`~osnet_monai.measurements.NucleusTracker`
            (distances in um, gap frames).
        min_nucleus_volume_um3: smallest nucleus (um^3): smaller components are dropped and smaller parts
            of touching nuclei are not split off (3D inputs; a 2D section's z spacing is a placeholder).

    Raises:
        ImportError: ``output_format="ome-zarr"`` without the ome-zarr extra (one line saying how to install it).
    """

    def __init__(
        self,
        output_dir: str | os.PathLike,
        save_prob: bool = False,
        refractive_increment_ml_per_g: float = 0.19,
        save_figures: bool = True,
        pred_key: str = "pred",
        prob_key: str = "prob",
        stream=None,
        postprocessing: Callable[[dict], dict] | None = None,
        workers: int = 0,
        on_frame: Sequence[Callable[[dict, bool], None]] = (),
        output_format: str = "nifti",
        tracker_args: dict | None = None,
        min_nucleus_volume_um3: float = 0.0,
    ) -> None:
        if workers not in (0, 1):
            raise ValueError(f"workers must be 0 (export in the evaluator's loop) or 1 (on a thread), got {workers}.")
        if output_format not in OUTPUT_FORMATS:
            raise ValueError(f"output_format must be one of {', '.join(OUTPUT_FORMATS)}, got {output_format!r}.")
        if output_format == "ome-zarr" and not ome_zarr_available():
            raise ImportError(OME_ZARR_MISSING)
        self.output_format = output_format
        self.min_nucleus_volume_um3 = float(min_nucleus_volume_um3)
        self.tracker_args = dict(tracker_args or {})
        self.output_dir = Path(output_dir)
        self.save_prob = save_prob
        self.refractive_increment = refractive_increment_ml_per_g
        self.save_figures = save_figures
        self.pred_key = pred_key
        self.prob_key = prob_key
        self.stream = stream
        self.postprocessing = postprocessing
        self.workers = workers
        self.on_frame = list(on_frame)
        self.written: list[str] = []
        self._open: _OpenTomogram | None = None
        self._failed_path: str | None = None
        self._worker: BackgroundWorker | None = None

    def attach(self, engine) -> None:
        engine.add_event_handler(Events.ITERATION_COMPLETED, self)
        engine.add_event_handler(Events.COMPLETED, self.finish)
        engine.add_event_handler(Events.EXCEPTION_RAISED, self.discard_current)

    def __call__(self, engine) -> None:
        # the stream's keys (path, frame, ri, ...) are in the batch, the network's in the output
        for batch_item, output_item in zip(engine.state.batch, engine.state.output):
            self.submit({**batch_item, **output_item})

    def submit(self, item: dict) -> None:
        """Exports one frame: now (``workers=0``) or on the export thread once it is free."""
        if self.workers == 0:
            self.export_frame(item)
            return
        if self._worker is None:
            self._worker = BackgroundWorker(self.export_frame)
        self._worker.submit(item)

    def drain(self) -> None:
        """Waits until every submitted frame is exported; raises what the export thread raised."""
        worker, self._worker = self._worker, None
        if worker is not None:
            worker.close()

    def export_frame(self, item: dict) -> None:
        """Postprocesses and writes one frame; a failure refuses its file (one line) and the others go on."""
        path = str(item["path"])
        written = False
        if path != self._failed_path:
            try:
                self.write_frame(self.postprocessing(item) if self.postprocessing is not None else item)
                written = True
            except Exception as err:  # noqa: BLE001 - one file's outputs failing must not stop the others
                self._fail(path, err)
        for callback in self.on_frame:
            callback(item, written)

    def _fail(self, path: str, err: Exception) -> None:
        self._failed_path = path
        if self._open is not None and self._open.path == path:
            current, self._open = self._open, None
            self._discard(current, announce=False)  # the line below says why
        message = f"{path}: outputs could not be written ({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''})"
        logger.error(message)
        if self.stream is None:
            raise err
        self.stream.failures[path] = message

    def write_frame(self, item: dict) -> None:
        path = str(item["path"])
        if self._open is not None and self._open.path != path:
            self.close_current()
        if self._open is None:
            self._open = self._start(item)
        current = self._open
        pred = _numpy(item[self.pred_key])[0]
        ri = _numpy(item["ri"])
        medium = float(_numpy(item["medium_ri"]))
        frame, time_s = int(item["frame"]), float(item["time_s"])
        if np.issubdtype(pred.dtype, np.integer):
            nuclei = pred  # ids from postprocessing's LabelNucleid, the one labelling MONAI Label also returns
        else:  # a mask (no LabelNucleid in postprocessing): touching nuclei part here
            min_volume = 0.0 if current.section_2d else self.min_nucleus_volume_um3
            nuclei = label_nuclei(pred > 0.5, min_volume, current.spacing)
        labels = self._check_ids(current.tracker(nuclei))
        cell_mask = cell_mask_from_ri(ri, medium, current.spacing)
        cells = label_cells(cell_mask, labels, current.spacing)
        prob = _numpy(item[self.prob_key])[0] if self.prob_key in item else None
        current.quality.add_frame(frame, labels, prob, ri, medium, cell_mask)
        # a 2D input's frame is its one section: the z axis the reader added is not written
        z = 0 if current.section_2d else slice(None)
        if self.output_format == "ome-zarr":
            current.labels[0].write(ri[:, :, z], labels[:, :, z], cells[:, :, z])
        else:
            current.labels[0].write(labels[:, :, z].astype(LABEL_DTYPE))
            current.labels[1].write(cells[:, :, z].astype(LABEL_DTYPE))
        if current.prob is not None and prob is not None:
            current.prob.write(prob[:, :, z].astype(np.float32))
        if current.section_2d:
            rows = measure_sections_2d(
                labels[:, :, 0], ri[:, :, 0], current.spacing[:2], medium, refractive_increment_ml_per_g=self.refractive_increment
            )
        else:
            rows = measure_nuclei(
                labels, ri, current.spacing, medium, refractive_increment_ml_per_g=self.refractive_increment, cell_labels_xyz=cells
            )
        for row in rows:
            parent = current.tracker.parent_of(row["nucleus_id"])
            current.rows.append({"frame": frame, "time_s": time_s, **row, "parent_id": parent})
        if self.save_figures and current.overlay is None and (labels.any() or frame == current.n_frames - 1):
            current.overlay = {**overlay_sections(ri, labels), "frame": frame}
        current.frames_done += 1
        if current.frames_done == current.n_frames:
            self._open = current
            self.close_current()

    def _check_ids(self, labels: np.ndarray) -> np.ndarray:
        limit = np.iinfo(LABEL_DTYPE).max  # NIfTI and OME-Zarr labels alike
        if labels.max(initial=0) > limit:
            raise ValueError(f"{self._open.path}: track ids above {limit} do not fit the label file.")  # type: ignore[union-attr]
        return labels

    def _start(self, item: dict) -> _OpenTomogram:
        affine = _numpy(item[self.pred_key].affine)  # pred is back on the input's grid (Invertd)
        n_frames = int(item["n_frames"])
        frame_shape = tuple(_numpy(item[self.pred_key]).shape[1:])
        section_2d = is_section_2d(frame_shape, item[self.pred_key], item.get("image"))
        if section_2d:
            # the input's own 2D shape; its 4 x 4 affine is kept (nibabel gives a 2D NIfTI one too)
            frame_shape = frame_shape[:2]
        spacing = voxel_spacing(affine)
        name = str(item["name"])
        time_step = float(item.get("time_step_s") or 0.0) or None
        medium = float(_numpy(item["medium_ri"]))
        descrip = format_medium_tag(medium)
        paths = output_paths(self.output_dir, name, self.output_format, self.save_prob, self.save_figures, n_frames)
        # what a killed run (of any settings) left half-written under this name goes before this run writes it again
        finals = {path.name for path in paths.values()}
        remove_stale_temporaries(self.output_dir, lambda final: final.startswith(f"{name}_") or final in finals)
        if self.output_format == "ome-zarr":
            labels = [StreamingOmeZarrWriter(
                paths["labels"], frame_shape, n_frames, spacing[: len(frame_shape)], time_step,
                label_names=("nucleus", "cell"), name=name, attributes={"medium_ri": medium, "source": str(item["path"])},
            )]
        else:
            labels = [
                StreamingNiftiWriter(paths[kind], frame_shape, n_frames, affine, LABEL_DTYPE, time_step, descrip)
                for kind in ("nucleus", "cell")
            ]
        prob = None
        if self.save_prob:
            prob = StreamingNiftiWriter(paths["prob"], frame_shape, n_frames, affine, np.float32, time_step, descrip)
        tracker = NucleusTracker(spacing, **self.tracker_args)
        quality = QualityRecord(str(item["path"]), name, n_frames, spacing)
        return _OpenTomogram(str(item["path"]), name, n_frames, spacing, section_2d, labels, prob, tracker, quality, paths)  # type: ignore[arg-type]

    def finish(self, engine=None) -> None:
        """The end of a run: waits for the export thread, then closes the last tomogram."""
        self.drain()
        self.close_current()

    def close_current(self, engine=None) -> None:
        """Finishes the current tomogram, or discards its outputs when it stopped part-way."""
        current = self._open
        if current is None:
            return
        if current.frames_done != current.n_frames:
            self._open = None
            # a file the stream refused part-way has had its one line already
            self._discard(current, announce=self.stream is None or current.path not in self.stream.failures)
            return
        try:
            self._finish(current)
        except Exception as err:  # noqa: BLE001
            self._fail(current.path, err)
        finally:
            self._open = None

    def _finish(self, current: _OpenTomogram) -> None:
        outputs = [Path(writer.close()) for writer in current.labels]
        if current.prob is not None:
            outputs.append(current.prob.close())
        paths = current.paths
        columns = MEASUREMENT_COLUMNS_2D if current.section_2d else MEASUREMENT_COLUMNS
        outputs.append(Path(measurements_to_csv(current.rows, paths["measurements"], columns)))
        if "tracks" in paths:
            outputs.append(Path(tracks_to_csv(current.tracker.tracks, paths["tracks"])))
        if "overlay" in paths and current.overlay is not None:
            sections = dict(current.overlay)
            frame = sections.pop("frame")
            title = f"{current.name}" + (f", frame {frame}" if current.n_frames > 1 else "")
            render_overlay(sections, current.spacing, paths["overlay"], title)
            outputs.append(paths["overlay"])
        if "timecourse" in paths:
            save_timecourse(current.rows, paths["timecourse"], current.name)
            outputs.append(paths["timecourse"])
        # last: its presence says every other output of the file is complete (CompletedOutputs)
        outputs.append(current.quality.save(paths["quality"]))
        self.written.append(current.path)
        logger.info(f"{current.path}: wrote {', '.join(p.name for p in outputs)}")

    def discard_current(self, engine=None, error: Exception | None = None) -> None:
        """Drops the current tomogram's outputs (the evaluator failed); re-raises ``error``."""
        worker, self._worker = self._worker, None
        if worker is not None:
            try:
                worker.close()
            except Exception:  # noqa: BLE001 - the evaluator's error is the one to raise
                pass
        current, self._open = self._open, None
        if current is not None:
            self._discard(current)
        if error is not None:
            raise error

    def _discard(self, current: _OpenTomogram, announce: bool = True) -> None:
        for writer in current.labels:
            writer.discard()
        if current.prob is not None:
            current.prob.discard()
        # every output under its final name too: the label files may already be complete when a later
        # output fails (a full disk), and a file's outputs are kept all or none
        for path in current.paths.values():
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
        logger.log(logging.WARNING if announce else logging.DEBUG,
                   f"{current.path}: stopped after {current.frames_done} of {current.n_frames} frames; no outputs kept.")
