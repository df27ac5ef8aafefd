"""The paper's validation on our data: Tables 1 and 2, the edge-based baseline, peers, figures.

    python scripts/validation_report.py                      # every part; finished runs are reused
    python scripts/validation_report.py --parts cross-lab cross-modality figures
    python scripts/validation_report.py --parts table1 --rows OS-Net Unet16 --folds 0 1

writes ``docs/validation_report.md`` and its figures (``docs/validation/*.png``). Every finished run is
a small JSON file under ``docs/validation/`` (kept in the repository, so the report spans sessions and
machines); models, segmentations and test data live under ``--work`` and interrupted training resumes.
The parts:

- ``table1``: the paper's nine Table 1 rows with one recipe for all (``--recipe``: train.json's
  defaults, or the paper's, which does not leave the all-background phase in a few CPU-minutes),
  grouped 4-fold cross-validation on the default data set, every run given the same wall-clock budget
  (``--minutes`` on one core), section metrics (Dice, Jaccard, F0.5, PR-AUC) on the held-out fold;
- ``peers``: MONAI's BasicUNet and SegResNet (2D) through the same ``train.json`` (``network_def``
  overridden), same recipe, folds and budget;
- ``costs``: parameters, FLOPs per 448 x 448 section, CPU sections/s (one thread, batch 4);
- ``cross-modality`` (Table 2, upper part): fields of every style with a simulated nuclear stain
  recorded (``osnet-monai phantoms --fluorescence``), masks from the stain by ``osnet-monai fl-labels``;
  the edge-based method, the shipped model, and two OS-Nets trained for the same budget on the same
  fields, one on true masks and one on stain-derived masks, scored against the stain's masks (as the
  paper did) and against the truth;
- ``cross-lab`` (Table 2, lower part): the leave-one-style-out table of ``scripts/generalisation.py``,
  with the edge-based method scored on the same unseen-style fields;
- ``figures``: PR curves (Fig. 2c), contour overlays of truth, stain, OS-Net and edge-based (Fig. 3a,
  3c), 3D renderings of nuclear volumes (Fig. 3b), nuclear volume and shape over a time-lapse (Fig. 4).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))

import generalisation  # noqa: E402  (its test fields, training and results are the cross-lab part's)

from osnet_monai.recipes import OURS_MEDIUM, PAPER  # noqa: E402

RESULTS = REPO / "docs" / "validation"
REPORT = REPO / "docs" / "validation_report.md"
PARTS = ("costs", "cross-lab", "cross-modality", "table1", "peers", "figures")
SHIPPED_MODEL = generalisation.SHIPPED_MODEL
EDGE = "edge-based"
#: 2D peers through train.json's network_def, MONAI defaults otherwise
PEERS: dict[str, dict] = {
    "MONAI BasicUNet": {"_target_": "monai.networks.nets.BasicUNet", "spatial_dims": 2, "in_channels": 1, "out_channels": 1},
    "MONAI SegResNet": {"_target_": "monai.networks.nets.SegResNet", "spatial_dims": 2, "in_channels": 1, "out_channels": 1,
                        "init_filters": 16},
}
#: the paper's values (Table 1: four-fold cross-validation; Table 2); F0.5 as printed (1.2x too high)
PAPER_TABLE1 = {
    "Unet64": (0.8932, 0.8080, 1.0524, 0.9139), "Unet16": (0.8924, 0.8073, 1.0510, 0.9229),
    "Unet16 + GCN": (0.8978, 0.8161, 1.0597, 0.9263), "Unet16 + GCN + SSC": (0.9025, 0.8231, 1.0668, 0.9302),
    "Unet16 + Aug": (0.9036, 0.8256, 1.0664, 0.9310), "Unet16 + GCN + Aug": (0.9080, 0.8330, 1.0773, 0.9339),
    "FusionNet + Aug": (0.9001, 0.8194, 1.0560, 0.9325), "FusionNet v2": (0.9033, 0.8267, 1.0601, 0.9366),
    "OS-Net": (0.9131, 0.8452, 1.1016, 0.9344),
}
PAPER_CROSS_MODALITY = {EDGE: (0.3716, 0.2325, 0.3773), "OS-Net": (0.9094, 0.8352, 1.1391)}
PAPER_CROSS_LAB = {EDGE: (0.1759, 0.1095, 0.2812), "OS-Net": (0.7981, 0.6699, 1.0281)}
#: cross-modality data: fields per style, seeds the default data set and the other tests never use
XMOD_TEST = {"n": 4, "seed": 9400}
XMOD_TRAIN = {"n": 24, "seed": 9410}
#: the budget of the two stain/truth-trained models (the leave-one-style-out runs' budget)
FL_BUDGET = {"epochs": 2, "batch_size": 8, "roi": 160}


def styles() -> list[str]:
    from osnet_monai.phantoms.styles import STYLES

    return list(STYLES)


def save(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(obj, indent=1))
    tmp.replace(path)


def mean_sd(values) -> tuple[float, float]:
    values = [v for v in values if v == v]
    if not values:
        return float("nan"), float("nan")
    return statistics.mean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def fmt(values) -> str:
    m, sd = mean_sd(values)
    return "-" if m != m else f"{m:.4f} ({sd:.4f})"


# ---------------------------------------------------------------------------------------- metrics

def volume_metrics(pred: np.ndarray, reference: np.ndarray, prob: np.ndarray | None) -> dict:
    """Dice, Jaccard, F0.5, precision, recall over a volume's voxels, and PR-AUC from ``prob``."""
    import torch

    from osnet_monai.metrics import compute_pr_auc

    tp = float((pred & reference).sum())
    n_pred, n_ref = float(pred.sum()), float(reference.sum())
    precision = tp / n_pred if n_pred else 1.0
    recall = tp / n_ref if n_ref else 1.0
    f05 = 1.25 * precision * recall / (0.25 * precision + recall) if precision + recall else 0.0
    out = {"dice": 2 * tp / (n_pred + n_ref) if n_pred + n_ref else 1.0,
           "jaccard": tp / (n_pred + n_ref - tp) if n_pred + n_ref else 1.0,
           "f05": f05, "precision": precision, "recall": recall, "pr_auc": float("nan")}
    if prob is not None:
        out["pr_auc"] = float(compute_pr_auc(torch.as_tensor(prob[None, None]), torch.as_tensor(reference[None, None]))[0, 0])
    return out


