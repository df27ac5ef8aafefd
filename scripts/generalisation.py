"""Leave-one-style-out: how a model fares on an instrument it never saw.

For every rendering style S, ``bundle/configs/train.json`` trains on the default data set's files
of all other styles (their validation split selects the checkpoint: S is never seen, not even for
model selection) for a fixed number of epochs, and the whole inference pipeline segments a test set
of style S rendered with another seed. 3D Dice, voxel precision and recall per volume, then mean
and worst style, go to ``docs/generalisation.md``.

    python scripts/generalisation.py                                   # every variant, every style
    python scripts/generalisation.py --variants ours --styles beam     # one cell of the table
    python scripts/generalisation.py --variants shipped                # the shipped model, no training
    python scripts/generalisation.py --candidate run/model.pt v0.5-rc  # a checkpoint that may be shipped
    python scripts/generalisation.py --in-style beam --minutes 20      # OS-Net vs plain BasicUNet, one style

``--in-style S`` is the other check of the recipe: every in-style variant (``IN_STYLE_VARIANTS``)
trains for the same wall-clock budget on a small set of style S alone (10 training and 3
validation fields) and is scored on the same test fields of S; results go to
``<results>/in-style-<S>-m<minutes>/<variant>.json`` and ``docs/in_style.md``.

The budget (epochs, batch, crop) names the run: results of one budget are never mixed with
another's. Finished cells are cached in ``--results`` (small JSON files, kept in the repository so
the sweep spans sessions and machines); models and interrupted runs live under ``--work`` and resume
from their last epoch. Flip test-time augmentation is an evaluation of a variant's models, not a
training run ("+tta" variants); "shipped" scores ``bundle/models/model.pt`` as a user gets it.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

from osnet_monai.recipes import OURS, OURS_MEDIUM, PAPER

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "bundle" / "configs"

#: train.json settings per variant, every one stated (osnet_monai.recipes): "paper" the paper's recipe,
#: "ours" v0.3.0's, "ours-medium" ours with the paper's normalisation (train.json's defaults since 0.5.0)
VARIANTS: dict[str, dict] = {
    "paper": PAPER,
    "ours": OURS,
    "ours-medium": OURS_MEDIUM,
    "ours-2.5d": {**OURS, "context": 1},
    "ours-medium-2.5d": {**OURS_MEDIUM, "context": 1},
}
#: a plain MONAI BasicUNet as a user would first train it: flips only, Dice + BCE, constant learning
#: rate, no EMA. It gets the same per-field standardisation as OS-Net: some normalisation is needed,
#: and the comparison is about network and recipe, not input scaling.
PLAIN_BASIC_UNET = {
    "network_def": {"_target_": "monai.networks.nets.BasicUNet", "spatial_dims": 2, "in_channels": 1, "out_channels": 1},
    "train#paper_augmentation": [
        {"_target_": "RandFlipd", "keys": ["image", "label"], "spatial_axis": 0, "prob": 0.5},
        {"_target_": "RandFlipd", "keys": ["image", "label"], "spatial_axis": 1, "prob": 0.5},
    ],
    "normalisation": "robust", "instrument_augment": False, "dice_weight": 1.0, "betas": [0.9, 0.999],
    "ema_decay": 0.0, "warmup_epochs": 0, "lr_cycles": 0.0,
}
#: variants of the in-style check (same data, same wall-clock budget)
IN_STYLE_VARIANTS: dict[str, dict] = {"ours": OURS, "paper": PAPER, "basicunet": PLAIN_BASIC_UNET}
#: evaluation-only variants: (trained variant, inference overrides)
EVAL_VARIANTS: dict[str, tuple[str, dict]] = {"ours+tta": ("ours", {"tta": True}), "paper+tta": ("paper", {"tta": True})}
#: the bundle's own model, evaluated as shipped (its model card says how); it is not a leave-one-out
#: model: it saw every style it was trained on.
SHIPPED = "shipped"
SHIPPED_MODEL = REPO / "bundle" / "models" / "model.pt"
#: the shipped model on the same test fields with their RI contrast scaled (another instrument's
#: calibration): the v0.2 model went from Dice 0.33 to 0.12 (x0.6) and 0.54 (x1.6) on one.
CONTRAST_STRESS = {f"{SHIPPED}-contrast{f}": f for f in (0.6, 1.6)}
#: the shipped model with flip test-time augmentation, on the same test fields
SHIPPED_TTA = f"{SHIPPED}+tta"


def budget_name(epochs: int, batch_size: int, roi: int) -> str:
    return f"e{epochs}-b{batch_size}-r{roi}"


def shipped_version() -> str:
    """The bundle version that last changed the shipped weights (the model card's ``weights_version``;
    a config-only release keeps it, so finished rows of the same weights are not run again)."""
    card = json.loads(SHIPPED_MODEL.with_suffix(".json").read_text())
    return card.get("weights_version") or json.loads((REPO / "bundle" / "configs" / "metadata.json").read_text())["version"]


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


def train(run_dir: Path, datalist: dict, epochs: int, batch_size: int, roi: int, overrides: dict,
          minutes: float | None = None) -> Path:
    """Trains train.json on ``datalist`` into ``run_dir`` (resuming); returns the best checkpoint.
    With ``minutes``, the first epoch's duration sets how many epochs fit that wall-clock budget
    (the learning-rate schedule is stretched to end with them); ``epochs`` is then only a ceiling."""
    from monai.bundle import ConfigWorkflow

    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "datalist.json").write_text(json.dumps(datalist, indent=1))
    # train.json derives the network's in_channels, both data sets' context and the model card from
    # the one top-level "context"
    settings = {"context": 0, **overrides}
    workflow = ConfigWorkflow(
        config_file=str(CONFIGS / "train.json"), workflow_type="train", logging_file=False,
        dataset_dir=str(run_dir), ckpt_dir=str(run_dir), output_dir=str(run_dir / "logs"),
        max_epochs=epochs, num_workers=0, batch_size=batch_size, roi_size=[roi, roi], **settings,
    )
    workflow.initialize()
    trainer = workflow.parser.get_parsed_content("train#trainer")
    if minutes:
        from osnet_monai.evaluation import fit_to_budget

        fit_to_budget(workflow, minutes)

    workflow.run()
    history = workflow.parser.get_parsed_content("validate#evaluator").state.metrics
    record = {**{k: float(v) for k, v in history.items()}, "epochs": trainer.state.epoch}
    (run_dir / "last_validation.json").write_text(json.dumps(record, indent=1))
    return run_dir / "model.pt"


def evaluate(model: Path, test_dir: Path, overrides: dict) -> dict:
    from osnet_monai.evaluation import score_volumes, summary

    scores = score_volumes(test_dir, model=str(model), **overrides)
    return {"summary": summary(scores), "volumes": scores}


def inference_overrides(variant: str, table: dict | None = None) -> dict:
    """What inference must know about a variant's model (the model card says it for shipped models)."""
    base = (table or VARIANTS)[variant]
    out = {"network_def": base["network_def"]} if "network_def" in base else {}
    if "normalisation" in base:
        out["normalisation"] = base["normalisation"]
    if base.get("context"):
        out["context"] = base["context"]
    return out


