"""Scoring what a user gets: the whole inference pipeline against a data set's labels, volume by volume.

Complements ``bundle/configs/evaluate.json``, which scores x-y sections as the paper did: here
every volume goes through ``osnet-monai segment`` (segment, post-process, back on the input grid)
and is scored in 3D (a 4D file counts every frame), with false alarms counted as nucleus-free x-y
sections in which the pipeline still marks nucleus. Also: one Table 1 training run on one fold
(:func:`run_fold`), and a contrast-scaled copy of a data set (:func:`contrast_scaled`).

``scripts/evaluate_volumes.py`` is the command over :func:`score_volumes` and :func:`summary`;
``scripts/cross_validate.py`` and ``scripts/ablation.py`` run :func:`run_fold`.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import tempfile
from pathlib import Path

import numpy as np

__all__ = [
    "dice",
    "precision_recall",
    "false_alarm_sections",
    "axial_false_voxels",
    "score_volumes",
    "contrast_scaled",
    "summary",
    "run_fold",
    "fit_to_budget",
    "SECTION_METRICS",
]

#: the section metrics of ``evaluate.json`` that :func:`run_fold` returns
SECTION_METRICS = ("val_mean_dice", "val_jaccard", "val_f05", "val_pr_auc")


def dice(a: np.ndarray, b: np.ndarray) -> float:
    """Dice of two boolean masks; two empty masks score 1 (nothing missed).

    Examples:
        >>> a = np.zeros((4, 4, 4), bool); b = a.copy()
        >>> dice(a, b)
        1.0
        >>> a[0, 0, 0] = b[0, 0, 0] = b[1, 1, 1] = True
        >>> round(dice(a, b), 4)
        0.6667
    """
    total = a.sum() + b.sum()
    return float(2 * (a & b).sum() / total) if total else 1.0


def precision_recall(pred: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    """Voxel precision and recall; an empty prediction has precision 1, an empty truth recall 1.

    Examples:
        >>> truth = np.array([1, 1, 1, 1, 0, 0], bool)
        >>> precision_recall(np.array([1, 1, 0, 0, 0, 1], bool), truth)
        (0.6666666666666666, 0.5)
        >>> precision_recall(np.zeros(6, bool), truth)
        (1.0, 0.0)
    """
    tp = float((pred & truth).sum())
    n_pred, n_truth = int(pred.sum()), int(truth.sum())
    return (tp / n_pred if n_pred else 1.0), (tp / n_truth if n_truth else 1.0)


def false_alarm_sections(pred: np.ndarray, truth: np.ndarray) -> tuple[int, int]:
    """(nucleus-free x-y sections with predicted nucleus, nucleus-free sections); arrays X, Y, Z[, T].

    Examples:
        >>> truth = np.zeros((4, 4, 5), bool); truth[1, 1, 2] = True  # nucleus in section 2 only
        >>> pred = truth.copy(); pred[0, 0, 4] = True
        >>> false_alarm_sections(pred, truth)
        (1, 4)
    """
    sections_truth = truth.reshape(truth.shape[0] * truth.shape[1], -1).any(axis=0)
    sections_pred = pred.reshape(pred.shape[0] * pred.shape[1], -1).any(axis=0)
    return int((sections_pred & ~sections_truth).sum()), int((~sections_truth).sum())


def axial_false_voxels(pred: np.ndarray, truth: np.ndarray) -> tuple[int, int]:
    """(false voxels above or below a true nucleus, all false voxels); arrays X, Y, Z[, T].

    A false voxel is axial when its x-y column holds true nucleus in the same frame: the nucleus
    reaches too far along z, where the missing cone stretches the cell, rather than beside it.

    Examples:
        >>> truth = np.zeros((3, 3, 6), bool); truth[1, 1, 2:4] = True
        >>> pred = truth.copy(); pred[1, 1, 4:6] = True; pred[0, 0, 2] = True  # 2 above, 1 beside
        >>> axial_false_voxels(pred, truth)
        (2, 3)
    """
    false = pred & ~truth
    columns = np.expand_dims(truth.any(axis=2), 2)
    return int((false & columns).sum()), int(false.sum())


def score_volumes(
    dataset_dir: str | os.PathLike, model: str | os.PathLike | None = None, out: str | os.PathLike | None = None, **overrides
) -> dict[str, dict]:
    """Segments every image of ``dataset_dir`` and scores it: name -> Dice, precision, recall, false
    alarms, nucleus-free sections. ``model`` is a checkpoint (default: the bundle's); ``out`` keeps
    the segmentations (default: a temporary folder); ``overrides`` replace inference.json values
    (e.g. ``tta=True``)."""
    import nibabel as nib

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
            axial, false = axial_false_voxels(pred, truth)
            hit, missed = int((pred & truth).sum()), int((truth & ~pred).sum())
            scores[image.name] = {"dice": dice(pred, truth), "precision": precision, "recall": recall,
                                  "false_alarm_sections": alarms, "nucleus_free_sections": empty,
                                  "axial_false_share": axial / false if false else 0.0,
                                  # what a model that stopped the nucleus at its true z-ends would score
                                  "dice_without_axial": 2 * hit / max(2 * hit + false - axial + missed, 1)}
    return scores


def contrast_scaled(dataset_dir: str | os.PathLike, factor: float, out_dir: str | os.PathLike) -> Path:
    """A copy of a phantom data set with every tomogram's RI contrast to its medium multiplied by
    ``factor`` (float RI, same grid and labels): what another instrument's calibration or
    reconstruction does to the same cells. The medium is the datalist's ``medium_ri``."""
    import nibabel as nib

    from osnet_monai.readers import load_tomogram

    dataset_dir, out_dir = Path(dataset_dir), Path(out_dir)
    datalist = json.loads((dataset_dir / "datalist.json").read_text())
    (out_dir / "images").mkdir(parents=True, exist_ok=True)
    shutil.copytree(dataset_dir / "labels", out_dir / "labels", dirs_exist_ok=True)
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
    """Mean and SD of the Dice over volumes, mean precision and recall, empty masks (nothing marked
    where there is nucleus) and the share of nucleus-free sections marked; where the scores have
    them, the mean share of false voxels above or below a true nucleus and the mean Dice without them.

    Examples:
        >>> s = summary({"a": {"dice": 0.8, "precision": 0.9, "recall": 0.7, "false_alarm_sections": 1,
        ...                    "nucleus_free_sections": 10},
        ...              "b": {"dice": 0.6, "precision": 1.0, "recall": 0.0, "false_alarm_sections": 0,
        ...                    "nucleus_free_sections": 10}})
        >>> round(s["dice_mean"], 3), s["empty_masks"], s["false_alarm_rate"], s["n"]
        (0.7, 1, 0.05, 2)
    """
    values = [s["dice"] for s in scores.values()]
    empty = sum(s["nucleus_free_sections"] for s in scores.values())
    alarms = sum(s["false_alarm_sections"] for s in scores.values())
    axial = {}
    if all("axial_false_share" in s for s in scores.values()):
        axial = {"axial_false_share_mean": statistics.mean(s["axial_false_share"] for s in scores.values()),
                 "dice_without_axial_mean": statistics.mean(s["dice_without_axial"] for s in scores.values())}
    return {
        "dice_mean": statistics.mean(values),
        "dice_sd": statistics.stdev(values) if len(values) > 1 else 0.0,
        "precision_mean": statistics.mean(s.get("precision", float("nan")) for s in scores.values()),
        "recall_mean": statistics.mean(s.get("recall", float("nan")) for s in scores.values()),
        "empty_masks": sum(1 for s in scores.values() if s.get("precision") == 1.0 and s.get("recall", 1.0) == 0.0),
        "false_alarm_rate": alarms / empty if empty else 0.0,
        "n": len(values),
        **axial,
    }


def fit_to_budget(workflow, minutes: float) -> None:
    """Makes a ``train.json`` workflow stop after ``minutes`` of wall-clock training.

    After the first epoch, its duration sets how many epochs fit the budget, and the learning-rate
    schedule (``train#scheduler``, when it has ``t_total``) is stretched to end with them; the
    configured ``max_epochs`` is then replaced. A resumed run plans again from its own first epoch.
    Call after ``workflow.initialize()``, before ``workflow.run()``.
    """
    import time

    from ignite.engine import Events

    trainer = workflow.parser.get_parsed_content("train#trainer")
    start = time.perf_counter()
    planned: list[float] = []

    @trainer.on(Events.EPOCH_COMPLETED)
    def _plan_budget(engine):
        if planned:
            return
        planned.append(time.perf_counter() - start)
        engine.state.max_epochs = max(engine.state.epoch, int(60 * minutes // planned[0]))
        scheduler = workflow.parser.get_parsed_content("train#scheduler")
        if hasattr(scheduler, "t_total"):
            scheduler.t_total = engine.state.max_epochs * engine.state.epoch_length


def run_fold(
    network: str | dict, augment: bool, fold: int, run_dir: str | os.PathLike, overrides: dict,
    bundle: str | os.PathLike | None = None, minutes: float | None = None,
) -> dict[str, float]:
    """Trains one Table 1 row (``network``, a :func:`osnet_monai.networks.table1_model` name, or any
    ``network_def`` such as MONAI's BasicUNet) on one fold with the bundle's ``train.json``
    (resuming when interrupted) and scores its best checkpoint on the held-out fold with
    ``evaluate.json``: :data:`SECTION_METRICS` -> value. ``overrides`` replace config values by id;
    ``bundle`` as in :func:`osnet_monai.inference.cli.bundle_dir`; ``minutes`` trains for that
    wall-clock budget instead of a number of epochs (:func:`fit_to_budget`)."""
    from monai.bundle import ConfigWorkflow

    from osnet_monai.inference.cli import bundle_dir

    configs = bundle_dir(bundle) / "configs"
    run_dir = Path(run_dir)
    common = {
        "network_def": network if isinstance(network, dict) else {"_target_": "osnet_monai.networks.table1_model", "name": network},
        "fold": fold,
        "augment": augment,
        "ckpt_dir": str(run_dir),
        **overrides,
    }
    train = ConfigWorkflow(
        config_file=str(configs / "train.json"), workflow_type="train", logging_file=False,
        output_dir=str(run_dir / "logs"), **common,
    )
    train.initialize()
    if minutes:
        fit_to_budget(train, minutes)
    train.run()
    evaluate = ConfigWorkflow(
        config_file=[str(configs / "train.json"), str(configs / "evaluate.json")], workflow_type="train",
        logging_file=False, output_dir=str(run_dir / "eval"), **common,
    )
    evaluate.initialize()
    evaluate.run()
    metrics = evaluate.parser.get_parsed_content("validate#evaluator").state.metrics
    return {m: float(metrics[m]) for m in SECTION_METRICS}
