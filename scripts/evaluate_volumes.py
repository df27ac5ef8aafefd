"""3D Dice of the full inference pipeline (segment, post-process, back on the input grid) against
the labels of a data set laid out as the phantom engine writes it.

    python scripts/evaluate_volumes.py DATASET_DIR [--model bundle/models/model.pt] [--out OUT]

Complements evaluate.json, which scores x-y sections as the paper did: this scores what a user
gets, volume by volume (a 4D file counts every frame), and counts false alarms: nucleus-free x-y
sections in which the pipeline still marks nucleus.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

import nibabel as nib
import numpy as np


def dice(a: np.ndarray, b: np.ndarray) -> float:
    total = a.sum() + b.sum()
    return float(2 * (a & b).sum() / total) if total else 1.0


def precision_recall(pred: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    """Voxel precision and recall; an empty prediction has precision 1, an empty truth recall 1."""
    tp = float((pred & truth).sum())
    return (tp / pred.sum() if pred.sum() else 1.0), (tp / truth.sum() if truth.sum() else 1.0)


def false_alarm_sections(pred: np.ndarray, truth: np.ndarray) -> tuple[int, int]:
    """(nucleus-free x-y sections with predicted nucleus, nucleus-free sections); arrays X, Y, Z[, T]."""
    sections_truth = truth.reshape(truth.shape[0] * truth.shape[1], -1).any(axis=0)
    sections_pred = pred.reshape(pred.shape[0] * pred.shape[1], -1).any(axis=0)
    return int((sections_pred & ~sections_truth).sum()), int((~sections_truth).sum())


def score_volumes(
    dataset_dir: str | Path, model: str | None = None, out: str | Path | None = None, **overrides
) -> dict[str, dict]:
    """Segments every image of ``dataset_dir`` and scores it: name -> Dice, precision, recall, false
    alarms, nucleus-free sections. ``overrides`` replace inference.json values (e.g. ``tta=True``)."""
    from osnet_monai.data import file_stem
    from osnet_monai.inference.cli import segment

    images = sorted((Path(dataset_dir) / "images").glob("*.nii*"))
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(out or tmp)
        if model:
            overrides["ckpt_path"] = str(model)
        if segment([str(p) for p in images], out, save_figures=False, **overrides) != 0:
            raise RuntimeError(f"segmentation failed for some of {dataset_dir}")
        scores = {}
        for image in images:
            truth = np.asarray(nib.load(Path(dataset_dir) / "labels" / image.name).dataobj) > 0
            pred = np.asarray(nib.load(out / f"{file_stem(image)}_nucleus.nii.gz").dataobj) > 0
            alarms, empty = false_alarm_sections(pred, truth)
            precision, recall = precision_recall(pred, truth)
            scores[image.name] = {"dice": dice(pred, truth), "precision": precision, "recall": recall,
                                  "false_alarm_sections": alarms, "nucleus_free_sections": empty}
    return scores


def contrast_scaled(dataset_dir: str | Path, factor: float, out_dir: str | Path) -> Path:
    """A copy of a phantom data set with every tomogram's RI contrast to its medium multiplied by
    ``factor`` (float RI, same grid and labels): what another instrument's calibration or
    reconstruction does to the same cells. The medium is the datalist's ``medium_ri``."""
    import json
    import shutil

    dataset_dir, out_dir = Path(dataset_dir), Path(out_dir)
    datalist = json.loads((dataset_dir / "datalist.json").read_text())
    (out_dir / "images").mkdir(parents=True, exist_ok=True)
    shutil.copytree(dataset_dir / "labels", out_dir / "labels", dirs_exist_ok=True)
    from osnet_monai.readers import load_tomogram

    for entry in datalist["training"] + datalist.get("validation", []):
        image = nib.load(dataset_dir / entry["image"])  # the header and affine to write back with
        ri, _ = load_tomogram(dataset_dir / entry["image"])  # float RI, uint16 RI x 10,000 included
        medium = float(entry["medium_ri"])
        scaled = (medium + factor * (ri - medium)).astype(np.float32)
        header = image.header.copy()
        header.set_data_dtype(np.float32)
        header.set_slope_inter(1.0, 0.0)
        nib.save(nib.Nifti1Image(scaled, image.affine, header), out_dir / entry["image"])
    (out_dir / "datalist.json").write_text(json.dumps(datalist, indent=1))
    return out_dir


def summary(scores: dict[str, dict]) -> dict[str, float]:
    values = [s["dice"] for s in scores.values()]
    empty = sum(s["nucleus_free_sections"] for s in scores.values())
    alarms = sum(s["false_alarm_sections"] for s in scores.values())
    return {
        "dice_mean": statistics.mean(values),
        "dice_sd": statistics.stdev(values) if len(values) > 1 else 0.0,
        "precision_mean": statistics.mean(s.get("precision", float("nan")) for s in scores.values()),
        "recall_mean": statistics.mean(s.get("recall", float("nan")) for s in scores.values()),
        "empty_masks": sum(1 for s in scores.values() if s.get("precision") == 1.0 and s.get("recall", 1.0) == 0.0),
        "false_alarm_rate": alarms / empty if empty else 0.0,
        "n": len(values),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset_dir")
    parser.add_argument("--model", default=None, help="checkpoint (default: the bundle's models/model.pt)")
    parser.add_argument("--out", default=None, help="keep the segmentations here (default: a temporary folder)")
    args = parser.parse_args(argv)
    scores = score_volumes(args.dataset_dir, args.model, args.out)
    for name, s in scores.items():
        print(f"{name}: Dice {s['dice']:.4f}, nucleus marked in {s['false_alarm_sections']} of {s['nucleus_free_sections']} nucleus-free sections")
    total = summary(scores)
    print(
        f"mean 3D Dice over {total['n']} tomograms: {total['dice_mean']:.4f} (SD {total['dice_sd']:.4f}); "
        f"false alarms in {100 * total['false_alarm_rate']:.1f}% of nucleus-free sections"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
