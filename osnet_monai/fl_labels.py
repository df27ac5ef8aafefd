"""Nucleus masks from a recorded nuclear stain: ``osnet-monai fl-labels FILE...``.

The paper's cross-modality and cross-laboratory masks were "directly obtained by thresholding the
fluorescence images that were simultaneously obtained with ODT". A user with stained cells can do the
same and train on their own instrument without drawing a mask. Per time point:

1. the fluorescence channel (``/Data/3DFL/CH0`` of a TCF file) resampled onto the RI grid, its
   z-origin taken from the file's ``OffsetZ`` (the focal shift the instrument records);
2. no lateral registration: the two channels share the instrument's camera path. Phase correlation
   of the stain with the RI contrast was tried and found shifts of 4-20 pixels where the truth was
   under 2 (8 phantom fields): nuclei are not what dominates the RI, the cells are;
3. the camera offset (the median, most voxels being background) removed, the volume smoothed by one
   voxel against shot noise, and thresholded (``"half-max"``: halfway between background and the
   nuclei's bright level, where a blurred edge crosses the true boundary; or ``"otsu"``);
4. holes filled section by section (DNA-poor nucleoli) and objects under ``min_volume_um3`` dropped.

The mask is written on the RI grid with the reader's affine, so ``image`` (the TCF) and ``label``
pair up in a MONAI datalist that ``train.json`` reads as it is.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

__all__ = ["THRESHOLDS", "fluorescence_on_ri_grid", "fluorescence_mask", "fl_labels", "add_arguments", "run"]

THRESHOLDS = ("half-max", "otsu")
#: the nuclei's bright level: this percentile of the smoothed, background-free stain
_BRIGHT_PERCENTILE = 99.5


def fluorescence_on_ri_grid(fl_xyz: np.ndarray, fl_meta: dict, ri_shape_xyz, ri_spacing_um) -> np.ndarray:
    """The stain (X', Y', Z') resampled (linear) onto the RI grid (X, Y, Z) using both voxel sizes and
    the recorded z-origin ``fl_meta["offset_z_um"]``; outside the stain's stack its edge values."""
    fs = np.asarray(fl_meta["spacing"], float)
    rs = np.asarray(ri_spacing_um, float)
    offset = np.array([0.0, 0.0, float(fl_meta.get("offset_z_um") or 0.0)])
    axes = [((np.arange(n) + 0.5) * r - o) / f - 0.5 for n, r, o, f in zip(ri_shape_xyz, rs, offset, fs)]
    if all(len(a) == n and np.allclose(a, np.arange(n)) for a, n in zip(axes, fl_xyz.shape)):
        return np.asarray(fl_xyz, np.float32)
    coords = np.meshgrid(*axes, indexing="ij", sparse=False)
    return ndi.map_coordinates(np.asarray(fl_xyz, np.float32), coords, order=1, mode="nearest")


def fluorescence_mask(
    fl_xyz: np.ndarray, spacing_um, threshold: str = "half-max", min_volume_um3: float = 20.0
) -> np.ndarray:
    """The nucleus mask (X, Y, Z) bool of a stain volume already on the RI grid."""
    if threshold not in THRESHOLDS:
        raise ValueError(f"threshold must be one of {', '.join(THRESHOLDS)}, got {threshold!r}")
    signal = ndi.gaussian_filter(np.asarray(fl_xyz, np.float32) - np.float32(np.median(fl_xyz)), 1.0)
    bright = float(np.percentile(signal, _BRIGHT_PERCENTILE))
    if bright <= 0:
        return np.zeros(signal.shape, bool)
    if threshold == "half-max":
        cut = 0.5 * bright
    else:
        from skimage.filters import threshold_otsu

        cut = float(threshold_otsu(signal))
    mask = signal > cut
    for k in range(mask.shape[2]):
        mask[:, :, k] = ndi.binary_fill_holes(mask[:, :, k])
    labels, n = ndi.label(mask)
    if n:
        voxel = float(np.prod(spacing_um))
        volumes = np.bincount(labels.ravel()) * voxel
        keep = volumes >= min_volume_um3
        keep[0] = False
        mask = keep[labels]
    return mask


def _label_file(path: Path, out_dir: Path, channel: str, threshold: str, min_volume_um3: float) -> dict:
    """Masks for every time point of one TCF file; writes ``labels/NAME.nii.gz``; its datalist entry."""
    from osnet_monai.phantoms.io import write_nifti
    from osnet_monai.readers import file_stem, read_tcf_fluorescence, read_tcf_frame, tcf_info

    info = tcf_info(path)
    masks = []
    for t in range(len(info.frames)):
        ri, ri_meta = read_tcf_frame(path, t, info)
        fl, fl_meta = read_tcf_fluorescence(path, t, channel)
        on_grid = fluorescence_on_ri_grid(fl, fl_meta, ri.shape, ri_meta["spacing"])
        masks.append(fluorescence_mask(on_grid, ri_meta["spacing"], threshold, min_volume_um3))
    label = np.stack(masks, axis=-1) if len(masks) > 1 else masks[0]
    name = file_stem(path)
    target = out_dir / "labels" / f"{name}.nii.gz"
    write_nifti(target, label.astype(np.uint8), info.spacing_um, info.time_step_s)
    image = os.path.relpath(Path(path).resolve(), out_dir.resolve())
    return {"image": image, "label": f"labels/{name}.nii.gz", "cell_id": name,
            "frames": len(masks), "source": "fluorescence", "nucleus_voxels": int(label.sum())}


def fl_labels(
    paths,
    out_dir,
    channel: str = "CH0",
    threshold: str = "half-max",
    min_volume_um3: float = 20.0,
    validation_fraction: float = 0.25,
    seed: int = 0,
) -> tuple[Path, list[str]]:
    """Writes ``OUT/labels/NAME.nii.gz`` for each TCF file and ``OUT/datalist.json`` pairing them with
    the files (``image`` relative to OUT). Returns the datalist path and one error line per refused file."""
    from osnet_monai.phantoms.dataset import split_validation
    from osnet_monai.phantoms.io import write_json
    from osnet_monai.readers import InputError, file_stem
    from osnet_monai.readers.errors import input_error

    out_dir = Path(out_dir)
    entries, errors, names = [], [], set()
    for path in paths:
        try:
            if file_stem(path) in names:
                raise input_error(path, f"another input is also named {file_stem(path)}; its mask would be overwritten")
            names.add(file_stem(path))
            entries.append(_label_file(Path(path), out_dir, channel, threshold, min_volume_um3))
        except InputError as err:
            errors.append(str(err))
            continue
        print(f"{path}: wrote {entries[-1]['label']} ({entries[-1]['nucleus_voxels']} nucleus voxels)")
    training, validation = split_validation(entries, validation_fraction, seed) if entries else ([], [])
    datalist = {"name": "fluorescence-derived nucleus masks", "threshold": threshold, "channel": channel,
                "training": training, "validation": validation}
    return write_json(out_dir / "datalist.json", datalist) if entries else out_dir / "datalist.json", errors


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inputs", nargs="+", metavar="FILE", help="TCF files with a fluorescence channel (/Data/3DFL)")
    parser.add_argument("-o", "--output-dir", required=True, help="folder for labels/NAME.nii.gz and datalist.json")
    parser.add_argument("--channel", default="CH0", help="fluorescence channel (default CH0)")
    parser.add_argument("--threshold", choices=THRESHOLDS, default="half-max",
                        help="half-max: halfway to the nuclei's bright level (default); otsu: Otsu's threshold")
    parser.add_argument("--min-volume", type=float, default=20.0, help="smallest nucleus kept, um^3 (default 20)")
    parser.add_argument("--validation-fraction", type=float, default=0.25, help="share of files in 'validation' (default 0.25)")


def run(args: argparse.Namespace) -> int:
    datalist, errors = fl_labels(args.inputs, args.output_dir, args.channel, args.threshold, args.min_volume,
                                 args.validation_fraction)
    for line in errors:
        print(line, file=sys.stderr)
    if len(errors) == len(args.inputs):
        print("osnet-monai fl-labels: error: no file could be used", file=sys.stderr)
        return 1
    print(f"wrote {datalist}")
    return 1 if errors else 0
