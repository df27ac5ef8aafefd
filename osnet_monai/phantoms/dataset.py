"""Data sets of synthetic tomograms on disk: NIfTI images and labels plus a MONAI datalist."""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import uuid
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor

import numpy as np

from .field import field_rng, render_field
from .fluorescence import draw_stain, render_fluorescence
from .io import ri_to_uint16, write_json, write_lineage, write_nifti, write_tcf
from .mitosis import DIVISION_SERIES_FRAMES, SERIES_NAME, render_division_series
from .presets import PRESETS
from .styles import STYLES, render_style

__all__ = ["generate_dataset", "ensure_default_dataset", "DEFAULT_DATASET", "DATASET_VERSION", "sources"]

# 2: interphase nuclei at most NUCLEUS_DELTA_MAX denser than their cytoplasm; 3: every rendering style
DATASET_VERSION = 3


def sources() -> tuple[str, ...]:
    """What a field can be drawn from: a rendering style (instruments drawn per field), a fixed preset,
    or ``mitosis``: division series with instance and lineage truth (:mod:`.mitosis`)."""
    return tuple(STYLES) + tuple(PRESETS) + (SERIES_NAME,)


#: THE default training data set: (style, number of fields, frames per field), seed 2024.
#: Every style alike: 14 3-D fields and 2 time series of 3 frames each; the cross_lab preset and
#: the leave-one-style-out test sets (other seeds) are never in it.
DEFAULT_DATASET = {
    "name": "osnet-phantoms-default",
    "seed": 2024,
    "parts": [(style, 14, 1) for style in STYLES] + [(style, 2, 3) for style in STYLES],
    "validation_fraction": 0.25,
}


def _check_args(n, frames, preset, validation_fraction) -> list[str]:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    if isinstance(frames, bool) or not isinstance(frames, (int, np.integer)) or frames < 1:
        raise ValueError(f"frames must be a positive integer, got {frames!r}")
    names = [preset] if isinstance(preset, str) else list(preset)
    if not names:
        raise ValueError("preset must name at least one style or preset")
    for name in names:
        if name not in sources():
            raise ValueError(f"style or preset must be one of {', '.join(sources())} (or a list of them), got {name!r}")
    if not 0 <= validation_fraction < 1:
        raise ValueError(f"validation_fraction must lie in [0, 1), got {validation_fraction!r}")
    return names


def _write_instances(out: pathlib.Path, name: str, series, spacing, step, medium) -> dict:
    """A division series' instance truth and lineage under ``instances/``; their datalist keys."""
    paths = {"nucleus_instances": f"instances/{name}_nucleus_instances.nii.gz",
             "cell_instances": f"instances/{name}_cell_instances.nii.gz", "tracks": f"instances/{name}_tracks.csv"}
    write_nifti(out / paths["nucleus_instances"], series.nuclei, spacing, step, medium)
    write_nifti(out / paths["cell_instances"], series.cells, spacing, step, medium)
    write_lineage(out / paths["tracks"], series.tracks)
    return paths


