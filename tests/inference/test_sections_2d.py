"""2D inputs (one x-y section): outputs on the input's own 2D grid, 2D measurements; inputs under 2 dimensions refused."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import tifffile
import torch

from monai.data import MetaTensor

from osnet_monai.inference import StreamingNiftiWriter, TomogramStream, TomogramWriter
from osnet_monai.inference.cli import segment
from osnet_monai.measurements import MEASUREMENT_COLUMNS, MEASUREMENT_COLUMNS_2D, measure_sections_2d, measurements_to_csv
from osnet_monai.readers import InputError, load_tomogram, open_frames

MEDIUM = 1.337
SPACING = (0.15, 0.15, 0.3)


def _section(shape=(120, 100)) -> np.ndarray:
    """A float32 RI section (X, Y): an elliptic cell with a lower-RI nucleus, a little noise."""
    rng = np.random.default_rng(0)
    x, y = np.meshgrid(*[np.arange(n) for n in shape], indexing="ij")
    cell = ((x - 60) / 45) ** 2 + ((y - 50) / 38) ** 2 < 1
    nucleus = ((x - 60) / 18) ** 2 + ((y - 50) / 15) ** 2 < 1
    return (MEDIUM + 0.03 * cell - 0.005 * nucleus + rng.normal(0, 0.002, shape)).astype(np.float32)


def _nifti(path: Path, array: np.ndarray, spacing=SPACING) -> Path:
    image = nib.Nifti1Image(array, np.diag([*spacing, 1.0]))
    image.header.set_xyzt_units("micron", "sec")
    image.header["descrip"] = f"medium_ri={MEDIUM:.4f}".encode()
    nib.save(image, path)
    return path


@pytest.fixture(scope="module")
def sections(tmp_path_factory, untrained_checkpoint):
    """A 2D NIfTI, a 2D ImageJ TIFF and a 3D NIfTI with Z = 1, segmented in one run: (inputs, status, out)."""
    folder = tmp_path_factory.mktemp("sections")
    section = _section()
    inputs = {
        "nifti2d": _nifti(folder / "nifti2d.nii.gz", section),
        "one_section3d": _nifti(folder / "one_section3d.nii.gz", section[:, :, None]),
        "tiff2d": folder / "tiff2d.tif",
    }
    tifffile.imwrite(
        inputs["tiff2d"], section.T, imagej=True, resolution=(1 / SPACING[0], 1 / SPACING[1]), metadata={"unit": "um", "axes": "YX"}
    )
    out = folder / "out"
    status = segment([str(p) for p in inputs.values()], out, ckpt_path=str(untrained_checkpoint), save_prob=True)
    return inputs, status, out


def _header(path: Path) -> tuple[str, ...]:
    with open(path, newline="") as f:
        return tuple(next(csv.reader(f)))


@pytest.mark.slow
@pytest.mark.parametrize("name", ["nifti2d", "tiff2d"])
def test_2d_section_gives_2d_outputs_on_the_input_grid(sections, name):
    inputs, status, out = sections
    assert status == 0
    path = inputs[name]
    expected_affine = nib.load(path).affine if name == "nifti2d" else load_tomogram(path)[1]["affine"]
    for kind in ("nucleus", "cell", "prob"):
        image = nib.load(out / f"{name}_{kind}.nii.gz")
        assert image.shape == (120, 100)
        np.testing.assert_allclose(image.affine, expected_affine)
    assert nib.load(out / f"{name}_nucleus.nii.gz").get_data_dtype() == np.uint16
    np.testing.assert_allclose(np.abs(np.diag(expected_affine))[:2], SPACING[:2], rtol=1e-5)
    assert _header(out / f"{name}_measurements.csv") == MEASUREMENT_COLUMNS_2D
    assert (out / f"{name}_overlay.png").is_file()


@pytest.mark.slow
def test_3d_file_with_one_section_stays_3d(sections):
    inputs, status, out = sections
    assert status == 0
    mask = nib.load(out / "one_section3d_nucleus.nii.gz")
    assert mask.shape == (120, 100, 1)
    np.testing.assert_allclose(mask.affine, nib.load(inputs["one_section3d"]).affine)
    assert _header(out / "one_section3d_measurements.csv") == MEASUREMENT_COLUMNS


def test_writer_measures_a_2d_section_in_2d(tmp_path):
    """The truth fed through the writer as the prediction: the mask comes back as written, measured in 2D."""
    section = _section()
    truth = np.zeros(section.shape, dtype=np.uint8)
    x, y = np.meshgrid(*[np.arange(n) for n in section.shape], indexing="ij")
    truth[((x - 60) / 18) ** 2 + ((y - 50) / 15) ** 2 < 1] = 1
    path = _nifti(tmp_path / "section.nii.gz", section)
    writer = TomogramWriter(tmp_path / "out", save_prob=True, save_figures=True)
    for item in TomogramStream([path]):
        assert item["image"].meta["input_ndim"] == 2 and item["image"].shape == (120, 100, 1)
        pred = torch.from_numpy(truth[None, :, :, None].astype(np.float32))
        item["pred"] = MetaTensor(pred, affine=item["image"].affine)
        item["prob"] = item["pred"].clone()
        writer.write_frame(item)
    mask = nib.load(tmp_path / "out" / "section_nucleus.nii.gz")
    np.testing.assert_array_equal(np.asarray(mask.dataobj), truth)
    np.testing.assert_allclose(mask.affine, nib.load(path).affine)
    assert nib.load(tmp_path / "out" / "section_prob.nii.gz").shape == truth.shape
    with open(tmp_path / "out" / "section_measurements.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    expected = measure_sections_2d(truth.astype(np.int32), section, SPACING[:2], MEDIUM)
    assert len(rows) == len(expected) == 1
    assert float(rows[0]["area_um2"]) == pytest.approx(expected[0]["area_um2"])
    assert float(rows[0]["dry_mass_pg_per_um"]) == pytest.approx(expected[0]["dry_mass_pg_per_um"])
    assert (tmp_path / "out" / "section_overlay.png").is_file()


@pytest.mark.parametrize("radius_um, spacing", [(5.0, (0.15, 0.15)), (3.0, (0.196, 0.196)), (4.0, (0.1, 0.2))])
def test_disk_area_perimeter_circularity_diameter(radius_um, spacing):
    shape = [int(2 * radius_um / s) + 12 for s in spacing]
    x, y = np.meshgrid(*[(np.arange(n) - n / 2) * s for n, s in zip(shape, spacing)], indexing="ij", sparse=True)
    labels = (x**2 + y**2 <= radius_um**2).astype(np.int32)
    ri = np.where(labels > 0, 1.357, MEDIUM)
    (row,) = measure_sections_2d(labels, ri, spacing, MEDIUM)
    assert row["nucleus_id"] == 1
    assert row["area_um2"] == pytest.approx(math.pi * radius_um**2, rel=0.03)
    assert row["equivalent_diameter_um"] == pytest.approx(2 * radius_um, rel=0.03)
    assert row["perimeter_um"] == pytest.approx(2 * math.pi * radius_um, rel=0.03)
    assert 0.9 < row["circularity"] <= 1.0
    assert row["mean_ri"] == pytest.approx(1.357)
    # dry mass per um of thickness: (n - n_m) / alpha, in pg/um^3, over the area
    assert row["dry_mass_pg_per_um"] == pytest.approx(row["area_um2"] * 0.02 / 0.19, rel=1e-9)
    assert row["centroid_x_um"] == pytest.approx(shape[0] / 2 * spacing[0], abs=spacing[0])


def test_circularity_of_tiny_and_elongated_objects():
    labels = np.zeros((30, 30), dtype=np.int32)
    labels[3, 3] = 1  # one pixel
    labels[10:12, 10:12] = 2
    labels[20:22, 2:28] = 3  # a 2 x 26 bar
    rows = measure_sections_2d(labels, np.full(labels.shape, 1.36), (0.2, 0.2), MEDIUM)
    assert [r["nucleus_id"] for r in rows] == [1, 2, 3]
    assert all(0 < r["circularity"] <= 1.0 for r in rows)
    assert rows[2]["circularity"] < 0.5


def test_2d_csv_header_with_and_without_rows(tmp_path):
    labels = np.zeros((20, 20), dtype=np.int32)
    labels[5:15, 5:15] = 1
    rows = [{"frame": 0, "time_s": 0.0, **r} for r in measure_sections_2d(labels, np.full(labels.shape, 1.35), (0.2, 0.2), MEDIUM)]
    assert _header(Path(measurements_to_csv(rows, tmp_path / "a.csv"))) == MEASUREMENT_COLUMNS_2D
    assert _header(Path(measurements_to_csv([], tmp_path / "b.csv", MEASUREMENT_COLUMNS_2D))) == MEASUREMENT_COLUMNS_2D
    assert _header(Path(measurements_to_csv([], tmp_path / "c.csv"))) == MEASUREMENT_COLUMNS


def test_streaming_writer_2d_frames(tmp_path):
    rng = np.random.default_rng(0)
    data = rng.integers(0, 3, (7, 5)).astype(np.uint8)
    affine = np.diag([0.1, 0.2, 0.3, 1.0])
    writer = StreamingNiftiWriter(tmp_path / "s.nii.gz", data.shape, 1, affine)
    writer.write(data)
    image = nib.load(writer.close())
    np.testing.assert_array_equal(np.asarray(image.dataobj), data)
    np.testing.assert_allclose(image.affine, affine)
    series = StreamingNiftiWriter(tmp_path / "t.nii.gz", data.shape, 2, affine, time_step_s=5.0)
    series.write(data)
    series.write(data)
    assert nib.load(series.close()).shape == (7, 5, 1, 2)  # NIfTI's fourth axis is time


def test_reader_records_the_input_dimensions(tmp_path):
    section = _section((40, 30))
    for path in (_nifti(tmp_path / "s.nii.gz", section), _nifti(tmp_path / "v.nii.gz", section[:, :, None])):
        array, meta = load_tomogram(path)
        frame_meta = open_frames(path).read(0)[1]
        assert array.shape == (40, 30, 1) and meta["is_2d"] and frame_meta["is_2d"]
        assert meta["input_ndim"] == frame_meta["input_ndim"] == (2 if path.name == "s.nii.gz" else 3)


def test_1d_input_refused_by_the_readers(tmp_path):
    path = tmp_path / "line.nii.gz"
    nib.save(nib.Nifti1Image(np.full(100, 1.35, np.float32), np.eye(4)), path)
    expected = f"{path}: 1 dimension(s) (100,); expected a 2D section, a 3D stack or a 4D series"
    for read in (load_tomogram, open_frames):
        with pytest.raises(InputError) as exc:
            read(path)
        assert str(exc.value) == expected


@pytest.mark.slow
def test_1d_input_reported_with_exit_status_1(tmp_path, untrained_checkpoint, capsys):
    path = tmp_path / "line.nii.gz"
    nib.save(nib.Nifti1Image(np.full(100, 1.35, np.float32), np.eye(4)), path)
    good = _nifti(tmp_path / "good.nii.gz", _section((60, 50)))
    out = tmp_path / "out"
    assert segment([str(path), str(good)], out, ckpt_path=str(untrained_checkpoint), save_figures=False) == 1
    err = capsys.readouterr().err
    assert f"{path}: 1 dimension(s) (100,); expected a 2D section, a 3D stack or a 4D series" in err
    assert "IndexError" not in err
    assert {p.name for p in out.iterdir()} == {"good_nucleus.nii.gz", "good_cell.nii.gz", "good_measurements.csv", "good_quality.json", "report.html", "run.json"}