def run(variants: list[str], styles: list[str], budget: dict, work: Path, results_dir: Path, n_test: int,
        test_seed: int) -> None:
    """Trains and scores every missing (variant, left-out style) cell; each finished cell is a JSON
    file in ``results_dir/<variant>-<budget>/<style>.json``."""
    from osnet_monai.phantoms import ensure_default_dataset

    data_path = ensure_default_dataset(REPO / "bundle" / "cache" / "default_dataset")
    datalist = json.loads(data_path.read_text())
    tag = budget_name(**budget)
    for variant in variants:
        trained, extra = EVAL_VARIANTS.get(variant, (variant, {}))
        for style in styles:
            shipped = variant in (SHIPPED, SHIPPED_TTA) or variant in CONTRAST_STRESS
            key = variant.replace(SHIPPED, f"{SHIPPED}-v{shipped_version()}") if shipped else f"{variant}-{tag}"
            result_file = results_dir / key / f"{style}.json"
            if result_file.is_file():
                continue
            test_dir = test_set(style, work, n_test, test_seed)
            if variant in CONTRAST_STRESS:
                from osnet_monai.evaluation import contrast_scaled

                factor = CONTRAST_STRESS[variant]
                test_dir = contrast_scaled(test_dir, factor, test_dir.with_name(f"{test_dir.name}-contrast{factor}"))
            if shipped:
                result = evaluate(SHIPPED_MODEL, test_dir, {"tta": True} if variant == SHIPPED_TTA else {})
                result["train_seconds"] = 0.0
            else:
                run_dir = work / f"{trained}-{tag}" / style
                t0 = time.perf_counter()
                model = run_dir / "model.pt"
                if not (run_dir / "trained").is_file():
                    model = train(run_dir, leave_out(datalist, data_path.parent, style), overrides=VARIANTS[trained],
                                  **budget)
                    (run_dir / "trained").write_text(f"{time.perf_counter() - t0:.0f} s\n")
                result = evaluate(model, test_dir, {**inference_overrides(trained), **extra})
                result["train_seconds"] = float((run_dir / "trained").read_text().split()[0])
                result["validation"] = json.loads((run_dir / "last_validation.json").read_text())
            result["budget"] = budget
            result_file.parent.mkdir(parents=True, exist_ok=True)
            result_file.write_text(json.dumps(result, indent=1))
            s = result["summary"]
            print(f"{key} without {style}: Dice {s['dice_mean']:.3f} (SD {s['dice_sd']:.3f}), "
                  f"precision {s['precision_mean']:.3f}, recall {s['recall_mean']:.3f}", flush=True)


