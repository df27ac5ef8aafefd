"""The volume scoring of osnet_monai.evaluation (the command: scripts/evaluate_volumes.py): 3D Dice and
false alarms in nucleus-free sections."""

from __future__ import annotations

import importlib.util
import json

import nibabel as nib
import numpy as np
import pytest

from helpers import REPO_ROOT


def load_script():
    spec = importlib.util.spec_from_file_location("evaluate_volumes", REPO_ROOT / "scripts" / "evaluate_volumes.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("frames", [None, 3])
def test_false_alarms_count_nucleus_free_sections_marked(frames):
    script = load_script()
    shape = (8, 6, 10) if frames is None else (8, 6, 10, frames)
    truth = np.zeros(shape, bool)
    truth[2:5, 2:4, 3:6] = True  # nucleus in sections 3, 4, 5 of every frame
    pred = truth.copy()
    pred[0, 0, 8] = True  # one false alarm in a nucleus-free section
    pred[1, 1, 4] = True  # extra pixels in a nucleus section are no false alarm
    n_frames = 1 if frames is None else frames
    alarms, empty = script.false_alarm_sections(pred, truth)
    assert empty == 7 * n_frames
    assert alarms == n_frames


def test_dice_of_disjoint_equal_and_empty_masks():
    script = load_script()
    a = np.zeros((4, 4, 4), bool)
    b = a.copy()
    assert script.dice(a, b) == 1.0  # both empty: nothing missed
    a[0, 0, 0], b[1, 1, 1] = True, True
    assert script.dice(a, b) == 0.0
    b[0, 0, 0] = True
    assert script.dice(a, b) == pytest.approx(2 / 3)


@pytest.mark.parametrize("stored", ["uint16", "float32"])
def test_contrast_scaled_copy_multiplies_the_contrast_around_the_medium(tmp_path, stored):
    medium = 1.337
    ri = medium + np.linspace(-0.01, 0.03, 4 * 5 * 3, dtype=np.float32).reshape(4, 5, 3)
    data = np.round(ri * 10000).astype(np.uint16) if stored == "uint16" else ri
    affine = np.diag([0.2, 0.2, 0.5, 1.0])
    for folder in ("images", "labels"):
        (tmp_path / "in" / folder).mkdir(parents=True)
    nib.save(nib.Nifti1Image(data, affine), tmp_path / "in" / "images" / "a.nii.gz")
    nib.save(nib.Nifti1Image((ri > medium + 0.01).astype(np.uint8), affine), tmp_path / "in" / "labels" / "a.nii.gz")
    entry = {"image": "images/a.nii.gz", "label": "labels/a.nii.gz", "cell_id": "a", "medium_ri": medium}
    (tmp_path / "in" / "datalist.json").write_text(json.dumps({"training": [entry], "validation": []}))
    out = load_script().contrast_scaled(tmp_path / "in", 1.6, tmp_path / "out")
    scaled = nib.load(out / "images" / "a.nii.gz")
    np.testing.assert_allclose(scaled.get_fdata(), medium + 1.6 * (ri - medium), atol=2e-4)
    np.testing.assert_allclose(scaled.affine, affine)
    assert (out / "labels" / "a.nii.gz").is_file() and (out / "datalist.json").is_file()


def test_script_is_the_command_over_the_package_scoring():
    """The scoring lives in osnet_monai.evaluation; the script re-exports it for scripts that import it
    from there (scripts/generalisation.py: score_volumes, summary, contrast_scaled)."""
    from osnet_monai import evaluation

    script = load_script()
    for name in ("score_volumes", "summary", "contrast_scaled", "dice", "precision_recall", "false_alarm_sections"):
        assert getattr(script, name) is getattr(evaluation, name)
    assert evaluation.precision_recall(np.zeros(4, bool), np.ones(4, bool)) == (1.0, 0.0)
    assert all(type(v) is float for v in evaluation.precision_recall(np.zeros(4, bool), np.ones(4, bool)))


def test_axial_false_voxels_count_per_frame():
    """A false voxel in a nucleus's column counts as axial only in the frame that has the nucleus."""
    from osnet_monai.evaluation import axial_false_voxels

    truth = np.zeros((4, 4, 6, 2), bool)
    truth[1, 1, 2:4, 0] = True  # the nucleus is in frame 0 only
    pred = truth.copy()
    pred[1, 1, 5, 0] = True  # above it: axial
    pred[1, 1, 5, 1] = True  # the same column in frame 1, which has no nucleus: beside
    pred[3, 3, 2, 0] = True  # another column: beside
    assert axial_false_voxels(pred, truth) == (1, 3)
    assert axial_false_voxels(truth, truth) == (0, 0)
