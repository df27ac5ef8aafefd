"""The Table 1 sweep script on tiny data: every row on every fold, one markdown table."""

from __future__ import annotations

import importlib.util
import json

import pytest

from helpers import REPO_ROOT


def load_script():
    spec = importlib.util.spec_from_file_location("cross_validate", REPO_ROOT / "scripts" / "cross_validate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_sweep_writes_table1(ellipsoid_dataset, tmp_path):
    script = load_script()
    out = tmp_path / "table.md"
    argv = [
        "--rows", "Unet16,OS-Net", "--folds", "0,1", "--epochs", "1", "--dataset-dir", str(ellipsoid_dataset),
        "--work-dir", str(tmp_path / "runs"), "--out", str(out),
        "--set", "batch_size=4", "--set", "roi_size=[64, 64]", "--set", "num_workers=0", "--set", "val_interval=1",
    ]
    assert script.main(argv) == 0
    text = out.read_text()
    assert "| Unet16 |" in text and "| OS-Net |" in text and "2,770,848" in text and "2,159,648" in text
    for row in ("Unet16", "OS-Net"):
        line = next(line for line in text.splitlines() if line.startswith(f"| {row} |"))
        cells = [c.strip() for c in line.strip("|").split("|")]
        means = [float(c.split()[0]) for c in cells[1:5]]
        assert all(0.0 <= m <= 1.0 for m in means)
        assert cells[-1] == "2"
    # a finished run is not trained again: its recorded metrics are read back
    for fold in (0, 1):
        metrics = tmp_path / "runs" / "OS-Net" / f"fold{fold}" / "metrics.json"
        assert json.loads(metrics.read_text()).keys() == {"val_mean_dice", "val_jaccard", "val_f05", "val_pr_auc"}
        metrics.write_text(json.dumps({k: 0.5 for k in json.loads(metrics.read_text())}))
    assert script.main(argv) == 0
    assert "| OS-Net | 0.5000 (0.0000) |" in out.read_text()
    # asking for one row keeps the rows finished earlier in the same work folder in the table
    assert script.main(["--rows", "Unet16", *argv[2:]]) == 0
    text = out.read_text()
    assert "| OS-Net | 0.5000 (0.0000) |" in text and "| Unet16 |" in text and "| Unet64 |" not in text


def test_table_formats_mean_and_sd():
    script = load_script()
    results = {"OS-Net": [dict.fromkeys(script.METRICS, 0.8), dict.fromkeys(script.METRICS, 0.9)]}
    text = script.table(results, {"OS-Net": 2_770_848})
    assert "| OS-Net | 0.8500 (0.0707) |" in text and "| 2,770,848 | 2 |" in text
