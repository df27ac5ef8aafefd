"""End-to-end tests of bundle/configs/inference.json through ``osnet-monai segment``, on phantom data."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import itk
import nibabel as nib
import numpy as np
import pytest
import tifffile
import torch

from osnet_monai.inference import FlipTTA, FrozenForInference, SkipEmptyWindows, StreamingNiftiWriter, TomogramStream, list_inputs
from osnet_monai.data import file_stem
from osnet_monai.inference.cli import segment
from osnet_monai.networks import OSNet
from osnet_monai.phantoms import PRESETS, render_field, write_nifti, write_tcf

from helpers import REPO_ROOT

SPACING = (0.15, 0.15, 0.3)
SMALL = PRESETS["hx1"].replace(name="test_small", field_shape=(96, 80, 24))




@pytest.fixture(scope="module")
def series():
    """A 3-frame phantom series (X, Y, Z, T) of float32 RI and its label."""
    field = render_field(SMALL, seed=1, frames=3)
    return field.image, field.label


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, series) -> dict[str, tuple[Path, tuple, np.ndarray]]:
    """The same phantom in every supported format: name -> (path, expected NIfTI-order shape, spacing)."""
    folder = tmp_path_factory.mktemp("inputs")
    image4d = series[0]
    volume = image4d[..., 0]
    made = {}
    made["nifti3d"] = (write_nifti(folder / "nifti3d.nii.gz", volume, SPACING, medium_ri=1.337), volume.shape)
    made["nifti4d"] = (write_nifti(folder / "nifti4d.nii.gz", image4d, SPACING, time_step_s=600.0), image4d.shape)
    nib.save(nib.Nifti1Image(volume, np.diag([*SPACING, 1.0])), folder / "plain.nii")
    made["plain"] = (folder / "plain.nii", volume.shape)
    itk_image = itk.image_from_array(np.ascontiguousarray(volume.transpose(2, 1, 0)))
    itk_image.SetSpacing([float(s) for s in SPACING])
    for suffix in ("nrrd", "mha"):
        itk.imwrite(itk_image, str(folder / f"itk_{suffix}.{suffix}"))  # one output name per input
        made[suffix] = (folder / f"itk_{suffix}.{suffix}", volume.shape)
    tifffile.imwrite(
        folder / "imagej.tif", volume.transpose(2, 1, 0), imagej=True,
        resolution=(1 / SPACING[0], 1 / SPACING[1]), metadata={"spacing": SPACING[2], "unit": "um", "axes": "ZYX"},
    )
    made["tiff"] = (folder / "imagej.tif", volume.shape)
    uint16 = np.round(volume * 10_000).astype(np.uint16)
    write_nifti(folder / "uint16_nometa.nii.gz", uint16, SPACING)
    made["uint16"] = (folder / "uint16_nometa.nii.gz", volume.shape)
    tcf_frames = [image4d[..., t].transpose(2, 1, 0) for t in range(image4d.shape[-1])]
    made["tcf4d"] = (write_tcf(folder / "series.TCF", tcf_frames, SPACING, time_interval_s=600.0), image4d.shape)
    section = volume[:, :, volume.shape[2] // 2]
    nib.save(nib.Nifti1Image(section, np.diag([*SPACING, 1.0])), folder / "section2d.nii.gz")
    made["section2d"] = (folder / "section2d.nii.gz", section.shape)
    return made


@pytest.fixture(scope="module")
def segmented(inputs, untrained_checkpoint, tmp_path_factory):
    out = tmp_path_factory.mktemp("segmented")
    status = segment([str(p) for p, _ in inputs.values()], out, ckpt_path=str(untrained_checkpoint), save_prob=True)
    return status, out


FORMATS = ["nifti3d", "nifti4d", "plain", "nrrd", "mha", "tiff", "uint16", "tcf4d", "section2d"]


@pytest.mark.slow
@pytest.mark.parametrize("name", FORMATS)
def test_every_format_segmented_on_its_own_grid(inputs, segmented, name):
    status, out = segmented
    assert status == 0
    path, shape = inputs[name]
    stem = Path(path).name.split(".")[0]
    mask = nib.load(out / f"{stem}_nucleus.nii.gz")
    assert mask.shape == shape
    assert mask.get_data_dtype() == np.uint16
    cells = nib.load(out / f"{stem}_cell.nii.gz")
    assert cells.shape == shape and np.allclose(cells.affine, mask.affine)
    # every nucleus lies in its own cell: the cell label under a nucleus is the nucleus's id
    nuclei, cell_ids = np.asarray(mask.dataobj), np.asarray(cells.dataobj)
    assert np.array_equal(cell_ids[nuclei > 0], nuclei[nuclei > 0])
    np.testing.assert_allclose(np.abs(np.diag(mask.affine))[:3], SPACING, rtol=1e-5)
    prob = nib.load(out / f"{stem}_prob.nii.gz").get_fdata()
    assert prob.shape == shape and 0.0 <= prob.min() and prob.max() <= 1.0
    assert (out / f"{stem}_measurements.csv").is_file() and (out / f"{stem}_overlay.png").is_file()
    assert (out / f"{stem}_timecourse.png").is_file() == (len(shape) == 4)
    assert (out / f"{stem}_tracks.csv").is_file() == (len(shape) == 4)
    assert (out / f"{stem}_quality.json").is_file()


@pytest.mark.slow
def test_nifti_output_keeps_the_input_affine_and_time_step(inputs, segmented):
    _, out = segmented
    source = nib.load(inputs["nifti4d"][0])
    mask = nib.load(out / "nifti4d_nucleus.nii.gz")
    np.testing.assert_allclose(mask.affine, source.affine)
    assert mask.header["pixdim"][4] == pytest.approx(600.0)
    assert mask.header.get_xyzt_units() == ("micron", "sec")


@pytest.mark.slow
def test_no_temporary_files_left(segmented):
    _, out = segmented
    assert not [p.name for p in out.iterdir() if p.name.startswith(".") or p.suffix == ".tmp"]


def test_mask_ids_follow_nuclei_and_measurements_per_frame(tmp_path, untrained_checkpoint, series):
    """A trained-like probability: feed the truth through the writer by thresholding the label itself."""
    image4d, label4d = series
    path = write_nifti(tmp_path / "truth_series.nii.gz", image4d, SPACING, time_step_s=60.0, medium_ri=1.337)
    stream = TomogramStream([path])
    from osnet_monai.inference import TomogramWriter

    writer = TomogramWriter(tmp_path / "out", save_figures=False)
    for item in stream:
        t = item["frame"]
        pred = torch.from_numpy(label4d[..., t][None].astype(np.float32))
        from monai.data import MetaTensor

        item["pred"] = MetaTensor(pred, affine=item["image"].affine)
        item["medium_ri"] = 1.337
        writer.write_frame(item)
    mask = np.asarray(nib.load(tmp_path / "out" / "truth_series_nucleus.nii.gz").dataobj)
    np.testing.assert_array_equal(mask > 0, label4d > 0)
    import csv

    rows = list(csv.DictReader(open(tmp_path / "out" / "truth_series_measurements.csv")))
    assert {int(r["frame"]) for r in rows} == {0, 1, 2}
    assert [float(r["time_s"]) for r in rows if r["frame"] == "1"][0] == pytest.approx(60.0)
    ids_first = {r["nucleus_id"] for r in rows if r["frame"] == "0"}
    ids_last = {r["nucleus_id"] for r in rows if r["frame"] == "2"}
    assert ids_first and ids_first == ids_last  # the same nuclei keep their ids
    voxel = np.prod(SPACING)
    frame0 = sum(float(r["volume_um3"]) for r in rows if r["frame"] == "0")
    assert frame0 == pytest.approx((label4d[..., 0] > 0).sum() * voxel, rel=1e-6)


BAD_INPUTS = {
    "corrupt.nii.gz": lambda p, v: p.write_bytes(b"\x1f\x8b\x08\x00garbage" * 20),
    "truncated.TCF": lambda p, v: p.write_bytes(write_tcf(p.with_suffix(".full"), [v.transpose(2, 1, 0)], SPACING).read_bytes()[:4000]),
    "five_d.nii.gz": lambda p, v: nib.save(nib.Nifti1Image(np.stack([v[..., None]] * 2, -1), np.eye(4)), p),
    "nan.nii.gz": lambda p, v: write_nifti(p, np.where(np.arange(v.size).reshape(v.shape) == 7, np.nan, v).astype(np.float32), SPACING),
    "camera8bit.nii.gz": lambda p, v: write_nifti(p, (np.arange(v.size).reshape(v.shape) % 256).astype(np.uint8), SPACING),
    "zeros.nii.gz": lambda p, v: write_nifti(p, np.zeros_like(v), SPACING),
    "huge_voxels.nii.gz": lambda p, v: write_nifti(p, v, (100.0, 100.0, 100.0)),
    "tiny_voxels.nii.gz": lambda p, v: write_nifti(p, v, (1e-5, 1e-5, 1e-5)),
    "no_voxel_size.tif": lambda p, v: tifffile.imwrite(p, v.transpose(2, 1, 0), photometric="minisblack"),
    "empty.tif": lambda p, v: p.write_bytes(b""),
}


@pytest.mark.slow
def test_bad_inputs_reported_and_others_processed(tmp_path, untrained_checkpoint, series, capsys):
    volume = series[0][..., 0]
    folder = tmp_path / "in"
    folder.mkdir()
    for name, make in BAD_INPUTS.items():
        make(folder / name, volume)
    for leftover in folder.glob("*.full"):
        leftover.unlink()
    write_nifti(folder / "good.nii.gz", volume, SPACING)
    out = tmp_path / "out"
    status = segment([str(folder)], out, ckpt_path=str(untrained_checkpoint))
    assert status == 1
    err = capsys.readouterr().err
    for name in BAD_INPUTS:
        lines = [line for line in err.splitlines() if name in line]
        assert lines, f"no message names {name}"
    assert {p.name for p in out.iterdir()} == {"good_nucleus.nii.gz", "good_cell.nii.gz", "good_measurements.csv", "good_quality.json", "good_overlay.png", "report.html", "run.json"}


def test_files_with_one_output_name_are_not_overwritten(tmp_path, untrained_checkpoint, series, capsys):
    volume = series[0][..., 0]
    first, second = write_nifti(tmp_path / "cell.nii", volume, SPACING), write_nifti(tmp_path / "cell.nii.gz", volume, SPACING)
    out = tmp_path / "out"
    assert segment([str(second), str(first)], out, ckpt_path=str(untrained_checkpoint), save_figures=False) == 1
    assert f"{first}: not segmented, its outputs cell_* would overwrite those of {second}" in capsys.readouterr().err
    assert {p.name for p in out.iterdir()} == {"cell_nucleus.nii.gz", "cell_cell.nii.gz", "cell_measurements.csv", "cell_quality.json", "report.html", "run.json"}
    assert file_stem("stack.ome.tif") == file_stem("stack.tif") == "stack"


def test_cli_exit_status_nonzero_on_failure(tmp_path, untrained_checkpoint):
    missing = tmp_path / "missing.nii.gz"
    result = subprocess.run(
        [sys.executable, "-m", "osnet_monai.cli", "segment", str(missing), "-o", str(tmp_path / "o"), "--model", str(untrained_checkpoint)],
        capture_output=True, text=True, cwd=REPO_ROOT, timeout=300,
    )
    assert result.returncode == 1
    assert f"{missing}: file not found" in result.stderr


def test_list_inputs_takes_images_subfolder(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "labels").mkdir()
    for sub in ("images", "labels"):
        (tmp_path / sub / "a.nii.gz").write_bytes(b"")
    (tmp_path / "images" / "notes.txt").write_text("x")
    assert list_inputs(tmp_path) == [str(tmp_path / "images" / "a.nii.gz")]
    assert list_inputs([tmp_path / "missing.nii.gz"]) == [str(tmp_path / "missing.nii.gz")]  # reported by the stream
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match="No tomograms"):
        list_inputs(empty)


def test_streaming_writer_matches_nibabel(tmp_path):
    rng = np.random.default_rng(0)
    data = rng.integers(0, 3, (7, 5, 4, 3)).astype(np.uint8)
    affine = np.diag([0.1, 0.2, 0.3, 1.0])
    writer = StreamingNiftiWriter(tmp_path / "m.nii.gz", data.shape[:3], 3, affine, np.uint8, time_step_s=5.0)
    for t in range(3):
        writer.write(data[..., t])
    assert not (tmp_path / "m.nii.gz").exists()  # nothing under the final name until complete
    writer.close()
    image = nib.load(tmp_path / "m.nii.gz")
    np.testing.assert_array_equal(np.asarray(image.dataobj), data)
    np.testing.assert_allclose(image.affine, affine)
    assert image.header["pixdim"][4] == pytest.approx(5.0)


def test_streaming_writer_incomplete_leaves_nothing(tmp_path):
    writer = StreamingNiftiWriter(tmp_path / "m.nii.gz", (4, 4, 2), 3, np.eye(4))
    writer.write(np.zeros((4, 4, 2), np.uint8))
    with pytest.raises(ValueError, match="1 of 3 frames"):
        writer.close()
    assert list(tmp_path.iterdir()) == []


def test_flip_tta_is_flip_equivariant():
    torch.manual_seed(0)
    net = OSNet().eval()
    tta = FlipTTA(net).eval()
    x = torch.randn(1, 1, 32, 48)
    with torch.no_grad():
        expected = (net(x) + net(x.flip(-1)).flip(-1) + net(x.flip(-2)).flip(-2)) / 3
        torch.testing.assert_close(tta(x), expected)


def test_skip_empty_windows_runs_the_network_only_where_cell_is():
    calls = []

    class Recorder(torch.nn.Module):
        def forward(self, x):
            calls.append(x.shape[0])
            return torch.ones(x.shape[0], 1, *x.shape[2:])

    x = torch.zeros(4, 1, 16, 16)
    x[1, 0, 3:6, 3:6] = 2.0  # one window shows cell (9 of 256 pixels)
    x[2, 0, 0, 0] = 5.0  # a single noisy pixel is not cell
    x[3] = 0.2  # below the threshold: medium
    out = SkipEmptyWindows(Recorder(), cell_threshold=0.3, min_fraction=0.02)(x)
    assert calls == [1]
    assert torch.all(out[1] == 1) and torch.all(out[[0, 2, 3]] == -20.0)


def test_malloc_threshold_can_be_fixed_or_left_alone():
    from osnet_monai.inference import fix_malloc_mmap_threshold

    assert fix_malloc_mmap_threshold(None) is False
    assert fix_malloc_mmap_threshold(1 << 20) is (sys.platform.startswith("linux"))


def test_gpu_options_run_on_cpu_with_the_same_result(tmp_path, inputs):
    """The GPU settings (AMP, channels_last, cudnn benchmark, eager network) are config values; on a CPU
    they must run and give the default path's (frozen graph) probabilities (AMP falls back to fp32
    without CUDA)."""
    checkpoint = REPO_ROOT / "bundle" / "models" / "model.pt"  # trained, so its output varies
    image = str(inputs["nifti3d"][0])
    common = dict(ckpt_path=str(checkpoint), save_prob=True, save_figures=False, skip_empty_sections=False)
    assert segment([image], tmp_path / "default", **common) == 0
    assert segment([image], tmp_path / "gpu", amp=True, channels_last=True, cudnn_benchmark=True, optimize_cpu_inference=False, **common) == 0
    reference = np.asarray(nib.load(tmp_path / "default" / "nifti3d_prob.nii.gz").dataobj)
    gpu_path = np.asarray(nib.load(tmp_path / "gpu" / "nifti3d_prob.nii.gz").dataobj)
    assert reference.std() > 1e-2  # a network whose output varies, so equality means something
    np.testing.assert_allclose(gpu_path, reference, atol=1e-4)


def test_frozen_network_matches_eager_and_follows_new_weights():
    torch.manual_seed(0)
    net = OSNet().eval()
    frozen = FrozenForInference(net).eval()
    x = torch.randn(2, 1, 64, 48)
    with torch.no_grad():
        torch.testing.assert_close(frozen(x), net(x), atol=1e-5, rtol=1e-4)
        first = frozen._frozen
        frozen(x)
        assert frozen._frozen is first  # built once while the weights stay
        net.load_state_dict({k: v * 1.5 if v.is_floating_point() else v for k, v in net.state_dict().items()})
        torch.testing.assert_close(frozen(x), net(x), atol=1e-5, rtol=1e-4)
        assert frozen._frozen is not first
    assert not any(k.startswith("_frozen") for k in frozen.state_dict())
    frozen.train()
    frozen(x).sum().backward()  # train mode runs the eager network, so gradients flow
    assert all(p.grad is not None for p in net.parameters())


@pytest.mark.parametrize("freeze, tta, skip_empty, chain", [
    (False, False, False, []),
    (True, False, True, ["SkipEmptyWindows", "FrozenForInference"]),
    (True, True, True, ["SkipEmptyWindows", "FlipTTA", "FrozenForInference"]),
    (False, True, False, ["FlipTTA"]),
])
def test_wrap_for_inference_orders_the_wrappers(freeze, tta, skip_empty, chain):
    from osnet_monai.inference import wrap_for_inference

    net = torch.nn.Conv2d(1, 1, 1)
    wrapped, names = wrap_for_inference(net, freeze=freeze, tta=tta, skip_empty=skip_empty), []
    while wrapped is not net:
        names.append(type(wrapped).__name__)
        wrapped = wrapped.network
    assert names == chain
