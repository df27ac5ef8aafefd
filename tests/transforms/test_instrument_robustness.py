"""Contrast-invariant normalisation, instrument augmentation, EMA and selection by the worst style."""

from __future__ import annotations

import importlib.util
import json
import sys

import numpy as np
import pytest
import torch

from osnet_monai.handlers import warmup_ema
from osnet_monai.metrics import WorstGroupDice, style_of
from osnet_monai.phantoms.styles import STYLES, get_style
from osnet_monai.transforms import NormalizeRId, RandCorrelatedNoised, RandFringesd, robust_contrast_scale

from helpers import REPO_ROOT


def _field(seed: int = 0, contrast: float = 0.03, medium: float = 1.337) -> np.ndarray:
    """A (1, X, Y, Z) RI volume: noisy medium with a textured cell and a dimmer nucleus."""
    rng = np.random.default_rng(seed)
    x, y, z = np.meshgrid(np.arange(64), np.arange(64), np.arange(16), indexing="ij")
    cell = ((x - 32) ** 2 + (y - 30) ** 2) / 24**2 + ((z - 6) / 5.0) ** 2 < 1
    nucleus = ((x - 32) ** 2 + (y - 30) ** 2) / 10**2 + ((z - 6) / 3.0) ** 2 < 1
    contrast_map = contrast * (cell * (1 + 0.2 * rng.standard_normal(cell.shape)) - 0.2 * nucleus)
    return (medium + contrast_map + 0.001 * rng.standard_normal(cell.shape))[None].astype(np.float32)


@pytest.mark.parametrize("gain, offset", [(0.4, 0.0), (2.5, 0.0), (1.0, 0.008), (1.7, -0.006)])
def test_robust_normalisation_ignores_contrast_scale_and_offset(gain, offset):
    norm = NormalizeRId("image", normalisation="robust")
    base = norm({"image": torch.as_tensor(_field())})["image"]
    # the same field seen by an instrument with other contrast (noise included) and another medium
    ri = _field()
    changed = (ri - 1.337) * gain + 1.337 + offset
    out = norm({"image": torch.as_tensor(changed)})["image"]
    inside = base.abs() > 0.5
    assert torch.allclose(out[inside], base[inside], atol=0.08), (out - base).abs().max()


def test_paper_normalisation_follows_the_absolute_contrast():
    norm = NormalizeRId("image", normalisation="medium", medium_ri_key="medium_ri")
    base = norm({"image": torch.as_tensor(_field()), "medium_ri": 1.337})["image"]
    doubled = norm({"image": torch.as_tensor((_field() - 1.337) * 2 + 1.337), "medium_ri": 1.337})["image"]
    assert doubled.abs().max() > 1.8 * base.abs().max()


def test_robust_scale_falls_back_on_a_field_without_cell():
    rng = np.random.default_rng(1)
    assert robust_contrast_scale(0.001 * rng.standard_normal(100_000), fallback=0.03) == 0.03


def test_robust_normalisation_standardises_each_frame_of_a_series():
    series = np.concatenate([_field(0), (_field(1) - 1.337) * 2.0 + 1.337], axis=0)  # (2, X, Y, Z)
    out = NormalizeRId("image", normalisation="robust")({"image": torch.as_tensor(series)})["image"]
    assert out.shape == series.shape
    med = [float(out[t][out[t] > 0.5].median()) for t in range(2)]
    assert abs(med[0] - med[1]) < 0.1


def test_unknown_normalisation_is_refused():
    with pytest.raises(ValueError, match="normalisation"):
        NormalizeRId("image", normalisation="zscore")


@pytest.mark.parametrize("transform_cls", [RandFringesd, RandCorrelatedNoised])
def test_instrument_augmentations_change_the_image_and_are_seeded(transform_cls):
    img = torch.zeros(1, 96, 80)
    a = transform_cls("image", prob=1.0)
    a.set_random_state(3)
    out1 = a({"image": img})["image"]
    a.set_random_state(3)
    out2 = a({"image": img.clone()})["image"]
    assert out1.shape == img.shape and torch.equal(out1, out2)
    assert out1.abs().max() > 0.01
    never = transform_cls("image", prob=0.0)
    assert torch.equal(never({"image": img})["image"], img)


def test_fringes_are_periodic_stripes():
    t = RandFringesd("image", prob=1.0, period_px=(10.0, 10.0), amplitude=(0.5, 0.5), tilt=0.0)
    t.set_random_state(0)
    out = t({"image": torch.zeros(1, 128, 128)})["image"][0]
    assert 0.45 < float(out.max()) <= 0.5 + 1e-5 and -0.5 - 1e-5 <= float(out.min()) < -0.45


def test_warmup_ema_follows_early_weights_then_averages():
    avg = warmup_ema(0.99)
    first = avg(torch.zeros(1), torch.ones(1), 0)  # decay (1 + 0) / 10 = 0.1
    assert float(first) == pytest.approx(0.9)
    late = avg(torch.zeros(1), torch.ones(1), 10_000)
    assert float(late) == pytest.approx(0.01)
    assert float(warmup_ema(0.0)(torch.zeros(1), torch.ones(1), 50)) == 1.0
    with pytest.raises(ValueError):
        warmup_ema(1.0)


