"""Leave-one-style-out: how a model fares on an instrument it never saw.

For every rendering style S, ``bundle/configs/train.json`` trains on the default data set's files
of all other styles (their validation split selects the checkpoint: S is never seen, not even for
model selection) for a fixed number of epochs, and the whole inference pipeline segments a test set
of style S rendered with another seed. 3D Dice, voxel precision and recall per volume, then mean
and worst style, go to ``docs/generalisation.md``.

    python scripts/generalisation.py                                   # every variant, every style
    python scripts/generalisation.py --variants ours --styles beam     # one cell of the table

Finished runs are cached under ``--work`` (``result.json`` per variant and style) and interrupted
ones resume from their last epoch, so the sweep spans sessions. Flip test-time augmentation is an
evaluation of a variant's models, not a training run ("+tta" variants).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "bundle" / "configs"
sys.path.insert(0, str(Path(__file__).resolve().parent))

#: train.json overrides per variant. "paper": the paper's recipe (fixed contrast scale around the
#: medium, the paper's augmentation, BCE, Adam betas (0.5, 0.999), constant learning rate, no EMA).
VARIANTS: dict[str, dict] = {
    "paper": {"normalisation": "medium", "instrument_augment": False, "dice_weight": 0.0, "betas": [0.5, 0.999],
              "ema_decay": 0.0, "warmup_epochs": 0, "lr_cycles": 0.0},
    "ours": {},
    "ours-medium": {"normalisation": "medium"},
    "ours-2.5d": {"context": 1},
}
#: evaluation-only variants: (trained variant, inference overrides)
EVAL_VARIANTS: dict[str, tuple[str, dict]] = {"ours+tta": ("ours", {"tta": True})}


def test_set(style: str, work: Path, n: int, seed: int) -> Path:
    """``n`` 3D fields of ``style`` with a seed the default data set never uses (cached)."""
    from osnet_monai.phantoms import generate_dataset

    folder = work / "test" / f"{style}-s{seed}-n{n}"
    if not (folder / "datalist.json").is_file():
        generate_dataset(folder, n=n, frames=1, seed=seed, preset=style, validation_fraction=0.0)
    return folder


def leave_out(datalist: dict, root: Path, style: str) -> dict:
    """The default data set without ``style``, with absolute paths."""
    from osnet_monai.metrics import style_of

    def keep(items):
        return [{**e, "image": str(root / e["image"]), "label": str(root / e["label"])}
                for e in items if style_of(e["cell_id"]) != style]

    return {"name": f"without-{style}", "training": keep(datalist["training"]), "validation": keep(datalist["validation"])}


def train(run_dir: Path, datalist: dict, epochs: int, overrides: dict) -> Path:
    """Trains train.json on ``datalist`` into ``run_dir`` (resuming); returns the best checkpoint."""
    from monai.bundle import ConfigWorkflow

    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "datalist.json").write_text(json.dumps(datalist, indent=1))
    settings = dict(overrides)
    context = int(settings.pop("context", 0))
    if context:
        settings["network_def#in_channels"] = 2 * context + 1
        settings["train#dataset#context"] = context
        settings["validate#dataset#context"] = context
    workflow = ConfigWorkflow(
        config_file=str(CONFIGS / "train.json"), workflow_type="train", logging_file=False,
        dataset_dir=str(run_dir), ckpt_dir=str(run_dir), output_dir=str(run_dir / "logs"),
        max_epochs=epochs, num_workers=0, **settings,
    )
    workflow.initialize()
    workflow.run()
    history = workflow.parser.get_parsed_content("validate#evaluator").state.metrics
    (run_dir / "last_validation.json").write_text(json.dumps({k: float(v) for k, v in history.items()}, indent=1))
    return run_dir / "model.pt"


def evaluate(model: Path, test_dir: Path, overrides: dict) -> dict:
    from evaluate_volumes import score_volumes, summary

    scores = score_volumes(test_dir, model=str(model), **overrides)
    return {"summary": summary(scores), "volumes": scores}


def inference_overrides(variant: str) -> dict:
    """What inference must know about a variant's model (the model card says it for shipped models)."""
    base = VARIANTS[variant]
    out = {}
    if "normalisation" in base:
        out["normalisation"] = base["normalisation"]
    if base.get("context"):
        out["context"] = base["context"]
    return out