# ------------------------------------------------------------------------------------------- data

def xmod_set(style: str, work: Path) -> Path:
    """Test fields of ``style`` with the stain recorded, and the stain's masks in ``fl/labels``."""
    from osnet_monai.fl_labels import fl_labels
    from osnet_monai.phantoms import generate_dataset

    folder = work / "cross-modality" / f"{style}-s{XMOD_TEST['seed']}-n{XMOD_TEST['n']}"
    if not (folder / "datalist.json").is_file():
        generate_dataset(folder, n=XMOD_TEST["n"], seed=XMOD_TEST["seed"], preset=style, fluorescence=True,
                         validation_fraction=0.0)
    if not (folder / "fl" / "datalist.json").is_file():
        _, errors = fl_labels(sorted((folder / "tcf").glob("*.TCF")), folder / "fl", validation_fraction=0.0)
        if errors:
            raise RuntimeError("; ".join(errors))
    return folder


def fl_training_lists(work: Path) -> dict[str, dict]:
    """The same fields of every style with true masks and with stain-derived masks (same split)."""
    from osnet_monai.fl_labels import fl_labels
    from osnet_monai.phantoms import generate_dataset

    folder = work / "cross-modality" / f"train-s{XMOD_TRAIN['seed']}-n{XMOD_TRAIN['n']}"
    if not (folder / "datalist.json").is_file():
        generate_dataset(folder, n=XMOD_TRAIN["n"], seed=XMOD_TRAIN["seed"], preset=styles(), fluorescence=True,
                         validation_fraction=0.25)
    if not (folder / "fl" / "datalist.json").is_file():
        fl_labels(sorted((folder / "tcf").glob("*.TCF")), folder / "fl", validation_fraction=0.0)
    truth = json.loads((folder / "datalist.json").read_text())

    def absolute(entries, labels: str):
        return [{**e, "image": str(folder / e["image"]), "label": str(folder / labels / e["label"])} for e in entries]

    return {"truth": {"name": "truth", "training": absolute(truth["training"], "."),
                      "validation": absolute(truth["validation"], ".")},
            # the stain's masks train; the checkpoint is chosen on the stain's masks too (a user has no truth)
            "fluorescence": {"name": "fluorescence", "training": absolute(truth["training"], "fl"),
                             "validation": absolute(truth["validation"], "fl")}}


# ------------------------------------------------------------------------------------------ parts

def segment_set(folder: Path, model: str, checkpoint: Path | None, work: Path) -> Path:
    """Every image of ``folder`` segmented once by ``model`` (edge-based or a checkpoint), probabilities kept."""
    from osnet_monai.inference.cli import segment

    out = work / "segmented" / model / folder.name
    images = sorted((folder / "images").glob("*.nii.gz"))
    if all((out / f"{p.name[:-7]}_nucleus.nii.gz").is_file() for p in images):
        return out
    if model == EDGE:
        status = segment([str(p) for p in images], out, method=EDGE, save_figures=False, save_report=False)
    else:
        status = segment([str(p) for p in images], out, ckpt_path=str(checkpoint), save_prob=True,
                         save_figures=False, save_report=False)
    if status:
        raise RuntimeError(f"{model} failed on {folder}")
    return out


