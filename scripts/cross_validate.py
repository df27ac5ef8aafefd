"""Reproduce the paper's Table 1 design: every network row trained on every grouped fold, one table.

Each run is ``bundle/configs/train.json`` with the paper's recipe (``osnet_monai.recipes.PAPER``) and
overrides (network, augmentation, fold, epochs),
then ``evaluate.json`` on the held-out fold with the run's best checkpoint. Runs resume from their
last checkpoint, so an interrupted sweep continues where it stopped.

Paper-faithful (300 epochs, batch 32, the default data set, 4 folds, all nine rows; weeks on a CPU):

    python scripts/cross_validate.py

Quick setting for a 2-core CPU (a dozen phantom fields, 3 epochs, batch 8, 128 x 128 training crops,
every row but Unet64: about 45 minutes). Unet64 has 16x the FLOPs of Unet16 and alone would take
longer than all other rows together; add it with ``--rows``:

    python scripts/cross_validate.py --quick
    python scripts/cross_validate.py --quick --rows Unet64
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import time
from pathlib import Path

from osnet_monai.evaluation import SECTION_METRICS as METRICS
from osnet_monai.evaluation import run_fold
from osnet_monai.recipes import PAPER

REPO = Path(__file__).resolve().parents[1]
HEADERS = ("DICE", "Jaccard", "F0.5", "PR (AUC)")


def table(results: dict[str, list[dict[str, float]]], parameters: dict[str, int]) -> str:
    """Table 1 layout: mean (SD) over folds per metric, and the parameter count."""
    lines = [
        "| Model | " + " | ".join(HEADERS) + " | Parameters | Folds |",
        "|---|" + "---:|" * len(HEADERS) + "---:|---:|",
    ]
    for row, folds in results.items():
        cells = []
        for metric in METRICS:
            values = [f[metric] for f in folds]
            sd = statistics.stdev(values) if len(values) > 1 else float("nan")
            cells.append(f"{statistics.mean(values):.4f} ({sd:.4f})")
        lines.append(f"| {row} | " + " | ".join(cells) + f" | {parameters[row]:,} | {len(folds)} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from osnet_monai.networks import TABLE1_EXPERIMENTS, count_parameters, table1_model

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small phantom set, 3 epochs, batch 8, no Unet64")
    parser.add_argument("--rows", default=None, help="comma-separated Table 1 rows (default: all nine; quick: all but Unet64)")
    parser.add_argument("--folds", default="0,1,2,3", help="folds to run (default 0,1,2,3)")
    parser.add_argument("--epochs", type=int, default=None, help="epochs per run (default 300, quick 3)")
    parser.add_argument("--dataset-dir", default=None, help="data set folder (default: the embedded default)")
    parser.add_argument("--work-dir", default=str(REPO / "cv_runs"), help="checkpoints and logs per run")
    parser.add_argument("--out", default=str(REPO / "docs" / "table1_reproduction.md"), help="markdown table")
    parser.add_argument(
        "--set", action="append", default=[], metavar="ID=JSON",
        help="any train.json override, e.g. --set batch_size=8 --set 'roi_size=[128,128]'",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)

    if args.rows is not None:
        rows = [r for r in TABLE1_EXPERIMENTS if r[0] in args.rows.split(",")]
    else:
        rows = [r for r in TABLE1_EXPERIMENTS if not (args.quick and r[0] == "Unet64")]
    if not rows:
        parser.error(f"--rows names no Table 1 row; choose from {[r[0] for r in TABLE1_EXPERIMENTS]}")
    folds = [int(f) for f in args.folds.split(",")]
    work = Path(args.work_dir)
    # Table 1 is the paper's experiment: its recipe, whatever train.json's defaults are
    overrides: dict = {**PAPER, "train#trainer#max_epochs": args.epochs or (3 if args.quick else 300)}
    if args.quick:
        from osnet_monai.phantoms import generate_dataset

        quick_data = work / "quick_dataset"
        if not (quick_data / "datalist.json").is_file():
            generate_dataset(quick_data, n=12, frames=1, seed=7, preset=["ht2h", "hx1"])
        overrides.update({"dataset_dir": str(quick_data), "batch_size": 8, "roi_size": [128, 128], "val_interval": 1, "num_workers": 0})
    if args.dataset_dir:
        overrides["dataset_dir"] = args.dataset_dir
    for pair in args.set:
        key, _, value = pair.partition("=")
        overrides[key] = json.loads(value)

    results: dict[str, list[dict[str, float]]] = {}
    parameters: dict[str, int] = {}
    start = time.perf_counter()
    for printed, network, augment in TABLE1_EXPERIMENTS:
        run_dirs = {fold: work / printed.replace(" ", "").replace("+", "_") / f"fold{fold}" for fold in folds}
        selected = (printed, network, augment) in rows
        if not selected and not all((d / "metrics.json").is_file() for d in run_dirs.values()):
            continue  # rows not asked for join the table only when a previous run finished them
        parameters[printed] = count_parameters(table1_model(network))
        for fold, run_dir in run_dirs.items():
            done = run_dir / "metrics.json"
            if done.is_file():
                metrics = json.loads(done.read_text())
            else:
                metrics = run_fold(network, augment, fold, run_dir, overrides)
                done.write_text(json.dumps(metrics))
            results.setdefault(printed, []).append(metrics)
            print(f"{printed} fold {fold}: " + ", ".join(f"{k}={v:.4f}" for k, v in metrics.items()), flush=True)
    text = table(results, parameters)
    setting = "quick" if args.quick else "paper"
    header = (
        f"# Table 1 reproduction ({setting} setting)\n\n"
        f"Grouped {len(folds)}-fold cross-validation (no cell in two folds), "
        f"{overrides['train#trainer#max_epochs']} epochs per run, written by `scripts/cross_validate.py"
        f"{' --quick' if args.quick else ''}` (this invocation: {time.perf_counter() - start:.0f} s; finished runs "
        "are reused from the work folder). F0.5 is the correct "
        "F-beta (never above 1); the paper's printed values are 1.2x too high.\n\n"
    )
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(header + text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
