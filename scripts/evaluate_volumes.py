"""3D Dice of the full inference pipeline (segment, post-process, back on the input grid) against
the labels of a data set laid out as the phantom engine writes it.

    python scripts/evaluate_volumes.py DATASET_DIR [--model bundle/models/model.pt] [--out OUT]

Complements evaluate.json, which scores x-y sections as the paper did: this scores what a user
gets, volume by volume (a 4D file counts every frame), and counts false alarms: nucleus-free x-y
sections in which the pipeline still marks nucleus. The scoring lives in
:mod:`osnet_monai.evaluation`; its names are re-exported here for scripts that still import them
from this file.
"""

from __future__ import annotations

import argparse
import sys

from osnet_monai.evaluation import (
    contrast_scaled,
    dice,
    false_alarm_sections,
    precision_recall,
    score_volumes,
    summary,
)

# re-exported for scripts that import them from this file (scripts/generalisation.py)
__all__ = ["contrast_scaled", "dice", "false_alarm_sections", "precision_recall", "score_volumes", "summary", "main"]


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
