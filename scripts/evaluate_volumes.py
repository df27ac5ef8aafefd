"""3D Dice of the full inference pipeline (segment, post-process, back on the input grid) against
the labels of a data set laid out as the phantom engine writes it.

    python scripts/evaluate_volumes.py DATASET_DIR [--model bundle/models/model.pt] [--out OUT]

Complements evaluate.json, which scores x-y sections as the paper did: this scores what a user
gets, volume by volume (a 4D file counts every frame).
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


def main(argv: list[str] | None = None) -> int:
    from osnet_monai.data import file_stem
    from osnet_monai.inference.cli import segment

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset_dir")
    parser.add_argument("--model", default=None, help="checkpoint (default: the bundle's models/model.pt)")
    parser.add_argument("--out", default=None, help="keep the segmentations here (default: a temporary folder)")
    args = parser.parse_args(argv)
    images = sorted((Path(args.dataset_dir) / "images").glob("*.nii*"))
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(args.out or tmp)
        overrides = {"ckpt_path": args.model} if args.model else {}
        status = segment([str(p) for p in images], out, save_figures=False, **overrides)
        scores = {}
        for image in images:
            truth = np.asarray(nib.load(Path(args.dataset_dir) / "labels" / image.name).dataobj) > 0
            pred = np.asarray(nib.load(out / f"{file_stem(image)}_nucleus.nii.gz").dataobj) > 0
            scores[image.name] = dice(pred, truth)
            print(f"{image.name}: Dice {scores[image.name]:.4f}")
    values = list(scores.values())
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    print(f"mean 3D Dice over {len(values)} tomograms: {statistics.mean(values):.4f} (SD {sd:.4f})")
    return status


if __name__ == "__main__":
    sys.exit(main())