def test_worst_group_dice_reports_the_worst_style():
    metric = WorstGroupDice()
    good = torch.ones(2, 1, 4, 4)
    half = torch.zeros(1, 1, 4, 4)
    half[..., :2, :] = 1
    metric.update((good, good, ["beam-3d-000", "beam-3d-001"]))
    metric.update((half, torch.ones(1, 1, 4, 4), ["organic-3d-000"]))
    metric.update((torch.ones(1, 1, 4, 4), torch.zeros(1, 1, 4, 4), ["spectral-3d-000"]))  # empty truth: left out
    assert metric.compute() == pytest.approx(2 / 3)
    assert metric.per_group == pytest.approx({"beam": 1.0, "organic": 2 / 3})
    assert style_of("classic-t3-001") == "classic"


def test_worst_group_dice_per_volume_pools_sections_and_counts_false_alarms():
    truth = torch.zeros(4, 1, 4, 4)
    truth[1:3] = 1  # the nucleus spans sections 1 and 2 of a 4-section volume
    pred = truth.clone()
    pred[3] = 1  # a false alarm above the nucleus: 32 true, 48 predicted voxels
    per_section, per_volume = WorstGroupDice(), WorstGroupDice(per_volume=True)
    for metric in (per_section, per_volume):
        for z in range(4):  # fed one section at a time, as the validation loader does
            metric.update((pred[z : z + 1], truth[z : z + 1], ["beam-3d-000"]))
        metric.update((truth, truth, ["classic-3d-000"] * 4))
        metric.update((pred, torch.zeros_like(pred), ["classic-3d-001"] * 4))  # no nucleus: left out
    assert per_section.compute() == pytest.approx(1.0)  # the false alarm's section has no truth
    assert per_volume.compute() == pytest.approx(2 * 32 / (32 + 48))
    assert per_volume.per_group == pytest.approx({"beam": 0.8, "classic": 1.0})


def test_group_metrics_logger_writes_every_group(caplog):
    from types import SimpleNamespace

    from osnet_monai.handlers import GroupMetricsLogger

    engine = SimpleNamespace(state=SimpleNamespace(epoch=3, metric_details={"worst": {"beam": 0.4, "classic": 0.8}}))
    with caplog.at_level("INFO", logger="StatsHandler"):
        GroupMetricsLogger("worst")(engine)
        GroupMetricsLogger("absent")(engine)
    assert caplog.messages == ["Epoch[3] worst by group -- beam: 0.4000 classic: 0.8000 mean: 0.6000"]


def test_every_style_is_listed_and_described(capsys):
    from osnet_monai.cli import main

    assert len(STYLES) >= 4
    for name in STYLES:
        assert get_style(name).DESCRIPTION
    assert main(["phantoms", "--list-styles"]) == 0
    listed = capsys.readouterr().out
    assert all(name in listed for name in STYLES)
    assert main(["phantoms", "--style", "nope", "--n", "1", "x"]) == 2


def _load_script(name: str):
    spec = importlib.util.spec_from_file_location(name, REPO_ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def test_leave_one_style_out_never_trains_or_selects_on_the_left_out_style(tmp_path):
    gen = _load_script("generalisation")
    datalist = {"training": [{"image": f"images/{s}-3d-000.nii.gz", "label": f"labels/{s}-3d-000.nii.gz",
                              "cell_id": f"{s}-3d-000"} for s in STYLES],
                "validation": [{"image": f"images/{s}-3d-001.nii.gz", "label": f"labels/{s}-3d-001.nii.gz",
                                "cell_id": f"{s}-3d-001"} for s in STYLES]}
    left = gen.leave_out(datalist, tmp_path, "beam")
    for part in ("training", "validation"):
        assert len(left[part]) == len(STYLES) - 1
        assert all(not e["cell_id"].startswith("beam") and e["image"].startswith(str(tmp_path)) for e in left[part])


def test_leave_one_style_out_report_names_the_worst_style(tmp_path):
    gen = _load_script("generalisation")
    key = "ours-" + gen.budget_name(epochs=2, batch_size=8, roi=160)
    (tmp_path / key).mkdir()
    for style, dice in (("beam", 0.5), ("organic", 0.8)):
        summary = {"dice_mean": dice, "dice_sd": 0.1, "precision_mean": 0.9, "recall_mean": dice, "empty_masks": 0, "n": 3}
        (tmp_path / key / f"{style}.json").write_text(json.dumps({"summary": summary, "volumes": {}, "train_seconds": 60}))
    report = tmp_path / "report.md"
    gen.write_report(gen.collect(tmp_path), 3, 9300, report)
    text = report.read_text()
    assert "worst **0.500** (beam)" in text and f"| {key} | 2 | 0.650 | 0.500 (beam) |" in text