def score_candidate(model: Path, name: str, styles: list[str], work: Path, results_dir: Path, n_test: int,
                    test_seed: int) -> None:
    """A checkpoint that may replace the shipped one (its model card beside it says how it sees its
    input), scored like the shipped model on the same new fields: ``candidate-<name>`` rows."""
    for style in styles:
        result_file = results_dir / f"candidate-{name}" / f"{style}.json"
        if result_file.is_file():
            continue
        result = evaluate(model, test_set(style, work, n_test, test_seed), {})
        result["train_seconds"] = 0.0
        result["checkpoint"] = str(model)
        result_file.parent.mkdir(parents=True, exist_ok=True)
        result_file.write_text(json.dumps(result, indent=1))
        s = result["summary"]
        print(f"candidate-{name} on {style}: Dice {s['dice_mean']:.3f} (SD {s['dice_sd']:.3f})", flush=True)


def in_style_data(style: str, work: Path, seed: int = 9500) -> Path:
    """10 training and 3 validation fields of ``style`` alone (seed unused by the default data set)."""
    from osnet_monai.phantoms import generate_dataset

    folder = work / "in-style" / f"{style}-s{seed}-n13"
    if not (folder / "datalist.json").is_file():
        generate_dataset(folder, n=13, frames=1, seed=seed, preset=style, validation_fraction=3 / 13)
    return folder