def score_set(folder: Path, segmented: Path) -> dict:
    """Per volume: metrics against the truth and against the stain's masks (when there are)."""
    import nibabel as nib

    out = {}
    for image in sorted((folder / "images").glob("*.nii.gz")):
        stem = image.name[:-7]
        pred = np.asarray(nib.load(segmented / f"{stem}_nucleus.nii.gz").dataobj) > 0
        prob_path = segmented / f"{stem}_prob.nii.gz"
        prob = np.asarray(nib.load(prob_path).dataobj, np.float32) if prob_path.is_file() else None
        scores = {"truth": volume_metrics(pred, np.asarray(nib.load(folder / "labels" / image.name).dataobj) > 0, prob)}
        fl = folder / "fl" / "labels" / image.name
        if fl.is_file():
            stain = np.asarray(nib.load(fl).dataobj) > 0
            scores["fluorescence"] = volume_metrics(pred, stain, prob)
            scores["stain_vs_truth"] = volume_metrics(stain, np.asarray(nib.load(folder / "labels" / image.name).dataobj) > 0, None)
        out[image.name] = scores
    return out


def part_cross_lab(work: Path) -> None:
    """The edge-based method on the leave-one-style-out test fields (the networks' rows are
    ``scripts/generalisation.py``'s)."""
    for style in styles():
        target = RESULTS / "cross-lab" / EDGE / f"{style}.json"
        if target.is_file():
            continue
        folder = generalisation.test_set(style, work.parent / "generalisation", 6, 9300)
        scores = score_set(folder, segment_set(folder, EDGE, None, work))
        save(target, {"volumes": scores})
        print(f"cross-lab {EDGE} {style}: Dice {mean_sd(v['truth']['dice'] for v in scores.values())[0]:.3f}", flush=True)


def train_on(work: Path, labels: str, datalist: dict) -> Path:
    run_dir = work / "cross-modality" / f"osnet-{labels}-masks-{generalisation.budget_name(**FL_BUDGET)}"
    if not (run_dir / "trained").is_file():
        t0 = time.perf_counter()
        generalisation.train(run_dir, datalist, overrides=OURS_MEDIUM, **FL_BUDGET)
        (run_dir / "trained").write_text(f"{time.perf_counter() - t0:.0f} s\n")
    return run_dir / "model.pt"


def slug(model: str) -> str:
    """A model's name as a folder name ("OS-Net, truth masks" -> "OS-Net-truth-masks")."""
    return model.replace(", ", "-").replace(" ", "-")


def part_cross_modality(work: Path, train_models: bool) -> None:
    models: dict[str, Path | None] = {EDGE: None, f"shipped-v{generalisation.shipped_version()}": SHIPPED_MODEL}
    if train_models:
        lists = fl_training_lists(work)
        for labels in ("truth", "fluorescence"):
            models[f"OS-Net, {labels} masks"] = train_on(work, labels, lists[labels])
    for model, checkpoint in models.items():
        for style in styles():
            target = RESULTS / "cross-modality" / slug(model) / f"{style}.json"
            if target.is_file():
                continue
            folder = xmod_set(style, work)
            save(target, {"model": model, "volumes": score_set(folder, segment_set(folder, slug(model), checkpoint, work))})
            print(f"cross-modality {model} {style} done", flush=True)


#: Table 1's recipe, held fixed over its rows: "ours-medium" (train.json's defaults) or "paper"
RECIPES = {"ours-medium": OURS_MEDIUM, "paper": PAPER}


def table1_dir(recipe: str, minutes: float) -> str:
    return f"table1-{recipe}-m{minutes:g}"


def table1_runs(rows, folds, minutes: float, work: Path, peers: bool, recipe: str = "ours-medium") -> None:
    from osnet_monai.evaluation import run_fold
    from osnet_monai.networks import TABLE1_EXPERIMENTS
    from osnet_monai.phantoms import ensure_default_dataset

    data = ensure_default_dataset(REPO / "bundle" / "cache" / "default_dataset").parent
    overrides = {**RECIPES[recipe], "dataset_dir": str(data), "batch_size": 8, "roi_size": [160, 160], "num_workers": 0,
                 "train#trainer#max_epochs": 1000}
    # in the order asked for, so the rows that matter most finish first
    table = {name: (name, network, augment) for name, network, augment in TABLE1_EXPERIMENTS}
    if peers:
        table = {name: (name, definition, True) for name, definition in PEERS.items()}
    jobs = [table[name] for name in rows if name in table]
    for name, network, augment in jobs:
        for fold in folds:
            target = RESULTS / table1_dir(recipe, minutes) / name.replace(" ", "").replace("+", "_") / f"fold{fold}.json"
            if target.is_file():
                continue
            run_dir = work / table1_dir(recipe, minutes) / name.replace(" ", "").replace("+", "_") / f"fold{fold}"
            if run_dir.exists():
                # an interrupted run starts over: resumed, it would plan a fresh budget from its resume point
                import shutil

                shutil.rmtree(run_dir)
            t0 = time.perf_counter()
            metrics = run_fold(network, augment, fold, run_dir, overrides, minutes=minutes)
            save(target, {"row": name, "fold": fold, "minutes": minutes, "recipe": recipe, "metrics": metrics,
                          "wall_seconds": time.perf_counter() - t0})
            print(f"table1 {name} fold {fold}: " + ", ".join(f"{k}={v:.4f}" for k, v in metrics.items()), flush=True)