def _write_one(job: dict) -> dict:
    """Render and write one field (runs in a worker process)."""
    out = pathlib.Path(job["out_dir"])
    source, name, frames = job["preset"], job["name"], job["frames"]
    extra: dict = {}
    if source == SERIES_NAME:
        # a division needs a series: one frame asked for means the series' default length
        frames = frames if frames > 1 else DIVISION_SERIES_FRAMES
        r = render_division_series(seed=job["seed"], index=job["index"], frames=frames)
        a = r.acquisition
        image, label = r.image, r.label
        spacing, step, medium, storage = a.voxel_size_um, a.time_step_s, a.medium_ri, a.storage
        extra = _write_instances(out, name, r, spacing, step, medium)
    elif source in STYLES:
        r = render_style(source, seed=job["seed"], index=job["index"], frames=frames)
        a = r.acquisition
        image, label = r.image, r.label
        spacing, step, medium, storage = a.voxel_size_um, a.time_step_s, a.medium_ri, a.storage
    else:
        preset = PRESETS[source]
        if job.get("nonneg_fill") is not None:
            preset = preset.replace(nonneg_fill=bool(job["nonneg_fill"]))
        r = render_field(preset, seed=job["seed"], frames=frames, index=job["index"])
        p = r.preset
        image, label = r.image, r.label
        spacing, step, medium, storage = p.voxel_size_um, p.time_step_s, p.medium_ri, p.dtype
    stored = ri_to_uint16(image) if storage == "uint16" else image.astype(np.float32)
    write_nifti(out / "images" / f"{name}.nii.gz", stored, spacing, step, medium)
    write_nifti(out / "labels" / f"{name}.nii.gz", label.astype(np.uint8), spacing, step, medium)
    if job["tcf"] or job.get("fluorescence"):
        vol = image if image.ndim == 4 else image[..., None]
        zyx = np.transpose(vol, (3, 2, 1, 0))  # (T, Z, Y, X)
        stack = None
        if job.get("fluorescence"):
            # the channel's own generator: the RI and labels stay byte for byte what they were
            fl_rng = field_rng(job["seed"], job["index"], f"{source}:fluorescence")
            stack = render_fluorescence(label, spacing, draw_stain(fl_rng), fl_rng)
            stain = stack.stain
            extra["fluorescence"] = {"stain": stain.name, "modality": stain.modality,
                                     "z_step_factor": stain.z_step_factor,
                                     "offset_um": [round(v, 4) for v in stain.offset_um],
                                     "recorded_offset_z_um": round(stain.recorded_offset_z_um, 4)}
        write_tcf(out / "tcf" / f"{name}.TCF", zyx, spacing, step, uint16=storage == "uint16", title=name,
                  fluorescence=stack)
        extra["tcf"] = f"tcf/{name}.TCF"
    n_sections = int((label.reshape(label.shape[0], label.shape[1], -1).sum(axis=(0, 1)) > 0).sum())
    return {
        "image": f"images/{name}.nii.gz",
        "label": f"labels/{name}.nii.gz",
        "cell_id": name,
        "medium_ri": round(float(medium), 4),
        "style": source,
        "frames": int(frames),
        "nucleus_sections": n_sections,
        **extra,
    }


def _run_jobs(jobs: list[dict], workers: int) -> list[dict]:
    if workers <= 1 or len(jobs) <= 1:
        return [_write_one(j) for j in jobs]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(_write_one, jobs))


def _default_workers() -> int:
    return max(1, min(2, os.cpu_count() or 1))


def split_validation(entries: list[dict], validation_fraction: float, seed: int) -> tuple[list[dict], list[dict]]:
    """Entries into (training, validation): a seeded share, at least one of each when there are two."""
    n_val = int(round(len(entries) * validation_fraction))
    if validation_fraction > 0 and len(entries) >= 2:
        n_val = max(1, n_val)
    n_val = min(n_val, len(entries) - 1)
    order = np.random.default_rng(np.random.SeedSequence([int(seed), 7919])).permutation(len(entries))
    val_idx = set(order[:n_val].tolist())
    training = [e for i, e in enumerate(entries) if i not in val_idx]
    validation = [e for i, e in enumerate(entries) if i in val_idx]
    return training, validation


def generate_dataset(
    out_dir: str | os.PathLike,
    n: int,
    frames: int = 1,
    seed: int = 0,
    preset: str | Sequence[str] = "ht2h",
    tcf: bool = False,
    validation_fraction: float = 0.25,
    *,
    workers: int | None = None,
    name: str = "osnet-phantoms",
    nonneg_fill: bool | None = None,
    fluorescence: bool = False,
) -> pathlib.Path:
    """Write ``n`` synthetic fields (3-D, or 4-D X, Y, Z, T when ``frames > 1``) and a MONAI datalist.

    Args:
        out_dir: destination; gets ``images/``, ``labels/``, optional ``tcf/`` and ``datalist.json``.
        n: number of fields (files); each file is one group ``cell_id`` for grouped folds.
        frames: time points per field.
        seed: the data set is a pure function of (seed, presets, n, frames).
        preset: a rendering style or preset name (:func:`sources`) or a list of them, cycled over
            the fields. ``mitosis`` writes division series (at least 4 frames; 8 when ``frames`` is 1)
            with ``instances/NAME_nucleus_instances.nii.gz``, ``instances/NAME_cell_instances.nii.gz``
            (uint16 ids, a cell with its nucleus's id, constant along a track) and
            ``instances/NAME_tracks.csv`` (the lineage: track_id, first_frame, last_frame, parent_id),
            named in the datalist entry.
        tcf: also write ``tcf/NAME.TCF`` (Tomocube HDF5 layout), named in the entry as ``tcf``.
        fluorescence: also record a simulated nuclear stain channel in the TCF file (implies ``tcf``;
            :mod:`.fluorescence`); the entry's ``fluorescence`` states the stain and the true offsets.
        validation_fraction: share of files in the ``validation`` list (never sharing a cell_id with
            ``training``).
        workers: processes (default: up to 2).
        name: the datalist's ``name``.
        nonneg_fill: switch the non-negativity fill on or off for every preset (default: as each
            preset says).

    Returns:
        the path of ``datalist.json``.
    """
    names = _check_args(n, frames, preset, validation_fraction)
    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    jobs = []
    for i in range(int(n)):
        pname = names[i % len(names)]
        jobs.append({"out_dir": str(out), "preset": pname, "seed": int(seed), "index": i, "frames": int(frames),
                     "tcf": bool(tcf), "fluorescence": bool(fluorescence), "name": f"{pname}-s{int(seed)}-{i:04d}", "nonneg_fill": nonneg_fill})
    entries = _run_jobs(jobs, _default_workers() if workers is None else int(workers))
    training, validation = split_validation(entries, validation_fraction, seed)
    datalist = {
        "name": name,
        "description": (
            f"synthetic ODT tomograms with nucleus labels (osnet_monai.phantoms v{DATASET_VERSION}); "
            f"{n} fields x {frames} frame(s), seed {seed}; images RI (float32) or RI x 10,000 (uint16), "
            "labels uint8, spacing in um"
        ),
        "version": DATASET_VERSION,
        "seed": int(seed),
        "styles": sorted(set(names)),
        "frames": int(frames),
        "training": training,
        "validation": validation,
    }
    if nonneg_fill is not None:
        datalist["nonneg_fill"] = bool(nonneg_fill)
    return write_json(out / "datalist.json", datalist)


