"""Calibration (ECE, threshold choice), the model card, and 2.5D context from training sections to the CLI."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

import nibabel as nib
import numpy as np
import pytest
import torch

from monai.bundle import ConfigParser
from monai.transforms import AsDiscreted

from osnet_monai.calibration import (
    choose_threshold,
    dice_curve,
    expected_calibration_error,
    reliability_curve,
    reliability_figure,
    subsample,
)
from osnet_monai.data import SectionDataset
from osnet_monai.data.sections import stack_neighbours
from osnet_monai.inference import ContextSliceInferer
from osnet_monai.model_card import inference_settings, model_card_path, read_model_card, write_model_card
from osnet_monai.networks import OSNet

from helpers import BUNDLE_CONFIGS, REPO_ROOT

SPACING = (0.15, 0.15, 0.3)


def test_ece_is_zero_when_calibrated_and_positive_when_overconfident(tmp_path):
    rng = np.random.default_rng(0)
    prob = rng.random(1_000_000)
    label = rng.random(prob.size) < prob  # the nucleus occurs exactly as often as predicted
    assert expected_calibration_error(prob, label) < 0.005
    overconfident = np.where(prob > 0.5, 0.99, 0.01)  # same ranking, extreme probabilities
    assert expected_calibration_error(overconfident, label) > 0.2
    centres, observed, counts = reliability_curve(prob, label, bins=10)
    assert centres.shape == observed.shape == counts.shape == (10,) and counts.sum() == prob.size
    np.testing.assert_allclose(observed, centres, atol=0.01)
    _, observed, counts = reliability_curve(overconfident, label, bins=10)
    assert np.isnan(observed[counts == 0]).all() and (counts > 0).sum() == 2
    reliability_figure(prob.reshape(100, 100, 100), label.reshape(100, 100, 100), tmp_path / "r.png")
    assert (tmp_path / "r.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_large_arrays_are_subsampled_deterministically():
    prob = np.linspace(0, 1, 5_000_000, dtype=np.float32).reshape(500, 100, 100)
    a, b = subsample(prob, prob > 0.5, max_voxels=1000), subsample(prob, prob > 0.5, max_voxels=1000)
    assert a[0].shape == (1000,) and np.array_equal(a[0], b[0]) and np.array_equal(a[1], a[0] > 0.5)
    assert subsample(prob[:2], prob[:2] > 0.5)[0].size == 20_000  # below the limit: every voxel


def test_choose_threshold_finds_the_known_threshold_and_ties_go_to_one_half():
    rng = np.random.default_rng(1)
    # probabilities at bin middles (0.005, 0.015, ...): exactly one candidate, 0.30, separates the truth
    probs = [(rng.integers(0, 100, (20, 20, 5)) + 0.5) / 100 for _ in range(3)]
    labels = [p > 0.3 for p in probs]
    threshold, dice = choose_threshold(probs, labels)
    assert threshold == pytest.approx(0.30) and dice == pytest.approx(1.0)
    assert dice_curve(probs[0], labels[0], [0.25, 0.3, 0.35])[1] == pytest.approx(1.0)
    # a probability of exactly 1 or 0 scores the same at every candidate: the tie goes to 0.5
    hard = [(rng.random((10, 10)) > 0.5).astype(float) for _ in range(2)]
    assert choose_threshold(hard, [h > 0 for h in hard]) == (pytest.approx(0.5), pytest.approx(1.0))


def test_model_card_round_trip_and_malformed_card(tmp_path):
    checkpoint = tmp_path / "model.pt"
    assert read_model_card(checkpoint) == {}
    path = write_model_card(checkpoint, threshold=np.float64(0.42), ece=0.01, in_channels=3, context=1,
                            normalisation="(RI - medium RI) / 0.03", note={"data": "phantoms"})
    assert path == model_card_path(checkpoint) == tmp_path / "model.json"
    write_model_card(checkpoint, threshold=0.4)  # updates one field, keeps the others
    assert read_model_card(checkpoint) == {"threshold": 0.4, "ece": 0.01, "in_channels": 3, "context": 1,
                                           "normalisation": "(RI - medium RI) / 0.03", "note": {"data": "phantoms"}}
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary left
    path.write_text("{not json")
    with pytest.raises(ValueError, match=f"{path}: malformed model card"):
        read_model_card(checkpoint)
    path.write_text(json.dumps({"threshold": "high"}))
    with pytest.raises(ValueError, match=f"{path}: malformed model card, 'threshold'"):
        read_model_card(checkpoint)
    path.write_text(json.dumps({"context": 1, "in_channels": 1}))
    with pytest.raises(ValueError, match="in_channels 1 does not fit context 1"):
        inference_settings(checkpoint)


def _parsed_threshold(cli_args: list[str]) -> float:
    """The threshold ``AsDiscreted`` gets from inference.json under the CLI's overrides."""
    from osnet_monai.inference.cli import _overrides, add_arguments

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    config = ConfigParser()
    config.read_config(str(BUNDLE_CONFIGS / "inference.json"))
    for key, value in _overrides(parser.parse_args(["in.nii.gz", "-o", "out", *cli_args])).items():
        config[key] = value
    (discrete,) = [t for t in config.get_parsed_content("postprocessing").transforms if isinstance(t, AsDiscreted)]
    return float(discrete.threshold[0])