def part_costs(threads: int) -> dict:
    """Parameters, FLOPs per 448 x 448 section and forward sections/s (``threads`` threads, batch 4)."""
    import torch
    from monai.bundle import ConfigParser

    from osnet_monai.benchmarking import best_time, flops_per_section
    from osnet_monai.networks import TABLE1_EXPERIMENTS, count_parameters, table1_model

    target = RESULTS / "costs.json"
    if target.is_file():
        return json.loads(target.read_text())
    torch.set_num_threads(threads)
    networks = {name: table1_model(network) for name, network, augment in TABLE1_EXPERIMENTS if not augment or name == "OS-Net"}
    networks.update({name: ConfigParser({"net": definition}).get_parsed_content("net") for name, definition in PEERS.items()})
    costs = {}
    for name, net in networks.items():
        net.eval()
        x = torch.zeros(4, 1, 448, 448)
        with torch.inference_mode():
            seconds = best_time(lambda: net(x), 3)
        costs[name] = {"parameters": count_parameters(net), "gflops_448": flops_per_section(448, net) / 1e9,
                       "sections_per_s": 4 / seconds}
        print(f"costs {name}: {costs[name]}", flush=True)
    save(target, {"threads": threads, "networks": costs})
    return json.loads(target.read_text())


# ----------------------------------------------------------------------------------------- report

def load_dir(folder: Path) -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))} if folder.is_dir() else {}


def cross_modality_rows() -> list[str]:
    lines = ["| model | reference | DICE | Jaccard | F0.5 | PR (AUC) | styles |", "|---|---|---:|---:|---:|---:|---:|"]
    root = RESULTS / "cross-modality"
    for folder in sorted(p for p in root.glob("*") if p.is_dir()) if root.is_dir() else []:
        per_style = load_dir(folder)
        if not per_style:
            continue
        name = next(iter(per_style.values()))["model"]
        for reference in ("fluorescence", "truth"):
            vols = [v[reference] for r in per_style.values() for v in r["volumes"].values() if reference in v]
            cells = [fmt(v[k] for v in vols) for k in ("dice", "jaccard", "f05", "pr_auc")]
            lines.append(f"| {name} | {'stain masks' if reference == 'fluorescence' else 'truth'} | " + " | ".join(cells)
                         + f" | {len(per_style)} |")
    return lines


def stain_agreement() -> str:
    root = RESULTS / "cross-modality"
    for folder in sorted(root.glob("*")) if root.is_dir() else []:
        vols = [v["stain_vs_truth"] for r in load_dir(folder).values() for v in r["volumes"].values() if "stain_vs_truth" in v]
        if vols:
            per = {}
            for r in load_dir(folder).values():
                for name, v in r["volumes"].items():
                    per.setdefault(name.split("-")[0], []).append(v["stain_vs_truth"]["dice"])
            styles_text = ", ".join(f"{k} {statistics.mean(v):.3f}" for k, v in per.items())
            return (f"The stain's masks themselves agree with the truth at Dice {fmt(v['dice'] for v in vols)} "
                    f"over {len(vols)} fields ({styles_text}): the ceiling a stain-derived reference puts on any model.")
    return ""


def cross_lab_rows() -> list[str]:
    lines = ["| model | " + " | ".join(styles()) + " | mean | worst |", "|---|" + "---:|" * (len(styles()) + 2)]
    edge = load_dir(RESULTS / "cross-lab" / EDGE)
    rows = {}
    if edge:
        rows[EDGE] = {s: mean_sd(v["truth"]["dice"] for v in r["volumes"].values())[0] for s, r in edge.items()}
    for key, per_style in generalisation.collect(REPO / "docs" / "generalisation").items():
        rows[key] = {s: r["summary"]["dice_mean"] for s, r in per_style.items()}
    for key, per_style in rows.items():
        cells = [f"{per_style[s]:.3f}" if s in per_style else "-" for s in styles()]
        complete = len(per_style) == len(styles())
        values = list(per_style.values())
        lines.append(f"| {key} | " + " | ".join(cells) + (f" | {statistics.mean(values):.3f} | {min(values):.3f} |" if complete else " | - | - |"))
    return lines


def table1_rows(minutes: float, recipe: str = "ours-medium") -> tuple[list[str], list[str]]:
    from osnet_monai.networks import TABLE1_EXPERIMENTS

    root = RESULTS / table1_dir(recipe, minutes)
    lines = ["| model | DICE | Jaccard | F0.5 | PR (AUC) | folds | paper DICE | paper F0.5 / 1.2 |", "|---|" + "---:|" * 7]
    notes = []
    names = [r[0] for r in TABLE1_EXPERIMENTS] + list(PEERS)
    dices = {}
    for name in names:
        folds = load_dir(root / name.replace(" ", "").replace("+", "_"))
        paper = PAPER_TABLE1.get(name)
        paper_cells = f" | {paper[0]:.4f} | {paper[2] / 1.2:.4f} |" if paper else " | - | - |"
        if not folds:
            lines.append(f"| {name} | not run yet | | | | 0/4" + paper_cells)
            continue
        metrics = [f["metrics"] for f in folds.values()]
        if len(folds) == 4:  # only complete rows are ranked
            dices[name] = [m["val_mean_dice"] for m in metrics]
        cells = [fmt(m[k] for m in metrics) for k in ("val_mean_dice", "val_jaccard", "val_f05", "val_pr_auc")]
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {len(folds)}/4" + paper_cells)
    ranked = sorted(dices, key=lambda n: -statistics.mean(dices[n]))
    for a, b in zip(ranked, ranked[1:]):
        gap = statistics.mean(dices[a]) - statistics.mean(dices[b])
        sd = max(mean_sd(dices[a])[1], mean_sd(dices[b])[1])
        verdict = "ranked" if gap > sd else "not ranked: the gap is within the fold SD"
        notes.append(f"- {a} over {b}: Dice gap {gap:.4f}, larger fold SD {sd:.4f}, {verdict}.")
    return lines, notes


