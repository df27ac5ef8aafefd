"""Calibrates a checkpoint on validation volumes: ECE, reliability diagram, and the decision threshold
that maximises the mean per-volume Dice, written into the checkpoint's model card.

    python scripts/calibrate.py --model bundle/models/model.pt --data DATA/datalist.json [--split validation]

The probabilities are those a user gets: the full inference pipeline (``osnet-monai segment
--save-prob``: resampling, sliding windows, skipped empty sections, back on the input grid), read
back and compared with the labels voxel by voxel (a 4D file counts every frame). The threshold is
chosen on ``prob >= t`` before hole filling and small-object removal. The card (``MODEL.json``
beside the checkpoint) gets ``threshold``, ``ece`` and a ``calibration`` record; ``context``,
``in_channels`` and ``normalisation`` are added when it lacks them. ``osnet-monai segment`` and
``inference.json`` then use the threshold unless ``--threshold`` is given.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
from pathlib import Path

import nibabel as nib
import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]


def _shown(path: Path) -> str:
    """``path`` relative to the repository when inside it: a card travels with the model."""
    try:
        return str(path.relative_to(REPO_ROOT))
    except ValueError:
        return str(path)


def load_split(data: str | Path, split: str = "validation") -> list[dict]:
    """``split``'s items of a datalist JSON (paths relative to it) or of a data set folder, absolute."""
    from osnet_monai.data import find_dataset
    from osnet_monai.data.datalist import _absolute

    data = Path(data)
    if data.is_dir():
        found = find_dataset(data)
        if found is None:
            raise SystemExit(f"{data}: no datalist.json and no images/ with matching labels/.")
        items = found.get(split, [])
    else:
        try:
            content = json.loads(data.read_text())
        except (OSError, json.JSONDecodeError) as err:
            raise SystemExit(f"{data}: not a readable datalist JSON ({err}).") from err
        items = _absolute(content.get(split) or [], data.resolve().parent)
    items = [item for item in items if item.get("label")]
    if not items:
        raise SystemExit(f"{data}: no labelled items in {split!r} (try --split training).")
    return items


def _normalisation() -> str:
    config = json.loads((REPO_ROOT / "bundle" / "configs" / "inference.json").read_text())
    return f"(RI - medium RI) / {config['contrast_scale']}"


def calibrate(
    model: str | Path,
    data: str | Path,
    split: str = "validation",
    figure: str | Path | None = REPO_ROOT / "docs" / "calibration.png",
    bins: int = 15,
    write_card: bool = True,
    prob_dir: str | Path | None = None,
    **segment_options,
) -> dict:
    """Runs the pipeline on ``split``, measures calibration and chooses the threshold; returns the record."""
    from osnet_monai.calibration import DEFAULT_CANDIDATES, MAX_VOXELS, dice_curve, expected_calibration_error
    from osnet_monai.calibration import pick_threshold, reliability_figure, subsample
    from osnet_monai.data import file_stem
    from osnet_monai.inference.cli import segment
    from osnet_monai.model_card import inference_settings, read_model_card, write_model_card
    from osnet_monai.readers import load_tomogram

    model = Path(model)
    if not model.is_file():
        raise SystemExit(f"{model}: checkpoint not found.")
    items = load_split(data, split)
    candidates = DEFAULT_CANDIDATES
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(prob_dir or tmp)
        status = segment(
            [item["image"] for item in items], out, ckpt_path=str(model), save_prob=True, save_figures=False, **segment_options
        )
        if status != 0:
            raise SystemExit(f"inference failed for some of the {split} images (messages above).")
        probs = [out / f"{file_stem(item['image'])}_prob.nii.gz" for item in items]
        # the same share of every volume for the reliability statistics, so big volumes weigh as in the full set
        total = sum(math.prod(nib.load(p).shape) for p in probs)
        share = min(1.0, MAX_VOXELS / max(total, 1))
        curves, at_half, pooled_prob, pooled_label = [], [], [], []
        for item, prob_path in zip(items, probs):
            prob = np.asarray(nib.load(prob_path).dataobj, dtype=np.float32)
            label = load_tomogram(item["label"], check=False)[0] > 0
            if np.squeeze(label).shape != np.squeeze(prob).shape:
                raise SystemExit(f"{item['label']}: label shape {label.shape} differs from the image's {prob.shape}.")
            label = label.reshape(prob.shape)
            curves.append(dice_curve(prob, label, candidates))
            at_half.append(float(dice_curve(prob, label, [0.5])[0]))
            print(f"{Path(item['image']).name}: Dice at 0.5 {at_half[-1]:.4f}")
            p, y = subsample(prob, label, max(1, int(round(share * prob.size))), seed=len(curves))
            pooled_prob.append(p)
            pooled_label.append(y)
    prob, label = np.concatenate(pooled_prob), np.concatenate(pooled_label)
    mean_curve = np.mean(curves, axis=0)
    threshold, best = pick_threshold(candidates, mean_curve)
    ece = expected_calibration_error(prob, label, bins)
    record = {
        "threshold": round(threshold, 4),
        "ece": round(ece, 6),
        "calibration": {
            "data": _shown(Path(data).resolve()),
            "split": split,
            "n_volumes": len(items),
            "bins": bins,
            "mean_dice_at_threshold": round(best, 4),
            "mean_dice_at_0.5": round(float(np.mean(at_half)), 4),
            "tta": bool(segment_options.get("tta", False)),
        },
    }
    print(
        f"ECE {ece:.4f} over {prob.size} voxels ({bins} bins); threshold {threshold:.2f}: mean Dice "
        f"{best:.4f} (at 0.5: {record['calibration']['mean_dice_at_0.5']:.4f}) over {len(items)} volumes"
    )
    if figure:
        reliability_figure(prob, label, figure, bins, title=f"{model.name} on {split} ({len(items)} volumes), ECE = {ece:.4f}")
        print(f"reliability diagram: {figure}")
    if write_card:
        card = read_model_card(model)
        settings = inference_settings(model, threshold=threshold)
        missing = {"context": settings["context"], "in_channels": settings["in_channels"], "normalisation": _normalisation()}
        path = write_model_card(model, **{k: v for k, v in missing.items() if k not in card}, **record)
        print(f"model card: {path}")
    return record


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(REPO_ROOT / "bundle" / "models" / "model.pt"), help="checkpoint (default: the bundle's)")
    parser.add_argument("--data", required=True, help="datalist JSON (paths relative to it) or a data set folder")
    parser.add_argument("--split", default="validation", help="datalist split to calibrate on (default validation)")
    parser.add_argument("--figure", default=str(REPO_ROOT / "docs" / "calibration.png"), help="reliability diagram PNG")
    parser.add_argument("--bins", type=int, default=15, help="reliability bins (default 15)")
    parser.add_argument("--tta", action="store_true", help="calibrate the flip-TTA probabilities (then segment with --tta)")
    parser.add_argument("--device", default=None, help="torch device (default: CUDA when available)")
    parser.add_argument("--no-card", action="store_true", help="measure only; leave the model card as it is")
    parser.add_argument("--prob-dir", default=None, help="keep the probability maps here (default: a temporary folder)")
    args = parser.parse_args(argv)
    options = {"tta": True} if args.tta else {}
    if args.device:
        options["device"] = f"$torch.device('{args.device}')"
    calibrate(args.model, args.data, args.split, args.figure, args.bins, not args.no_card, args.prob_dir, **options)
    return 0


if __name__ == "__main__":
    sys.exit(main())