def test_cli_threshold_from_card_override_or_default(tmp_path):
    checkpoint = tmp_path / "model.pt"
    checkpoint.write_bytes(b"")  # parsing the postprocessing does not load it
    assert _parsed_threshold(["--model", str(checkpoint)]) == 0.5
    write_model_card(checkpoint, threshold=0.35)
    assert _parsed_threshold(["--model", str(checkpoint)]) == 0.35
    assert _parsed_threshold(["--model", str(checkpoint), "--threshold", "0.7"]) == 0.7


def _volume_pair(frames: int = 2, z: int = 5) -> dict:
    image = torch.arange(frames * 4 * 3 * z, dtype=torch.float32).reshape(frames, 4, 3, z)
    return {"image": image, "label": torch.ones_like(image), "name": "v"}


def test_section_dataset_context_stacks_neighbours_of_the_same_frame():
    flat = SectionDataset([{}], volume_transform=lambda _: _volume_pair())
    deep = SectionDataset([{}], volume_transform=lambda _: _volume_pair(), context=1)
    assert len(flat) == len(deep) == 2 * 5
    volume = _volume_pair()["image"]
    for i in range(len(flat)):
        a, b = flat[i], deep[i]
        t, z = i // 5, i % 5
        assert a["image"].shape == (1, 4, 3) and b["image"].shape == (3, 4, 3) and b["label"].shape == (1, 4, 3)
        assert torch.equal(b["image"][1:2], a["image"]) and torch.equal(b["label"], a["label"])
        assert torch.equal(b["image"][0], volume[t, :, :, max(z - 1, 0)])  # edge sections repeat themselves
        assert torch.equal(b["image"][2], volume[t, :, :, min(z + 1, 4)])


def test_context_inferer_feeds_neighbour_stacks():
    volume = torch.randn(1, 1, 32, 32, 6)
    seen = []

    def below(x):  # returns the channel of section z - 1
        seen.append(x.shape[1])
        return x[:, :1]

    out = ContextSliceInferer(spatial_dim=2, roi_size=(32, 32), sw_batch_size=4, context=1)(volume, below)
    assert set(seen) == {3} and out.shape == volume.shape
    expected = torch.cat([volume[..., :1], volume[..., :-1]], dim=-1)
    torch.testing.assert_close(out, expected)
    torch.testing.assert_close(stack_neighbours(volume, 1)[:, 1:2], volume)
    plain = ContextSliceInferer(spatial_dim=2, roi_size=(32, 32), sw_batch_size=4)(volume, lambda x: x)
    torch.testing.assert_close(plain, volume)


@pytest.fixture(scope="module")
def context_model(tmp_path_factory):
    """An untrained 2.5D OS-Net (3 channels) whose card says context 1."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("context_model") / "model.pt"
    torch.save(OSNet(in_channels=3).state_dict(), path)
    write_model_card(path, context=1, in_channels=3, threshold=0.5)
    return path


@pytest.fixture(scope="module")
def small_phantom(tmp_path_factory):
    from osnet_monai.phantoms import PRESETS, render_field, write_nifti

    field = render_field(PRESETS["hx1"].replace(name="c", field_shape=(64, 64, 8)), seed=0)
    folder = tmp_path_factory.mktemp("context_in")
    return write_nifti(folder / "cell.nii.gz", field.image, SPACING, medium_ri=1.337), field.image.shape


@pytest.mark.slow
def test_context_model_segments_through_the_cli_with_tta(context_model, small_phantom, tmp_path):
    from osnet_monai.cli import main

    image, shape = small_phantom
    status = main(["segment", str(image), "-o", str(tmp_path), "--model", str(context_model), "--tta", "--save-prob"])
    assert status == 0
    assert nib.load(tmp_path / "cell_nucleus.nii.gz").shape == shape
    prob = np.asarray(nib.load(tmp_path / "cell_prob.nii.gz").dataobj)
    assert prob.shape == shape and 0 <= prob.min() and prob.max() <= 1


@pytest.mark.slow
def test_bundle_runner_reads_the_card(context_model, small_phantom, tmp_path):
    image, shape = small_phantom
    result = subprocess.run(
        [sys.executable, "-m", "monai.bundle", "run", "--config_file", "bundle/configs/inference.json",
         "--dataset_dir", str(image.parent), "--output_dir", str(tmp_path), "--ckpt_path", str(context_model),
         "--save_figures", "False", "--optimize_cpu_inference", "False"],  # the frozen graph is tested by the CLI run
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert nib.load(tmp_path / "cell_nucleus.nii.gz").shape == shape
