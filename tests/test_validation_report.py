"""scripts/validation_report.py: its metrics, its report from cached runs, and equal-budget training."""

from __future__ import annotations

import importlib.util
import sys

import numpy as np
import pytest

from helpers import REPO_ROOT


@pytest.fixture(scope="module")
def script():
    sys.path.insert(0, str(REPO_ROOT / "scripts"))
    spec = importlib.util.spec_from_file_location("validation_report", REPO_ROOT / "scripts" / "validation_report.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_volume_metrics_match_their_definitions(script):
    truth = np.zeros((10, 10, 4), bool)
    truth[:4] = True  # 160 voxels
    pred = np.zeros_like(truth)
    pred[2:8] = True  # 240 voxels, 80 shared
    m = script.volume_metrics(pred, truth, None)
    precision, recall = 80 / 240, 80 / 160
    assert m["dice"] == pytest.approx(2 * 80 / 400)
    assert m["jaccard"] == pytest.approx(80 / 320)
    assert m["f05"] == pytest.approx(1.25 * precision * recall / (0.25 * precision + recall))
    assert m["f05"] <= 1.0 and np.isnan(m["pr_auc"])
    assert script.volume_metrics(pred, truth, truth.astype(np.float32))["pr_auc"] == pytest.approx(1.0)


def test_pr_curve_ends_at_full_recall_with_the_base_rate(script):
    rng = np.random.default_rng(0)
    reference = rng.random(5000) < 0.2
    prob = np.clip(reference * 0.3 + rng.random(5000) * 0.7, 0, 1)
    recall, precision = script.pr_curve(prob, reference)
    assert recall[-1] == pytest.approx(1.0) and precision[-1] == pytest.approx(reference.mean())
    assert np.all(np.diff(recall) >= 0)


def test_table1_report_ranks_only_gaps_larger_than_the_fold_sd(script, tmp_path, monkeypatch):
    monkeypatch.setattr(script, "RESULTS", tmp_path / "validation")
    monkeypatch.setattr(script, "REPORT", tmp_path / "report.md")
    dices = {"OS-Net": [0.80, 0.82, 0.81, 0.79], "Unet16": [0.70, 0.72, 0.71, 0.69], "Unet64": [0.69, 0.73, 0.65, 0.74]}
    for row, values in dices.items():
        for fold, dice in enumerate(values):
            metrics = {"val_mean_dice": dice, "val_jaccard": dice / 2, "val_f05": dice, "val_pr_auc": 0.9}
            script.save(tmp_path / "validation" / "table1-ours-medium-m8" / row / f"fold{fold}.json", {"metrics": metrics})
    script.write_report(8.0)
    text = (tmp_path / "report.md").read_text()
    assert "| OS-Net | 0.8050 (0.0129) |" in text and "| 4/4 | 0.9131 | 0.9180 |" in text
    assert "| FusionNet v2 | not run yet |" in text
    assert "- OS-Net over Unet16: Dice gap 0.1000, larger fold SD 0.0129, ranked." in text
    assert "- Unet16 over Unet64: Dice gap 0.0025, larger fold SD 0.0411, not ranked" in text


@pytest.mark.slow
def test_run_fold_trains_any_network_def_for_a_wall_clock_budget(ellipsoid_dataset, tmp_path):
    """A MONAI peer through train.json's network_def, stopped by the budget after its first epoch
    although max_epochs is 1000."""
    from osnet_monai.evaluation import SECTION_METRICS, run_fold
    from osnet_monai.recipes import PAPER

    peer = {"_target_": "monai.networks.nets.BasicUNet", "spatial_dims": 2, "in_channels": 1, "out_channels": 1,
            "features": [4, 4, 8, 8, 16, 4]}
    overrides = {**PAPER, "dataset_dir": str(ellipsoid_dataset), "batch_size": 4, "roi_size": [64, 64], "num_workers": 0,
                 "val_interval": 1, "train#trainer#max_epochs": 1000}
    metrics = run_fold(peer, False, 0, tmp_path / "run", overrides, minutes=1e-3)
    assert set(metrics) == set(SECTION_METRICS) and all(0.0 <= v <= 1.0 for v in metrics.values())
    import torch

    last = torch.load(tmp_path / "run" / "checkpoint_last.pt", weights_only=True, map_location="cpu")
    assert last["epoch"] == 1 and last["max_epochs"] == 1