def run(variants: list[str], styles: list[str], epochs: int, work: Path, n_test: int, test_seed: int) -> dict:
    from osnet_monai.phantoms import ensure_default_dataset

    data_path = ensure_default_dataset(REPO / "bundle" / "cache" / "default_dataset")
    datalist = json.loads(data_path.read_text())
    results: dict = {}
    for variant in variants:
        trained, extra = EVAL_VARIANTS.get(variant, (variant, {}))
        for style in styles:
            run_dir = work / f"{trained}-e{epochs}" / style
            result_file = run_dir / (f"result{'-' + variant if variant != trained else ''}.json")
            if result_file.is_file():
                results.setdefault(variant, {})[style] = json.loads(result_file.read_text())
                continue
            t0 = time.perf_counter()
            model = run_dir / "model.pt"
            if not (run_dir / "trained").is_file():
                model = train(run_dir, leave_out(datalist, data_path.parent, style), epochs, VARIANTS[trained])
                (run_dir / "trained").write_text(f"{time.perf_counter() - t0:.0f} s\n")
            result = evaluate(model, test_set(style, work, n_test, test_seed), {**inference_overrides(trained), **extra})
            result["train_seconds"] = float((run_dir / "trained").read_text().split()[0])
            result_file.write_text(json.dumps(result, indent=1))
            results.setdefault(variant, {})[style] = result
            s = result["summary"]
            print(f"{variant} without {style}: Dice {s['dice_mean']:.3f} (SD {s['dice_sd']:.3f}), "
                  f"precision {s['precision_mean']:.3f}, recall {s['recall_mean']:.3f}", flush=True)
    return results


def write_report(results: dict, epochs: int, n_test: int, test_seed: int, path: Path) -> None:
    lines = [
        "# Leave-one-style-out: models on instruments they never saw",
        "",
        "Generated by `python scripts/generalisation.py` (see its docstring); every number below comes",
        "from that run. For each rendering style, `bundle/configs/train.json` trained on the default",
        "data set's files of all *other* styles, selected its checkpoint on their validation split,",
        f"and the whole inference pipeline segmented {n_test} new 3D fields of the left-out style (seed",
        f"{test_seed}, never in training). Budget per run: {epochs} epochs on this project's 2-core CPU",
        "(training minutes per run in the last column). 3D Dice, voxel precision and recall are means",
        "over the test volumes; *empty* counts volumes where the model found no nucleus at all.",
        "",
        "This is the project's own estimate of how a model fares on an instrument it never saw;",
        "in-style validation Dice is not. The worst style is the number to watch.",
        "",
    ]
    summary_rows = []
    for variant, per_style in results.items():
        lines += [f"## {variant}", "", "| left-out style | 3D Dice (SD) | precision | recall | empty | training (min) |",
                  "|---|---:|---:|---:|---:|---:|"]
        dices = []
        for style, r in per_style.items():
            s = r["summary"]
            dices.append(s["dice_mean"])
            lines.append(f"| {style} | {s['dice_mean']:.3f} ({s['dice_sd']:.3f}) | {s['precision_mean']:.3f} | "
                         f"{s['recall_mean']:.3f} | {s.get('empty_masks', 0)}/{s['n']} | {r['train_seconds'] / 60:.0f} |")
        if dices:
            worst = min(per_style, key=lambda k: per_style[k]["summary"]["dice_mean"])
            lines += ["", f"Mean over styles **{statistics.mean(dices):.3f}**, worst **{min(dices):.3f}** ({worst}).", ""]
            summary_rows.append((variant, statistics.mean(dices), min(dices), worst, len(dices)))
    lines[14:14] = ["| variant | styles | mean 3D Dice | worst 3D Dice (style) |", "|---|---:|---:|---|"] + [
        f"| {v} | {n} | {m:.3f} | {w:.3f} ({ws}) |" for v, m, w, ws, n in summary_rows] + [""]
    path.write_text("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    from osnet_monai.phantoms.styles import STYLES

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", nargs="+", default=["paper", "ours", "ours+tta"],
                        choices=list(VARIANTS) + list(EVAL_VARIANTS))
    parser.add_argument("--styles", nargs="+", default=list(STYLES), choices=list(STYLES))
    parser.add_argument("--epochs", type=int, default=4, help="training epochs per run (default 4)")
    parser.add_argument("--test-fields", type=int, default=6, help="test fields per left-out style (default 6)")
    parser.add_argument("--test-seed", type=int, default=9300)
    parser.add_argument("--work", type=Path, default=REPO / "runs" / "generalisation")
    parser.add_argument("--report", type=Path, default=REPO / "docs" / "generalisation.md")
    parser.add_argument("--no-report", action="store_true", help="run, but leave the report alone")
    args = parser.parse_args(argv)
    run(args.variants, args.styles, args.epochs, args.work, args.test_fields, args.test_seed)
    if not args.no_report:
        write_report(collect(args.work, args.epochs), args.epochs, args.test_fields, args.test_seed, args.report)
        print(f"wrote {args.report}")
    return 0


def collect(work: Path, epochs: int) -> dict:
    """Every finished cell under ``work`` (also those of earlier calls), in the order of the variants."""
    from osnet_monai.phantoms.styles import STYLES

    results: dict = {}
    for variant in list(VARIANTS) + list(EVAL_VARIANTS):
        trained = EVAL_VARIANTS.get(variant, (variant, {}))[0]
        suffix = f"-{variant}" if variant != trained else ""
        for style in STYLES:
            f = work / f"{trained}-e{epochs}" / style / f"result{suffix}.json"
            if f.is_file():
                results.setdefault(variant, {})[style] = json.loads(f.read_text())
    return results


if __name__ == "__main__":
    sys.exit(main())