def _is_complete(datalist_path: pathlib.Path, expected_name: str | None = None) -> bool:
    try:
        d = json.loads(datalist_path.read_text())
    except (OSError, ValueError):
        return False
    if expected_name is not None and (d.get("name") != expected_name or d.get("version") != DATASET_VERSION):
        return False
    entries = d.get("training", []) + d.get("validation", [])
    if not entries:
        return False
    root = datalist_path.parent
    return all((root / e["image"]).is_file() and (root / e["label"]).is_file() for e in entries)


def ensure_default_dataset(cache_dir: str | os.PathLike, *, workers: int | None = None) -> pathlib.Path:
    """Return ``cache_dir/datalist.json`` of THE default training set, generating it if needed.

    Idempotent: a complete data set of this version is reused. Otherwise the set
    (:data:`DEFAULT_DATASET`: every rendering style alike, some 3-frame time series) is written
    into a temporary sibling folder and renamed onto ``cache_dir`` when complete.
    """
    cache = pathlib.Path(cache_dir)
    target = cache / "datalist.json"
    spec = DEFAULT_DATASET
    if _is_complete(target, spec["name"]):
        return target
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_name(f".{cache.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    tmp.mkdir()
    try:
        jobs = []
        for part, (pname, count, frames) in enumerate(spec["parts"]):
            for i in range(count):
                jobs.append({"out_dir": str(tmp), "preset": pname, "seed": spec["seed"] + 1000 * part, "index": i,
                             "frames": frames, "tcf": False,
                             "name": f"{pname}-{'t' + str(frames) if frames > 1 else '3d'}-{i:03d}"})
        entries = _run_jobs(jobs, _default_workers() if workers is None else int(workers))
        training, validation = split_validation(entries, spec["validation_fraction"], spec["seed"])
        sections = sum(e["nucleus_sections"] for e in entries)
        datalist = {
            "name": spec["name"],
            "description": (
                f"THE default osnet-monai training set: synthetic ODT tomograms of the styles {', '.join(STYLES)} "
                f"({len(entries)} files, {sections} nucleus-containing x-y sections incl. 3-frame time series); "
                "the cross_lab preset is held out"
            ),
            "version": DATASET_VERSION,
            "seed": spec["seed"],
            "styles": sorted({p for p, _, _ in spec["parts"]}),
            "nucleus_sections": int(sections),
            "training": training,
            "validation": validation,
        }
        write_json(tmp / "datalist.json", datalist)
        if cache.exists():
            if _is_complete(target, spec["name"]):  # another process finished first
                shutil.rmtree(tmp, ignore_errors=True)
                return target
            # an incomplete or outdated set: move it aside, then replace it
            old = cache.with_name(f".{cache.name}.{uuid.uuid4().hex[:8]}.old")
            os.replace(cache, old)
            os.replace(tmp, cache)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, cache)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target