def costs_rows() -> list[str]:
    target = RESULTS / "costs.json"
    if not target.is_file():
        return ["(not measured yet: `--parts costs`)"]
    data = json.loads(target.read_text())
    lines = [f"Measured on this project's 2-core CPU, {data['threads']} thread(s), batch 4, eager fp32 forward.", "",
             "| network | parameters | GFLOPs per 448 x 448 section | CPU sections/s |", "|---|---:|---:|---:|"]
    for name, c in data["networks"].items():
        lines.append(f"| {name} | {c['parameters']:,} | {c['gflops_448']:.1f} | {c['sections_per_s']:.2f} |")
    return lines


def paper_recipe_at_budget(minutes: float) -> list[str]:
    """What the paper's own recipe reached at the same budget (the runs made with it)."""
    runs = [json.loads(p.read_text()) for p in sorted((RESULTS / table1_dir("paper", minutes)).rglob("fold*.json"))]
    if not runs:
        return []
    cells = "; ".join(f"{r['row']} fold {r['fold']}: Dice {r['metrics']['val_mean_dice']:.3f}, PR-AUC "
                      f"{r['metrics']['val_pr_auc']:.3f}" for r in runs)
    return [f"With the paper's own recipe (BCE alone, Adam beta1 0.5, constant learning rate) the same budget "
            f"gives {cells}: the probabilities rank nuclei above background but stay under the 0.5 threshold, "
            "so every threshold metric is near zero and the rows cannot be compared. The table therefore "
            "holds `train.json`'s defaults (Dice + BCE, warm-up and cosine decay, EMA; the paper's "
            "normalisation and augmentation, instrument augmentation with it in the *Aug* rows) fixed over "
            "all rows; `--recipe paper` runs the paper's.", ""]