def run_in_style(style: str, variants: list[str], minutes: float, budget: dict, work: Path, results_dir: Path,
                 n_test: int, test_seed: int) -> Path:
    """Every in-style variant trained ``minutes`` on :func:`in_style_data` and scored on the test fields."""
    data = in_style_data(style, work)
    root = data.parent / data.name
    datalist = json.loads((data / "datalist.json").read_text())
    absolute = {k: [{**e, "image": str(root / e["image"]), "label": str(root / e["label"])} for e in datalist[k]]
                for k in ("training", "validation")}
    key = f"in-style-{style}-m{minutes:g}"
    test_dir = test_set(style, work, n_test, test_seed)
    for variant in variants:
        result_file = results_dir / key / f"{variant}.json"
        if result_file.is_file():
            continue
        run_dir = work / key / variant
        t0 = time.perf_counter()
        if not (run_dir / "trained").is_file():
            # many epochs: the budget, not the epoch count, ends the run
            train(run_dir, {"name": key, **absolute}, overrides=IN_STYLE_VARIANTS[variant], minutes=minutes,
                  **{**budget, "epochs": 1000})
            (run_dir / "trained").write_text(f"{time.perf_counter() - t0:.0f} s\n")
        result = evaluate(run_dir / "model.pt", test_dir, inference_overrides(variant, IN_STYLE_VARIANTS))
        result["train_seconds"] = float((run_dir / "trained").read_text().split()[0])
        result["validation"] = json.loads((run_dir / "last_validation.json").read_text())
        result["budget"] = {**budget, "minutes": minutes}
        result_file.parent.mkdir(parents=True, exist_ok=True)
        result_file.write_text(json.dumps(result, indent=1))
        s = result["summary"]
        print(f"{key} {variant}: Dice {s['dice_mean']:.3f} (SD {s['dice_sd']:.3f})", flush=True)
    return results_dir / key


def write_in_style_report(results_dir: Path, n_test: int, test_seed: int, path: Path) -> None:
    lines = [
        "# In one style: OS-Net's recipe against a plain MONAI BasicUNet",
        "",
        "Generated by `python scripts/generalisation.py --in-style STYLE --minutes M`. Each variant trains",
        "for the same wall-clock budget (M minutes on one core of this 2-core CPU, batch and crop as the",
        "leave-one-style-out runs) on 10 fields of one style and selects its checkpoint on 3 more; the",
        f"whole inference pipeline then segments the same {n_test} test fields of that style (seed {test_seed}).",
        "*ours*: OS-Net with the recipe v0.3.0 was trained with; *paper*: OS-Net with the paper's recipe; *basicunet*:",
        "MONAI's BasicUNet (2D, default features) with flips only, Dice + BCE, constant learning rate,",
        "no EMA, the same per-field standardisation.",
        "",
    ]
    for folder in sorted(results_dir.glob("in-style-*")):
        lines += [f"## {folder.name}", "", "| variant | 3D Dice (SD) | precision | recall | empty | epochs | training (min) |",
                  "|---|---:|---:|---:|---:|---:|---:|"]
        for f in sorted(folder.glob("*.json")):
            r = json.loads(f.read_text())
            s = r["summary"]
            epochs = r["validation"].get("epochs", "-")
            lines.append(f"| {f.stem} | {s['dice_mean']:.3f} ({s['dice_sd']:.3f}) | {s['precision_mean']:.3f} | "
                         f"{s['recall_mean']:.3f} | {s.get('empty_masks', 0)}/{s['n']} | {epochs} | "
                         f"{r['train_seconds'] / 60:.0f} |")
        lines.append("")
    path.write_text("\n".join(lines) + "\n")


def collect(results_dir: Path) -> dict:
    """Every finished cell in ``results_dir`` (also those of earlier sessions): key -> style -> result."""
    from osnet_monai.phantoms.styles import STYLES

    results: dict = {}
    for folder in sorted(p for p in results_dir.glob("*") if p.is_dir()):
        for style in STYLES:
            f = folder / f"{style}.json"
            if folder.name.startswith("in-style-"):
                continue
            if f.is_file():
                results.setdefault(folder.name, {})[style] = json.loads(f.read_text())
    return results


