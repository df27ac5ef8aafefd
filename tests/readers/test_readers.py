"""Readers and input checks: round trips for every format, TCF layout, streaming, and bad inputs.

All files are small synthetic ones written here; shapes use X != Y != Z so that an axis mix-up fails.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import h5py
import itk
import nibabel as nib
import numpy as np
import pytest
import tifffile
import torch

from osnet_monai.readers import (
    InputError,
    TCFReader,
    TiffStackReader,
    as_refractive_index,
    check_tomogram,
    iter_tcf_frames,
    load_tomogram,
    read_tcf_frame,
    reader_for,
    tcf_frame_count,
)

X, Y, Z, T = 7, 6, 5, 3
SPACING = (0.155, 0.165, 0.946)  # (x, y, z) um, Tomocube-like and distinct per axis
MEDIUM = 1.337


def phantom(t: int = 1, seed: int = 0) -> np.ndarray:
    """RI phantom (T, Z, Y, X) as stored in TCF/TIFF: medium 1.337 with a brighter blob and noise."""
    rng = np.random.default_rng(seed)
    vol = np.full((t, Z, Y, X), MEDIUM, dtype=np.float32)
    vol[:, 1:4, 2:5, 2:6] = 1.37
    vol += rng.normal(0, 0.002, vol.shape).astype(np.float32)
    vol += np.arange(t, dtype=np.float32)[:, None, None, None] * 0.001  # frames differ
    return vol


def _arr(value, dtype=None) -> np.ndarray:
    """Tomocube stores attributes as one-element arrays (the tcfile package indexes them with [0])."""
    if isinstance(value, str):
        return np.array([value.encode()])
    return np.array([value], dtype=dtype)


def write_tcf(
    path: Path,
    tzyx: np.ndarray,
    spacing_xyz=SPACING,
    dt: float | None = 2.5,
    kind: str = "uint16",
    medium_ri: float | None = MEDIUM,
    data_count: int | None = None,
    resolution: bool = True,
    **dataset_kwargs,
) -> Path:
    """Write an RI time series (T, Z, Y, X) in Tomocube's TCF layout.

    kind: "float32" (format 1.2, RI), "uint16" (format 1.4.1, RI x 10,000), "tiled_u16" / "tiled_u8"
    (intermediate format: each time point a group of TILE_nnnn datasets).
    """
    t_count, nz, ny, nx = tzyx.shape
    with h5py.File(path, "w") as f:
        f.attrs["FormatVersion"] = _arr("1.2" if kind == "float32" else "1.4.1")
        f.attrs["Title"] = _arr("synthetic")
        g = f.create_group("Data/3D")
        for axis, size, res in zip("XYZ", (nx, ny, nz), spacing_xyz):
            g.attrs[f"Size{axis}"] = _arr(size, np.int64)
            if resolution:
                g.attrs[f"Resolution{axis}"] = _arr(res, np.float64)
        g.attrs["DataCount"] = _arr(t_count if data_count is None else data_count, np.int64)
        if dt is not None:
            g.attrs["TimeInterval"] = _arr(dt if t_count > 1 else 0.0, np.float64)
        g.attrs["RIMin"] = _arr(float(tzyx.min()), np.float64)
        g.attrs["RIMax"] = _arr(float(tzyx.max()), np.float64)
        for t in range(t_count):
            name = f"{t:06d}"
            if kind == "float32":
                node = g.create_dataset(name, data=tzyx[t].astype(np.float32), **dataset_kwargs)
            elif kind == "uint16":
                node = g.create_dataset(name, data=np.round(tzyx[t] * 1e4).astype(np.uint16), **dataset_kwargs)
            else:
                node = g.create_group(name)
                u8 = kind == "tiled_u8"
                ri_min = float(tzyx.min())
                node.attrs["ScalarType"] = _arr(u8, np.bool_)
                node.attrs["RIMin"] = _arr(ri_min, np.float64)
                stored = np.round((tzyx[t] - ri_min) * 1e3).astype(np.uint8) if u8 else np.round(tzyx[t] * 1e4).astype(np.uint16)
                # two tiles split along Y, each padded beyond its valid range as the real ones are
                for k, (y0, y1) in enumerate(((0, ny // 2 - 1), (ny // 2, ny - 1))):
                    pad = np.zeros((nz, 4 + y1 - y0, nx), stored.dtype)
                    pad[:, : y1 - y0 + 1] = stored[:, y0 : y1 + 1]
                    tile = node.create_dataset(f"TILE_{k:04d}", data=pad)
                    for axis, a0, a1 in (("Z", 0, nz - 1), ("Y", y0, y1), ("X", 0, nx - 1)):
                        tile.attrs[f"DataIndexOffsetPoint{axis}"] = _arr(a0, np.int64)
                        tile.attrs[f"DataIndexLastPoint{axis}"] = _arr(a1, np.int64)
                    tile.attrs["SamplingStep"] = _arr(1, np.int64)
                # a down-sampled preview tile that must be ignored
                junk = node.create_dataset("TILE_0009", data=np.full((nz, ny, nx), 99, stored.dtype))
                junk.attrs["SamplingStep"] = _arr(2, np.int64)
            node.attrs["Time"] = _arr(t * (dt or 0.0), np.float64)
            node.attrs["RecordingTime"] = _arr("2024-01-01 00:00:00")
        if medium_ri is not None:
            dev = f.create_group("Info/Device")
            dev.attrs["RI"] = _arr(medium_ri, np.float64)
            dev.attrs["NA"] = _arr(1.2, np.float64)
    return path


def assert_one_line_naming(exc: pytest.ExceptionInfo, path) -> None:
    msg = str(exc.value)
    assert os.path.basename(os.fspath(path)) in msg, msg
    assert "\n" not in msg


TOL = {"float32": 0.0, "uint16": 0.6e-4, "tiled_u16": 0.6e-4, "tiled_u8": 0.6e-3}


# --------------------------------------------------------------------------------------------- TCF
@pytest.mark.parametrize("kind", list(TOL))
@pytest.mark.parametrize("t_count", [1, T])
def test_tcf_reader_round_trip(tmp_path, kind, t_count):
    tzyx = phantom(t_count)
    path = write_tcf(tmp_path / f"cell_{kind}.TCF", tzyx, kind=kind)
    reader = TCFReader()
    assert reader.verify_suffix(path) and reader.verify_suffix("a.tcf") and not reader.verify_suffix("a.nii")
    data, meta = reader.get_data(reader.read(path))
    assert data.dtype == np.float32
    expected = tzyx.transpose(3, 2, 1, 0)  # (T, Z, Y, X) -> (X, Y, Z, T)
    if t_count == 1:
        expected = expected[..., 0]
        assert meta["original_channel_dim"] == "no_channel"
        assert "time_step_s" not in meta
    else:
        assert meta["original_channel_dim"] == -1
        assert meta["time_step_s"] == pytest.approx(2.5)
    assert data.shape == expected.shape
    np.testing.assert_allclose(data, expected, atol=TOL[kind], rtol=0)
    np.testing.assert_allclose(meta["affine"], np.diag([*SPACING, 1.0]))
    np.testing.assert_allclose(meta["spacing"], SPACING)
    assert tuple(meta["spatial_shape"]) == (X, Y, Z)
    assert meta["medium_ri"] == pytest.approx(MEDIUM)


def test_tcf_lazy_frames_equal_full_read(tmp_path):
    path = write_tcf(tmp_path / "series.tcf", phantom(T))
    full, _ = TCFReader().get_data(TCFReader().read(path))
    assert tcf_frame_count(path) == T
    for t in range(T):
        frame, meta = read_tcf_frame(path, t)
        assert frame.shape == (X, Y, Z) and frame.dtype == np.float32
        np.testing.assert_array_equal(frame, full[..., t])
        assert meta["time_index"] == t and meta["time_s"] == pytest.approx(2.5 * t)
    np.testing.assert_array_equal(read_tcf_frame(path, -1)[0], full[..., -1])
    streamed = [frame for frame, _ in iter_tcf_frames(path)]
    np.testing.assert_array_equal(np.stack(streamed, axis=-1), full)
    with pytest.raises(InputError) as exc:
        read_tcf_frame(path, T)
    assert_one_line_naming(exc, path)


def test_tcf_time_point_selection(tmp_path):
    tzyx = phantom(T)
    path = write_tcf(tmp_path / "series.tcf", tzyx, kind="float32")
    one, meta = TCFReader(time_points=1).get_data(TCFReader(time_points=1).read(path))
    np.testing.assert_array_equal(one, tzyx[1].transpose(2, 1, 0))
    assert meta["original_channel_dim"] == "no_channel"
    reader = TCFReader(time_points=[2, 0])
    two, meta = reader.get_data(reader.read(path))
    np.testing.assert_array_equal(two, tzyx[[2, 0]].transpose(3, 2, 1, 0))
    assert list(meta["time_indices"]) == [2, 0]


def test_tcf_time_step_from_frame_times(tmp_path):
    path = write_tcf(tmp_path / "series.tcf", phantom(T), dt=4.0)
    with h5py.File(path, "r+") as f:
        del f["Data/3D"].attrs["TimeInterval"]
    _, meta = TCFReader().get_data(TCFReader().read(path))
    assert meta["time_step_s"] == pytest.approx(4.0)


def test_tcf_layout_opens_with_tcfile_package(tmp_path):
    tcfile = pytest.importorskip("TCFile")
    for kind in ("float32", "uint16"):
        tzyx = phantom(T)
        path = write_tcf(tmp_path / f"{kind}.TCF", tzyx, kind=kind)
        ref = tcfile.TCFile(str(path), "3D")
        assert len(ref) == T
        assert list(ref.data_shape) == [Z, Y, X]
        np.testing.assert_allclose(ref.data_resolution, SPACING[::-1])
        for t in range(T):
            ours, _ = read_tcf_frame(path, t)
            np.testing.assert_array_equal(np.asarray(ref[t], dtype=np.float32), ours.transpose(2, 1, 0))


def test_tcf_compressed_with_hdf5plugin(tmp_path):
    hdf5plugin = pytest.importorskip("hdf5plugin")
    tzyx = phantom(2)
    path = write_tcf(tmp_path / "lz4.tcf", tzyx, **hdf5plugin.LZ4())
    data, _ = load_tomogram(path)
    np.testing.assert_allclose(data, tzyx.transpose(3, 2, 1, 0), atol=0.6e-4)


def test_tcf_time_series_through_monai_transforms(tmp_path):
    from monai.transforms import Compose, EnsureChannelFirstd, LoadImaged

    path = write_tcf(tmp_path / "series.tcf", phantom(T))
    pipeline = Compose([LoadImaged("image", reader=TCFReader()), EnsureChannelFirstd("image")])
    image = pipeline({"image": str(path)})["image"]
    assert tuple(image.shape) == (T, X, Y, Z)  # time became the channel axis
    np.testing.assert_allclose(image.affine.numpy(), np.diag([*SPACING, 1.0]))
    path3 = write_tcf(tmp_path / "single.tcf", phantom(1))
    assert tuple(pipeline({"image": str(path3)})["image"].shape) == (1, X, Y, Z)


# ------------------------------------------------------------------------------------------ TIFF
@pytest.mark.parametrize("unit", ["micron", "um", "\\u00B5m"])  # ImageJ escapes the micro sign
def test_tiff_imagej_stack(tmp_path, unit):
    zyx = np.round(phantom(1)[0] * 1e4).astype(np.uint16)
    path = tmp_path / "stack.tif"
    kwargs = dict(imagej=True, resolution=(1 / SPACING[0], 1 / SPACING[1]))
    tifffile.imwrite(path, zyx, metadata={"spacing": SPACING[2], "unit": unit, "axes": "ZYX"}, **kwargs)
    reader = TiffStackReader(default_spacing_um=(9.0, 9.0, 9.0))
    data, meta = reader.get_data(reader.read(path))
    assert data.dtype == np.uint16  # raw here; the checks decide the scaling
    np.testing.assert_array_equal(data, zyx.transpose(2, 1, 0))
    np.testing.assert_allclose(meta["spacing"], SPACING, rtol=1e-6)
    assert meta["spacing_source"] == "imagej" and meta["original_channel_dim"] == "no_channel"


def test_tiff_imagej_hyperstack_4d(tmp_path):
    tzyx = phantom(T).astype(np.float32)
    path = tmp_path / "hyper.tif"
    tifffile.imwrite(
        path, tzyx, imagej=True, resolution=(1 / SPACING[0], 1 / SPACING[1]),
        metadata={"spacing": SPACING[2], "unit": "micron", "finterval": 30.0, "axes": "TZYX"},
    )
    data, meta = load_tomogram(path)
    np.testing.assert_array_equal(data, tzyx.transpose(3, 2, 1, 0))
    np.testing.assert_allclose(meta["spacing"], SPACING, rtol=1e-6)
    assert meta["time_step_s"] == pytest.approx(30.0)
    assert meta["axes"] == "XYZT" and meta["original_channel_dim"] == -1


@pytest.mark.parametrize("four_d", [False, True])
def test_tiff_ome_metadata_with_units(tmp_path, four_d):
    tzyx = phantom(T if four_d else 1)
    data_in = tzyx if four_d else tzyx[0]
    path = tmp_path / "cell.ome.tif"
    md = {
        "axes": "TZYX" if four_d else "ZYX",
        "PhysicalSizeX": SPACING[0], "PhysicalSizeXUnit": "µm",
        "PhysicalSizeY": SPACING[1] * 1000, "PhysicalSizeYUnit": "nm",
        "PhysicalSizeZ": SPACING[2],  # no unit: OME's default, um
        "TimeIncrement": 0.5, "TimeIncrementUnit": "min",
    }
    tifffile.imwrite(path, data_in, ome=True, metadata=md)
    data, meta = load_tomogram(path)
    expected = tzyx.transpose(3, 2, 1, 0)
    np.testing.assert_array_equal(data, expected if four_d else expected[..., 0])
    np.testing.assert_allclose(meta["spacing"], SPACING, rtol=1e-6)
    assert meta["spacing_source"] == "ome"
    assert meta.get("time_step_s") == (pytest.approx(30.0) if four_d else None)


def test_tiff_without_metadata_uses_default_spacing(tmp_path):
    zyx = phantom(1)[0]
    path = tmp_path / "plain.tiff"
    tifffile.imwrite(path, zyx, photometric="minisblack")
    data, meta = load_tomogram(path, default_spacing_um=(0.2, 0.3, 1.1))
    np.testing.assert_array_equal(data, zyx.transpose(2, 1, 0))
    np.testing.assert_allclose(meta["spacing"], (0.2, 0.3, 1.1))
    assert meta["spacing_source"] == "default"
    with pytest.raises(InputError, match=r"plain\.tiff: no voxel size in the TIFF metadata.*--spacing"):
        load_tomogram(path)


def test_tiff_appended_pages_form_a_stack(tmp_path):
    zyx = phantom(1)[0]
    path = tmp_path / "pages.tif"
    for z in range(Z):
        tifffile.imwrite(path, zyx[z], append=True)
    data, _ = load_tomogram(path, default_spacing_um=SPACING)
    np.testing.assert_array_equal(data, zyx.transpose(2, 1, 0))


def test_uint16_ri_x10000_without_metadata_is_scaled(tmp_path):
    zyx = phantom(1)[0]
    path = tmp_path / "export.tif"
    tifffile.imwrite(path, np.round(zyx * 1e4).astype(np.uint16), photometric="minisblack")
    data, meta = load_tomogram(path, default_spacing_um=SPACING)
    assert meta["ri_scale_detected"] is True and data.dtype == np.float32
    np.testing.assert_allclose(data, zyx.transpose(2, 1, 0), atol=0.6e-4)
    # TCF uint16 is scaled by the reader from its metadata, so nothing is left to detect
    _, meta = load_tomogram(write_tcf(tmp_path / "c.tcf", phantom(1)))
    assert meta["ri_scale_detected"] is False


# ------------------------------------------------------------------------------------ 2D sections
def test_2d_sections_become_one_section_stacks(tmp_path):
    yx = phantom(1)[0, 2]
    tif = tmp_path / "section.tif"
    tifffile.imwrite(tif, yx, imagej=True, resolution=(1 / SPACING[0], 1 / SPACING[1]), metadata={"unit": "um"})
    reader = TiffStackReader()
    raw, raw_meta = reader.get_data(reader.read(tif))
    assert raw.shape == (X, Y) and tuple(raw_meta["spatial_shape"]) == (X, Y)
    data, meta = load_tomogram(tif, default_spacing_um=(1.0, 1.0, 0.9))
    assert data.shape == (X, Y, 1) and meta["is_2d"] is True
    np.testing.assert_array_equal(data[..., 0], yx.T)
    np.testing.assert_allclose(meta["spacing"], (*SPACING[:2], 0.9), rtol=1e-6)
    assert meta["affine"].shape == (4, 4)
    nii = tmp_path / "section.nii.gz"
    nib.save(nib.Nifti1Image(yx.T.copy(), np.diag([*SPACING[:2], 1.0, 1.0])), nii)
    data, meta = load_tomogram(nii)
    assert data.shape == (X, Y, 1) and meta["is_2d"] is True
    _, meta = load_tomogram(write_tcf(tmp_path / "c.tcf", phantom(1)))
    assert meta["is_2d"] is False


# ----------------------------------------------------------------------------------- NIfTI / ITK
@pytest.mark.parametrize("four_d", [False, True])
@pytest.mark.parametrize("suffix", [".nii", ".nii.gz"])
def test_nifti_round_trip_with_medium_ri_and_time(tmp_path, four_d, suffix):
    xyzt = phantom(T if four_d else 1).transpose(3, 2, 1, 0)
    arr = xyzt if four_d else xyzt[..., 0]
    img = nib.Nifti1Image(np.ascontiguousarray(arr), np.diag([*SPACING, 1.0]))
    img.header["descrip"] = b"medium_ri=1.3370"
    img.header.set_xyzt_units("micron", "sec")
    if four_d:
        img.header.set_zooms((*SPACING, 20.0))
    path = tmp_path / f"vol{suffix}"
    nib.save(img, path)
    data, meta = load_tomogram(path)
    np.testing.assert_array_equal(data, arr)
    np.testing.assert_allclose(meta["spacing"], SPACING, rtol=1e-6)
    assert meta["medium_ri"] == pytest.approx(1.337)
    assert meta["original_channel_dim"] == (-1 if four_d else "no_channel")
    assert meta.get("time_step_s") == (pytest.approx(20.0) if four_d else None)


@pytest.mark.parametrize(
    ("unit", "zooms", "expected"),
    [
        ("unknown", SPACING, SPACING),  # as MONAI writes it: taken as um
        ("mm", tuple(s / 1000 for s in SPACING), SPACING),  # real mm
        ("mm", SPACING, SPACING),  # ITK-written "mm" that are really um
        ("meter", tuple(s * 1e-6 for s in SPACING), SPACING),
    ],
)
def test_nifti_spatial_units(tmp_path, unit, zooms, expected):
    img = nib.Nifti1Image(phantom(1)[0].transpose(2, 1, 0).copy(), np.diag([*zooms, 1.0]))
    img.header.set_xyzt_units(unit)
    nib.save(img, tmp_path / "u.nii")
    _, meta = load_tomogram(tmp_path / "u.nii")
    np.testing.assert_allclose(meta["spacing"], expected, rtol=1e-5)
    np.testing.assert_allclose(np.diag(meta["affine"])[:3], expected, rtol=1e-5)


@pytest.mark.parametrize("suffix", [".nrrd", ".mha", ".mhd"])
def test_itk_formats_round_trip(tmp_path, suffix):
    zyx = phantom(1)[0]
    img = itk.image_from_array(zyx)  # ITK's numpy view is (Z, Y, X)
    img.SetSpacing(SPACING)
    path = tmp_path / f"vol{suffix}"
    itk.imwrite(img, str(path))
    assert type(reader_for(path)).__name__ == "ITKReader"
    data, meta = load_tomogram(path)
    np.testing.assert_array_equal(data, zyx.transpose(2, 1, 0))
    np.testing.assert_allclose(meta["spacing"], SPACING, rtol=1e-6)


def test_itk_4d_time_series(tmp_path):
    tzyx = phantom(T)
    img = itk.image_from_array(tzyx)
    img.SetSpacing([*SPACING, 15.0])
    itk.imwrite(img, str(tmp_path / "series.mha"))
    data, meta = load_tomogram(tmp_path / "series.mha")
    np.testing.assert_array_equal(data, tzyx.transpose(3, 2, 1, 0))
    assert meta["time_step_s"] == pytest.approx(15.0) and meta["axes"] == "XYZT"


@pytest.mark.parametrize(
    ("name", "reader"),
    [("a.nii", "NibabelReader"), ("a.NII.GZ", "NibabelReader"), ("a.nrrd", "ITKReader"), ("a.mhd", "ITKReader"),
     ("a.ome.tif", "TiffStackReader"), ("a.TIFF", "TiffStackReader"), ("a.TCF", "TCFReader"), ("a.h5", "TCFReader")],
)
def test_reader_for_suffix(name, reader):
    assert type(reader_for(name)).__name__ == reader


# ------------------------------------------------------------------------------------ bad inputs
def _meta(ndim=3, spacing=SPACING, axes=None):
    meta = {"spacing": np.asarray(spacing, dtype=np.float64)}
    if axes:
        meta["axes"] = axes
    return meta


def _ri(shape=(X, Y, Z)):
    return np.random.default_rng(1).normal(MEDIUM, 0.01, shape).astype(np.float32)


def _with(value, where=(1, 1, 1)):
    a = _ri()
    a[where] = value
    return a


BAD_ARRAYS = {
    "1d": (_ri((50,)), _meta(), "1D"),
    "5d": (_ri((X, Y, Z, 2, 2)), _meta(), "5D"),
    "4d_colour": (np.zeros((X, Y, Z, 3), np.uint8) + 9, _meta(axes="XYZC"), "colour"),
    "4d_rgb_no_axes": (np.zeros((X, Y, Z, 3), np.uint8) + 9, _meta(), "colour"),
    "nan": (_with(np.nan), _meta(), "NaN"),
    "inf": (_with(np.inf), _meta(), "infinite"),
    "all_zero": (np.zeros((X, Y, Z), np.float32), _meta(), "zero"),
    "empty": (np.zeros((0, Y, Z), np.float32), _meta(), "empty"),
    "spacing_zero": (_ri(), _meta(spacing=(0.0, 0.1, 0.1)), "voxel size"),
    "spacing_negative": (_ri(), _meta(spacing=(0.1, -0.1, 0.1)), "voxel size"),
    "spacing_huge": (_ri(), _meta(spacing=(0.1, 0.1, 155.0)), "voxel size"),
    "spacing_tiny": (_ri(), _meta(spacing=(1e-5, 1e-5, 1e-5)), "voxel size"),
    "spacing_nan": (_ri(), _meta(spacing=(0.1, np.nan, 0.1)), "voxel size"),
    "camera_counts": (np.random.default_rng(2).integers(0, 4096, (X, Y, Z)).astype(np.uint16), _meta(), "camera counts"),
    "8bit": (np.random.default_rng(3).integers(0, 256, (X, Y, Z)).astype(np.uint8), _meta(), "8-bit"),
    "negative_ri": (-_ri(), _meta(), "negative"),
    "ri_contrast": (_ri() - MEDIUM, _meta(), "contrast"),
    "ri_as_integers": (np.ones((X, Y, Z), np.uint16), _meta(), "label mask"),
}


@pytest.mark.parametrize("case", list(BAD_ARRAYS))
def test_check_tomogram_refuses(case):
    array, meta, fragment = BAD_ARRAYS[case]
    name = f"bad_{case}.nii.gz"
    with pytest.raises(InputError) as exc:
        check_tomogram(array, meta, name)
    assert_one_line_naming(exc, name)
    assert fragment in str(exc.value)


def test_value_range_message_states_found_and_expected():
    counts = np.random.default_rng(2).integers(0, 4096, (X, Y, Z)).astype(np.uint16)
    with pytest.raises(InputError, match=r"values span [\d.]+ to [\d.]+ .*camera counts.*expected refractive index.*10,000"):
        as_refractive_index(counts, "cam.tif")


def _nifti(path, arr, zooms=SPACING):
    nib.save(nib.Nifti1Image(arr, np.diag([*zooms, 1.0])), path)


def _truncate(path: Path) -> None:
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])


def _bad_tcf_missing_3d(path):
    with h5py.File(path, "w") as f:
        f.create_group("Data/2DMIP")


BAD_FILES = {
    "garbage.nii": lambda p: p.write_bytes(b"this is not a nifti file at all" * 20),
    "truncated.nii.gz": lambda p: (_nifti(p, _ri()), _truncate(p)),
    "garbage.tif": lambda p: p.write_bytes(b"II*\x00garbage" * 10),
    "garbage.nrrd": lambda p: p.write_text("not nrrd"),
    "garbage.tcf": lambda p: p.write_bytes(b"\x00" * 4096),
    "truncated.TCF": lambda p: (write_tcf(p, phantom(T)), _truncate(p)),
    "no3d.tcf": _bad_tcf_missing_3d,
    "noresolution.tcf": lambda p: write_tcf(p, phantom(1), resolution=False),
    "datacount.tcf": lambda p: write_tcf(p, phantom(2), data_count=5),
    "nan.nii": lambda p: _nifti(p, _with(np.nan)),
    "five_d.nii.gz": lambda p: _nifti(p, _ri((X, Y, Z, 2, 2))),
    "huge_voxels.nii": lambda p: _nifti(p, _ri(), zooms=(0.1, 0.1, 200.0)),
    "zeros.tif": lambda p: tifffile.imwrite(p, np.zeros((Z, Y, X), np.uint16), photometric="minisblack"),
    "counts.tif": lambda p: tifffile.imwrite(p, np.random.default_rng(0).integers(0, 4096, (Z, Y, X)).astype(np.uint16), photometric="minisblack"),
    "eight_bit.tif": lambda p: tifffile.imwrite(p, np.random.default_rng(0).integers(0, 256, (Z, Y, X)).astype(np.uint8), photometric="minisblack"),
    "rgb.tif": lambda p: tifffile.imwrite(p, np.full((Y, X, 3), 120, np.uint8), photometric="rgb"),
    "channels.tif": lambda p: tifffile.imwrite(p, np.full((Z, 2, Y, X), 13370, np.uint16), imagej=True, metadata={"axes": "ZCYX"}),
    "unsupported.xyz": lambda p: p.write_text("x"),
}


@pytest.mark.parametrize("name", list(BAD_FILES))
def test_load_tomogram_refuses_bad_files(tmp_path, name):
    path = tmp_path / name
    BAD_FILES[name](path)
    with pytest.raises(InputError) as exc, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        load_tomogram(path, default_spacing_um=SPACING)
    assert_one_line_naming(exc, path)


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="not found") as exc:
        load_tomogram(tmp_path / "nowhere.tcf")
    assert_one_line_naming(exc, "nowhere.tcf")


# ------------------------------------------------------------------------------------ RI helper
def test_as_refractive_index_types_and_copies():
    ri = _ri()
    assert as_refractive_index(ri) is ri  # float32 RI passes through untouched
    scaled = as_refractive_index(np.round(ri * 1e4).astype(np.uint16))
    assert scaled.dtype == np.float32
    np.testing.assert_allclose(scaled, ri, atol=0.6e-4)
    tensor = as_refractive_index(torch.from_numpy(np.round(ri * 1e4).astype(np.int32)))
    assert isinstance(tensor, torch.Tensor) and tensor.dtype == torch.float32
    np.testing.assert_allclose(tensor.numpy(), ri, atol=0.6e-4)
    padded = ri.copy()
    padded[:, :, :2] = 0.0  # zero padding from a crop is not mistaken for the RI range
    assert as_refractive_index(padded) is padded


def test_checks_do_not_copy_a_large_volume():
    # speed is measured in scripts/benchmark.py; here: no copy of a float32 RI volume
    big = np.full((1172, 1172, 48), MEDIUM, dtype=np.float32)  # a quarter of a full Tomocube stack
    big[500:700, 500:700, 10:30] = 1.38
    out, meta = check_tomogram(big, {"spacing": SPACING}, "big.tcf")
    assert out is big and meta["ri_scale_detected"] is False


@pytest.mark.parametrize("medium", [1.0, 1.333, 1.33749, 1.5, 1.8])
@pytest.mark.parametrize("wrap", [str, str.encode, lambda t: np.array(t.encode())])
def test_medium_tag_round_trip(medium, wrap):
    from osnet_monai.readers import format_medium_tag, parse_medium_ri

    assert parse_medium_ri([wrap(format_medium_tag(medium))]) == pytest.approx(round(medium, 4))


def test_medium_tag_refuses_implausible_values():
    from osnet_monai.readers import parse_medium_ri

    assert parse_medium_ri(["medium_ri=0.5", "medium_ri=9", "no tag"]) is None