def write_report(minutes: float, recipe: str = "ours-medium") -> None:
    t1, t1_notes = table1_rows(minutes, recipe)
    figures = [p.name for p in sorted(RESULTS.glob("*.png"))]
    lines = [
        "# The paper's validation on our data",
        "",
        "Generated by `python scripts/validation_report.py` (see its docstring); every number below comes",
        "from its cached runs in `docs/validation/`. Our data are the project's phantom styles, not the",
        "paper's cells: the paper's numbers stand beside ours for orientation, not as a target met or missed.",
        "",
        "The **edge-based method** is the paper's conventional baseline as its references describe it",
        "(3 x 3 Sobel gradient, MATLAB's automatic cut-off x 0.5, dilation, hole filling, Otsu's threshold",
        "inside the filled regions; `osnet_monai.networks.EdgeBased`, `osnet-monai segment --method",
        "edge-based`). The paper's Supplementary Text 3 is not in our copy; the steps follow its refs 30-31",
        "and its remark that the method marks nucleoli and dense organelles. It gives no probabilities, so",
        "no PR-AUC.",
        "",
        f"## Table 1 at an equal budget ({minutes:g} minutes of one CPU core per run, recipe {recipe})",
        "",
        *(paper_recipe_at_budget(minutes) if recipe != "paper" else []),
        "The paper's nine rows, grouped 4-fold cross-validation on the default",
        "data set, each run trained for the same wall-clock budget (`--minutes`; 160 x 160 crops, batch 8),",
        "its checkpoint chosen on the held-out fold's worst style, section metrics on the held-out fold;",
        "mean (SD) over folds. MONAI's BasicUNet and SegResNet go through the same `train.json` (only",
        "`network_def` changes). F0.5 is the correct F-beta (at most 1): the paper printed",
        "(1 + 0.5^2) P R / (0.5^2 P + R) x 1.2 (values above 1), so its column is divided by 1.2 here.",
        "",
        *t1,
        "",
        "Which differences the table can rank (complete rows; a gap larger than the larger fold SD):",
        "",
        *(t1_notes or ["- none yet: fewer than two rows have all four folds."]),
        "",
        "nnU-Net v2 (2D) is not in the table yet. It installs on this CPU (nnunetv2 2.8.1 beside torch",
        "2.13 CPU, in a venv of its own, 2026-12-03); what is missing is the run: the default data set",
        "converted to its raw format with the same four grouped folds, its 2D plan and preprocessing, and a",
        "trainer stopped by the same wall-clock budget (its own schedule is 1,000 epochs of 250 iterations,",
        "with `nnUNetTrainer_Xepochs` the only shorter variants it ships).",
        "",
        "### Cost of each network",
        "",
        *costs_rows(),
        "",
        "## Table 2, upper part: cross-modality (a simulated nuclear stain)",
        "",
        "Every style's fields rendered with a DAPI/Hoechst-like channel recorded in the TCF file",
        "(`osnet-monai phantoms --fluorescence`: widefield or confocal blur, shot and read noise,",
        "bleaching, a z-offset recorded as `OffsetZ`, an unrecorded lateral shift of up to 0.3 um), and",
        "masks taken from that channel as the paper did, by thresholding (`osnet-monai fl-labels`).",
        f"{XMOD_TEST['n']} test fields per style (seed {XMOD_TEST['seed']}); metrics per 3D volume, mean (SD) over",
        "volumes. *OS-Net, truth masks* and *OS-Net, stain masks* are the same network and recipe",
        f"(`train.json`'s defaults) trained for the same budget ({FL_BUDGET['epochs']} epochs, batch",
        f"{FL_BUDGET['batch_size']}, {FL_BUDGET['roi']} px crops) on the same {XMOD_TRAIN['n']} fields of all",
        "styles (seed", f"{XMOD_TRAIN['seed']}), once with true masks and once with the stain's masks: what a user who",
        "trains on their own stained cells gets. Read those two side by side: same fields, same budget, one",
        "run each; their gap is what training on the stain's masks instead of the truth costs.",
        "",
        *cross_modality_rows(),
        "",
        stain_agreement(),
        "",
        f"The paper: edge-based Dice {PAPER_CROSS_MODALITY[EDGE][0]}, OS-Net {PAPER_CROSS_MODALITY['OS-Net'][0]}",
        "(against DAPI masks, 122 sections of 20 cells).",
        "",
        "## Table 2, lower part: cross-laboratory (styles never seen)",
        "",
        "3D Dice per left-out style: each network row is `scripts/generalisation.py`'s (trained without",
        "that style, `docs/generalisation.md` has the budgets and the per-volume numbers), the shipped",
        "model's rows are the model a user gets; the edge-based method needs no training and is scored on",
        "the same fields.",
        "",
        *cross_lab_rows(),
        "",
        f"The paper: edge-based Dice {PAPER_CROSS_LAB[EDGE][0]}, OS-Net {PAPER_CROSS_LAB['OS-Net'][0]}.",
        "",
        "## Figures",
        "",
        *[f"![{name}](validation/{name})" for name in figures],
        "",
        "## Why our numbers differ from the paper's",
        "",
        "- **Table 1.** The paper trained 300 epochs with batch 32 on a V100 per fold; here every run gets",
        f"  {minutes:g} CPU-minutes, a few epochs. Absolute values are lower and the rows that converge",
        "  fastest (fewest FLOPs) are favoured: that is what an equal budget measures. Our folds are",
        "  fields of four rendering styles, so a fold's SD also holds the spread between styles.",
        "- **Cross-modality.** Our stain is simulated from the true nucleus, so stain and truth differ only",
        "  by optics, noise, sampling and registration, never by biology (unstained nuclei, cytoplasmic",
        "  DNA). The paper's DAPI masks came from 3D deconvolved widefield images of fixed cells.",
        "- **Cross-laboratory.** The paper's other laboratory had the same instrument model; our left-out",
        "  styles are different simulated instruments (other optics, reconstructions, textures), a harder",
        "  shift, and the networks are trained for minutes, not days.",
        "- **Edge-based.** It marks what is denser than its surroundings; where nuclei are less dense",
        "  than the cytoplasm (most of our styles, as in many real cell lines) it marks cytoplasm,",
        "  nucleoli and droplets instead, hence its low scores, as in the paper.",
        "",
    ]
    REPORT.write_text("\n".join(lines) + "\n")


# ---------------------------------------------------------------------------------------- figures

def pr_curve(prob: np.ndarray, reference: np.ndarray, points: int = 200) -> tuple[np.ndarray, np.ndarray]:
    """(recall, precision) at ``points`` thresholds spread over the scores' ranks (the curve whose
    area ``osnet_monai.metrics.compute_pr_auc`` gives; this only draws it)."""
    order = np.argsort(-prob, kind="stable")
    tp = np.cumsum(reference[order])
    ranks = np.unique(np.linspace(0, len(order) - 1, points * 10).astype(int))
    ranks = ranks[np.r_[prob[order][ranks[:-1]] != prob[order][ranks[1:]], True]]
    return tp[ranks] / max(tp[-1], 1), tp[ranks] / (ranks + 1)

