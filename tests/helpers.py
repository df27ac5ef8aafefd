"""Helpers the tests import (``from helpers import ...``): a plain module, because every folder's
conftest.py is a module named ``conftest`` and the last one imported would shadow this one."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
BUNDLE_CONFIGS = REPO_ROOT / "bundle" / "configs"


def write_ellipsoid_dataset(out: Path, n: int = 6, frames_first: int = 2, seed: int = 0) -> Path:
    """Cells with a lower-RI nucleus as NIfTI (X, Y, Z[, T]) with a datalist; small enough for seconds-long training."""
    rng = np.random.default_rng(seed)
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "labels").mkdir(parents=True, exist_ok=True)
    items = []
    shape = (96, 80, 10)
    x, y, z = np.meshgrid(*[np.arange(s) for s in shape], indexing="ij")
    for i in range(n):
        cx, cy = rng.uniform(30, 55, 2)
        cell = ((x - cx) / 30) ** 2 + ((y - cy) / 25) ** 2 + ((z - 5) / 4) ** 2 < 1
        nucleus = ((x - cx) / 12) ** 2 + ((y - cy) / 10) ** 2 + ((z - 5) / 2.5) ** 2 < 1
        ri = 1.337 + 0.03 * cell - 0.005 * nucleus + rng.normal(0, 0.002, shape)
        frames = frames_first if i == 0 else 1
        if frames > 1:
            ri, nucleus = np.stack([ri] * frames, -1), np.stack([nucleus] * frames, -1)
        affine = np.diag([0.196, 0.196, 0.195, 1.0])
        image = nib.Nifti1Image(ri.astype(np.float32), affine)
        image.header["descrip"] = b"medium_ri=1.3370"
        nib.save(image, out / "images" / f"cell{i}.nii.gz")
        nib.save(nib.Nifti1Image(nucleus.astype(np.uint8), affine), out / "labels" / f"cell{i}.nii.gz")
        items.append({"image": f"images/cell{i}.nii.gz", "label": f"labels/cell{i}.nii.gz", "cell_id": f"cell{i}"})
    split = max(1, n // 3)
    (out / "datalist.json").write_text(json.dumps({"training": items[:-split], "validation": items[-split:]}))
    return out