def write_report(results: dict, n_test: int, test_seed: int, path: Path) -> None:
    from osnet_monai.phantoms.styles import STYLES

    lines = [
        "# Leave-one-style-out: models on instruments they never saw",
        "",
        "Generated by `python scripts/generalisation.py` (see its docstring); every number below comes",
        "from that script's cached results (`docs/generalisation/`). For each rendering style, ",
        "`bundle/configs/train.json` trained on the default data set's files of all *other* styles,",
        "selected its checkpoint by the worst style of their validation split, and the whole inference",
        f"pipeline (`osnet-monai segment`) segmented {n_test} new 3D fields of the left-out style (seed",
        f"{test_seed}, never in training). A variant's name ends with its budget: `e` epochs, `b` batch,",
        "`r` crop side in pixels, on one core of this project's 2-core CPU (training minutes per run in",
        "the last column). 3D Dice, voxel precision and recall are means over the test volumes; *empty*",
        "counts volumes where the model found no nucleus at all.",
        "",
        "Variants: *paper* is the paper's recipe (fixed contrast scale around the medium, the paper's",
        "augmentation, BCE, Adam betas 0.5/0.999, constant learning rate, no EMA; checkpoint selection",
        "by the worst style like every variant; `train.json`'s defaults from 0.3.1 to 0.4.0); *ours* is the recipe",
        "v0.3.0 was trained with (robust per-field normalisation, instrument augmentation, Dice + BCE,",
        "warm-up and cosine decay, EMA weights); *ours-medium* is ours with the paper's normalisation",
        "(`train.json`'s defaults since 0.5.0, chosen by this table),",
        "*ours-2.5d* ours with the section's two neighbours as extra input channels, *ours-medium-2.5d* the",
        "same for ours-medium;",
        "*+tta* adds flip test-time",
        "augmentation to the same models; *shipped-vX* is the bundle's model as a user gets it (v0.2.0",
        "saw only the classic engine's presets, v0.3.0 all four styles with other seeds);",
        "*shipped-vX+tta* is that model with flip test-time augmentation;",
        "*candidate-NAME* is a checkpoint that may replace the shipped one, scored the same way;",
        "*shipped-vX-contrastF* is that model on the same fields with their RI contrast to the medium",
        "multiplied by F, as another instrument's calibration would report it.",
        "",
        "This is the project's own estimate of how a model fares on an instrument it never saw;",
        "in-style validation Dice is not. The worst style is the number to watch. Read each row with",
        "its budget: on this CPU a leave-one-out run gets a few epochs from scratch, so the rows rank",
        "recipes at equal (small) compute; they are not the accuracy of a converged model. The",
        "*shipped* rows are the model a user gets, tested on new fields of every style.",
        "",
        "*False voxels above or below a nucleus*: the share of a volume's false voxels whose x-y column",
        "holds true nucleus (the nucleus reaches too far along z, where the missing cone stretches the",
        "cell); *3D Dice without them* is what the same masks would score if they stopped at the",
        "nucleus's true z-ends, so the gap between the two Dice columns is what the axial error costs.",
        "",
    ]
    summary_rows, body = [], []
    for key, per_style in results.items():
        body += [f"## {key}", "", "| tested style | 3D Dice (SD) | precision | recall | empty | false voxels above or below a nucleus | 3D Dice without them | training (wall-clock min) |",
                 "|---|---:|---:|---:|---:|---:|---:|---:|"]
        dices = []
        for style, r in per_style.items():
            s = r["summary"]
            dices.append(s["dice_mean"])
            minutes = f"{r['train_seconds'] / 60:.0f}" if r["train_seconds"] else "-"
            axial = (f"{s['axial_false_share_mean']:.2f} | {s['dice_without_axial_mean']:.3f}"
                     if "axial_false_share_mean" in s else "- | -")  # cells scored before 0.7.0
            body.append(f"| {style} | {s['dice_mean']:.3f} ({s['dice_sd']:.3f}) | {s['precision_mean']:.3f} | "
                        f"{s['recall_mean']:.3f} | {s.get('empty_masks', 0)}/{s['n']} | {axial} | {minutes} |")
        plain = {style: r["same_model_without_tta"]["dice_mean"] for style, r in per_style.items() if "same_model_without_tta" in r}
        if plain:  # a retrained model differs from the cached plain row's: compare TTA with its own model
            body += ["", "The same models without test-time augmentation: " + ", ".join(f"{k} {v:.3f}" for k, v in plain.items()) + "."]
        worst = min(per_style, key=lambda k: per_style[k]["summary"]["dice_mean"])
        body += ["", f"Mean over {len(dices)} styles **{statistics.mean(dices):.3f}**, worst **{min(dices):.3f}** ({worst}).", ""]
        summary_rows.append(f"| {key} | {len(dices)} | {statistics.mean(dices):.3f} | {min(dices):.3f} ({worst}) |")
    incomplete = [key for key, per_style in results.items() if len(per_style) < len(STYLES)]
    note = ([f"Incomplete rows ({', '.join(incomplete)}): their missing styles run in a later session (the",
             "sweep resumes); compare them with the others style by style, not by mean or worst.", ""]
            if incomplete else [])
    lines += ["| variant | styles | mean 3D Dice | worst 3D Dice (style) |", "|---|---:|---:|---|", *summary_rows, "",
              *note, *body]
    path.write_text("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    import torch

    from osnet_monai.phantoms.styles import STYLES

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", nargs="+", default=["paper", "ours", "ours+tta"],
                        choices=list(VARIANTS) + list(EVAL_VARIANTS) + [SHIPPED, SHIPPED_TTA, *CONTRAST_STRESS])
    parser.add_argument("--styles", nargs="+", default=list(STYLES), choices=list(STYLES))
    parser.add_argument("--epochs", type=int, default=2, help="training epochs per run (default 2)")
    parser.add_argument("--batch-size", type=int, default=8, help="training batch (default 8)")
    parser.add_argument("--roi", type=int, default=160, help="training crop side in pixels (default 160)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1: run two sweeps side by side)")
    parser.add_argument("--test-fields", type=int, default=6, help="test fields per left-out style (default 6)")
    parser.add_argument("--test-seed", type=int, default=9300)
    parser.add_argument("--work", type=Path, default=REPO / "runs" / "generalisation", help="models and test data")
    parser.add_argument("--results", type=Path, default=REPO / "docs" / "generalisation", help="finished cells")
    parser.add_argument("--report", type=Path, default=REPO / "docs" / "generalisation.md")
    parser.add_argument("--no-report", action="store_true", help="run, but leave the report alone")
    parser.add_argument("--candidate", nargs=2, metavar=("CHECKPOINT", "NAME"),
                        help="instead: score a checkpoint that may be shipped, as row candidate-NAME")
    parser.add_argument("--in-style", choices=list(STYLES), help="instead: the in-style check on this style")
    parser.add_argument("--in-style-variants", nargs="+", default=["ours", "basicunet"], choices=list(IN_STYLE_VARIANTS))
    parser.add_argument("--minutes", type=float, default=20.0, help="in-style training budget per variant")
    parser.add_argument("--in-style-report", type=Path, default=REPO / "docs" / "in_style.md")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    budget = {"epochs": args.epochs, "batch_size": args.batch_size, "roi": args.roi}
    if args.in_style:
        run_in_style(args.in_style, args.in_style_variants, args.minutes, budget, args.work, args.results,
                     args.test_fields, args.test_seed)
        if not args.no_report:
            write_in_style_report(args.results, args.test_fields, args.test_seed, args.in_style_report)
            print(f"wrote {args.in_style_report}")
        return 0
    if args.candidate:
        score_candidate(Path(args.candidate[0]), args.candidate[1], args.styles, args.work, args.results,
                        args.test_fields, args.test_seed)
    else:
        run(args.variants, args.styles, budget, args.work, args.results, args.test_fields, args.test_seed)
    if not args.no_report:
        write_report(collect(args.results), args.test_fields, args.test_seed, args.report)
        print(f"wrote {args.report}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