def part_figures(work: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import nibabel as nib
    shipped = f"shipped-v{generalisation.shipped_version()}"
    # Fig. 2c: PR curves of every model with probabilities, on the cross-modality fields of all styles
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.4))
    for ax, reference in zip(axes, ("fluorescence", "truth")):
        for model_dir in sorted((work / "segmented").glob("*")):
            if model_dir.name == EDGE:
                continue
            probs, refs = [], []
            for style in styles():
                folder = work / "cross-modality" / f"{style}-s{XMOD_TEST['seed']}-n{XMOD_TEST['n']}"
                seg = model_dir / folder.name
                for image in sorted((folder / "images").glob("*.nii.gz")) if seg.is_dir() else []:
                    prob = seg / f"{image.name[:-7]}_prob.nii.gz"
                    if not prob.is_file():
                        continue
                    ref = folder / ("fl/labels" if reference == "fluorescence" else "labels") / image.name
                    probs.append(np.asarray(nib.load(prob).dataobj, np.float32)[::2, ::2].ravel())
                    refs.append((np.asarray(nib.load(ref).dataobj) > 0)[::2, ::2].ravel())
            if probs:
                recall, precision = pr_curve(np.concatenate(probs), np.concatenate(refs))
                ax.plot(recall, precision, label=model_dir.name)
        edge = [v[reference] for r in load_dir(RESULTS / "cross-modality" / EDGE).values() for v in r["volumes"].values()]
        if edge:
            ax.plot([statistics.mean(v["recall"] for v in edge)], [statistics.mean(v["precision"] for v in edge)], "c^",
                    label=f"{EDGE} (one operating point)")
        ax.set(xlabel="recall", ylabel="precision", xlim=(0, 1), ylim=(0, 1.02),
               title=f"against the {'stain masks' if reference == 'fluorescence' else 'truth'}")
        ax.legend(fontsize=8, loc="lower left")
    fig.suptitle("Precision-recall, cross-modality fields of every style (every 2nd pixel)")
    fig.tight_layout()
    RESULTS.mkdir(parents=True, exist_ok=True)
    fig.savefig(RESULTS / "pr_curves.png", dpi=110)
    plt.close(fig)

    # Fig. 3a/3c: contours on a section per style: truth (red), stain (green), OS-Net (yellow), edge-based (cyan)
    fig, axes = plt.subplots(1, len(styles()), figsize=(4.2 * len(styles()), 4.4))
    for ax, style in zip(axes, styles()):
        folder = work / "cross-modality" / f"{style}-s{XMOD_TEST['seed']}-n{XMOD_TEST['n']}"
        image = sorted((folder / "images").glob("*.nii.gz"))[0]
        stem = image.name[:-7]
        truth = np.asarray(nib.load(folder / "labels" / image.name).dataobj) > 0
        z = int(np.argmax(truth.sum(axis=(0, 1))))
        from osnet_monai.readers import load_tomogram

        ri, _ = load_tomogram(image)
        ax.imshow(ri[:, :, z].T, cmap="gray", origin="lower")
        layers = [(truth, "red", "truth"), (np.asarray(nib.load(folder / "fl/labels" / image.name).dataobj) > 0, "lime", "stain"),
                  (np.asarray(nib.load(work / "segmented" / shipped / folder.name / f"{stem}_nucleus.nii.gz").dataobj) > 0, "yellow", shipped),
                  (np.asarray(nib.load(work / "segmented" / EDGE / folder.name / f"{stem}_nucleus.nii.gz").dataobj) > 0, "cyan", EDGE)]
        for mask, colour, _ in layers:
            if mask[:, :, z].any():
                ax.contour(mask[:, :, z].T.astype(float), levels=[0.5], colors=colour, linewidths=1.0, origin="lower")
        ax.set_title(f"{style}: {stem}, z = {z}")
        ax.axis("off")
    handles = [plt.Line2D([], [], color=c, label=n) for _, c, n in layers]
    fig.legend(handles=handles, loc="lower center", ncol=4)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    fig.savefig(RESULTS / "contours.png", dpi=90)
    plt.close(fig)

    # Fig. 3b: 3D renderings of the nuclear volumes, truth and shipped model, one field per style
    from mpl_toolkits.mplot3d.art3d import Poly3DCollection
    from skimage.measure import marching_cubes

    fig = plt.figure(figsize=(4 * len(styles()), 7.5))
    for col, style in enumerate(styles()):
        folder = work / "cross-modality" / f"{style}-s{XMOD_TEST['seed']}-n{XMOD_TEST['n']}"
        image = sorted((folder / "images").glob("*.nii.gz"))[0]
        spacing = nib.load(image).header.get_zooms()[:3]
        truth = np.asarray(nib.load(folder / "labels" / image.name).dataobj) > 0
        pred = np.asarray(nib.load(work / "segmented" / shipped / folder.name / f"{image.name[:-7]}_nucleus.nii.gz").dataobj) > 0
        for row, (mask, colour, title) in enumerate(((truth, "plum", "truth"), (pred, "gold", shipped))):
            ax = fig.add_subplot(2, len(styles()), row * len(styles()) + col + 1, projection="3d")
            if mask.any():
                verts, faces, _, _ = marching_cubes(np.pad(mask, 1).astype(np.float32), 0.5, spacing=spacing, step_size=2)
                ax.add_collection3d(Poly3DCollection(verts[faces], facecolor=colour, edgecolor="none", alpha=0.8))
            extent = np.array(mask.shape) * np.array(spacing)
            ax.set(xlim=(0, extent[0]), ylim=(0, extent[1]), zlim=(0, extent[2]), title=f"{style}, {title}")
            ax.set_box_aspect(extent)
            ax.tick_params(labelsize=6)
    fig.tight_layout()
    fig.savefig(RESULTS / "volumes_3d.png", dpi=80)
    plt.close(fig)

    # Fig. 4: nuclear volume and sphericity over a time-lapse with divisions, truth and shipped model
    part_timecourse(work)


def part_timecourse(work: Path) -> None:
    import csv

    import matplotlib.pyplot as plt

    from osnet_monai.inference.cli import segment
    from osnet_monai.phantoms import generate_dataset

    folder = work / "timelapse"
    if not (folder / "datalist.json").is_file():
        generate_dataset(folder, n=1, frames=8, seed=2026, preset="mitosis", validation_fraction=0.0)
    image = next((folder / "images").glob("*.nii.gz"))
    out = work / "segmented" / "timelapse"
    measurements = out / f"{image.name[:-7]}_measurements.csv"
    if not measurements.is_file() and segment([str(image)], out, ckpt_path=str(SHIPPED_MODEL), save_figures=False,
                                              save_report=False):
        raise RuntimeError("the time-lapse failed to segment")
    rows = list(csv.DictReader(open(measurements)))
    import nibabel as nib

    # the truth: every true track's nuclear volume per frame, from the series' instance labels
    instances = nib.load(folder / "instances" / f"{image.name[:-7]}_nucleus_instances.nii.gz")
    voxel = float(np.prod(instances.header.get_zooms()[:3]))
    step_min = float(instances.header.get_zooms()[3]) / 60
    ids = np.asarray(instances.dataobj)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for frame in range(ids.shape[3]):
        volumes = np.bincount(ids[..., frame].ravel().astype(np.int64)) * voxel
        for track in np.flatnonzero(volumes[1:]) + 1:
            axes[0].plot(frame * step_min, volumes[track], "_", color="0.4", ms=9, mew=1.5)
    axes[0].plot([], [], "_", color="0.4", ms=9, mew=1.5, label="truth (each true nucleus)")
    for track in sorted({r["nucleus_id"] for r in rows}, key=int):
        mine = [r for r in rows if r["nucleus_id"] == track]
        t = [float(r["time_s"]) / 60 for r in mine]
        line, = axes[0].plot(t, [float(r["volume_um3"]) for r in mine], "o-", ms=3, label=f"track {track}")
        axes[1].plot(t, [float(r["sphericity"]) for r in mine], "o-", ms=3, color=line.get_color())
        if mine[0]["parent_id"] not in ("", "0"):
            axes[0].plot(t[0], float(mine[0]["volume_um3"]), "k*", ms=10)
    axes[0].set(xlabel="time (min)", ylabel="nuclear volume (um^3)", title="volume per tracked nucleus (* a daughter's start)")
    axes[1].set(xlabel="time (min)", ylabel="sphericity", title="shape per tracked nucleus")
    fig.legend(*axes[0].get_legend_handles_labels(), fontsize=7, loc="center right")
    fig.suptitle(f"4D: the shipped model on a division series ({image.name[:-7]}, 8 frames)")
    fig.tight_layout(rect=(0, 0, 0.86, 1))
    fig.savefig(RESULTS / "timecourse.png", dpi=100)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", nargs="+", default=list(PARTS), choices=PARTS)
    parser.add_argument("--minutes", type=float, default=8.0, help="Table 1 budget per run, wall-clock minutes (default 8)")
    parser.add_argument("--rows", nargs="+", default=None, help="Table 1 / peer rows to run (default: all)")
    parser.add_argument("--recipe", choices=list(RECIPES), default="ours-medium", help="Table 1's recipe (default ours-medium)")
    parser.add_argument("--folds", nargs="+", type=int, default=[0, 1, 2, 3])
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--no-training", action="store_true", help="cross-modality: only the models that need no training")
    parser.add_argument("--work", type=Path, default=REPO / "runs" / "validation")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    from osnet_monai.networks import TABLE1_EXPERIMENTS

    if "costs" in args.parts:
        part_costs(args.threads)
    if "cross-lab" in args.parts:
        part_cross_lab(args.work)
    if "cross-modality" in args.parts:
        part_cross_modality(args.work, train_models=not args.no_training)
    if "table1" in args.parts:
        table1_runs(args.rows or [r[0] for r in TABLE1_EXPERIMENTS], args.folds, args.minutes, args.work, peers=False,
                    recipe=args.recipe)
    if "peers" in args.parts:
        table1_runs(args.rows or list(PEERS), args.folds, args.minutes, args.work, peers=True, recipe=args.recipe)
    if "figures" in args.parts:
        part_figures(args.work)
    write_report(args.minutes, args.recipe)
    print(f"wrote {REPORT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
