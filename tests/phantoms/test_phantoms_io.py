"""Tests of the phantom writers: NIfTI, TCF, datalist, determinism, default data set, CLI."""

from __future__ import annotations

import json
import pathlib

import nibabel as nib
import numpy as np
import pytest

from osnet_monai.phantoms import PRESETS, ensure_default_dataset, generate_dataset, render_field, write_tcf
from osnet_monai.phantoms import dataset as dataset_module

TINY = PRESETS["hx1"].replace(name="tiny", field_shape=(64, 64, 16), dtype="uint16")
TINYF = PRESETS["ht2h"].replace(name="tinyf", field_shape=(80, 80, 24))


@pytest.fixture
def tiny(monkeypatch):
    monkeypatch.setitem(PRESETS, "tiny", TINY)
    monkeypatch.setitem(PRESETS, "tinyf", TINYF)
    return "tiny"


def _files(root: pathlib.Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("frames", [1, 3])
def test_dataset_layout_and_nifti_headers(tmp_path, tiny, frames):
    path = generate_dataset(tmp_path, n=3, frames=frames, seed=5, preset=["tiny", "tinyf"], workers=1)
    assert path == tmp_path / "datalist.json"
    d = json.loads(path.read_text())
    assert {"name", "description", "styles", "training", "validation"} <= set(d)
    entries = d["training"] + d["validation"]
    assert len(entries) == 3 and len(d["validation"]) == 1
    assert not {e["cell_id"] for e in d["training"]} & {e["cell_id"] for e in d["validation"]}
    for e in entries:
        assert {"image", "label", "cell_id", "medium_ri", "style"} <= set(e)
        assert pathlib.Path(e["image"]).name == pathlib.Path(e["label"]).name
        img, lab = nib.load(tmp_path / e["image"]), nib.load(tmp_path / e["label"])
        p = PRESETS[e["style"]]
        expected = p.field_shape + ((frames,) if frames > 1 else ())
        assert img.shape == lab.shape == expected
        np.testing.assert_allclose(img.affine, np.diag(list(p.voxel_size_um) + [1.0]), rtol=1e-6)
        np.testing.assert_allclose(lab.affine, img.affine)
        assert img.header.get_xyzt_units() == ("micron", "sec")
        assert img.header["pixdim"][4] == pytest.approx(p.time_step_s)
        assert img.header["descrip"].tobytes().rstrip(b"\0") == b"medium_ri=%.4f" % e["medium_ri"]
        assert lab.get_data_dtype() == np.uint8 and set(np.unique(np.asarray(lab.dataobj))) <= {0, 1}
        if p.dtype == "uint16":
            assert img.get_data_dtype() == np.uint16
            assert img.dataobj.slope == 1.0 and img.dataobj.inter == 0.0
            raw = np.asarray(img.dataobj)
            assert 13000 < np.median(raw) < 14000  # RI x 10,000 around the medium
        else:
            assert img.get_data_dtype() == np.float32
            assert e["medium_ri"] - 0.01 < np.median(np.asarray(img.dataobj)) < 1.40


def test_written_image_equals_rendered_field(tmp_path, tiny):
    generate_dataset(tmp_path, n=1, frames=1, seed=3, preset="tinyf", workers=1, validation_fraction=0)
    f = render_field("tinyf", seed=3, index=0)
    img = np.asarray(nib.load(tmp_path / "images/tinyf-s3-0000.nii.gz").dataobj)
    lab = np.asarray(nib.load(tmp_path / "labels/tinyf-s3-0000.nii.gz").dataobj)
    np.testing.assert_array_equal(img, f.image)
    np.testing.assert_array_equal(lab, f.label)


def test_nonneg_fill_switch_overrides_the_preset(tmp_path, tiny):
    """TINYF (ht2h) fills the missing cone by default; switched off, the same field renders without it."""
    generate_dataset(tmp_path / "on", n=1, seed=3, preset="tinyf", workers=1, validation_fraction=0)
    off = generate_dataset(tmp_path / "off", n=1, seed=3, preset="tinyf", workers=1, validation_fraction=0, nonneg_fill=False)
    with_fill = np.asarray(nib.load(tmp_path / "on/images/tinyf-s3-0000.nii.gz").dataobj)
    without = np.asarray(nib.load(tmp_path / "off/images/tinyf-s3-0000.nii.gz").dataobj)
    expected = render_field(TINYF.replace(nonneg_fill=False), seed=3, index=0).image
    np.testing.assert_array_equal(without, expected)
    medium = TINYF.medium_ri
    assert (without < medium - 0.002).sum() > (with_fill < medium - 0.002).sum()  # undershoot the fill removes
    assert json.loads(off.read_text())["nonneg_fill"] is False


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path, tiny):
    a = generate_dataset(tmp_path / "a", n=2, frames=2, seed=11, preset="tiny", tcf=True, workers=1).parent
    b = generate_dataset(tmp_path / "b", n=2, frames=2, seed=11, preset="tiny", tcf=True, workers=2).parent
    c = generate_dataset(tmp_path / "c", n=2, frames=2, seed=12, preset="tiny", workers=1).parent
    fa, fb = _files(a), _files(b)
    assert fa == fb
    assert (a / "images/tiny-s11-0000.nii.gz").read_bytes() != (c / "images/tiny-s12-0000.nii.gz").read_bytes()
    assert not list(a.rglob("*.tmp"))


@pytest.mark.parametrize("uint16", [True, False])
def test_tcf_opens_with_the_tcfile_package(tmp_path, uint16):
    TCFile = pytest.importorskip("TCFile")
    rng = np.random.default_rng(0)
    frames = (1.337 + 0.04 * rng.random((3, 12, 20, 16))).astype(np.float32)  # (T, Z, Y, X)
    path = write_tcf(tmp_path / "x.TCF", frames, (0.1, 0.12, 0.2), 600.0, uint16=uint16)
    tcf = TCFile.TCFile(str(path), "3D")
    assert len(tcf) == 3
    assert list(tcf.data_shape) == [12, 20, 16]
    np.testing.assert_allclose(tcf.data_resolution, [0.2, 0.12, 0.1])
    for t in range(3):
        got = np.asarray(tcf[t])
        assert got.shape == (12, 20, 16)
        np.testing.assert_allclose(got, frames[t], atol=5.1e-5 if uint16 else 0)
    import h5py

    with h5py.File(path) as f:
        g = f["Data/3D"]
        assert g.attrs["TimeInterval"][0] == 600.0 and g.attrs["DataCount"][0] == 3
        assert g["000000"].dtype == (np.uint16 if uint16 else np.float32)
        assert g.attrs["RIMin"][0] <= g.attrs["RIMax"][0]


def test_dataset_tcf_matches_nifti(tmp_path, tiny):
    TCFile = pytest.importorskip("TCFile")
    generate_dataset(tmp_path, n=1, frames=2, seed=2, preset="tinyf", tcf=True, workers=1, validation_fraction=0)
    img = np.asarray(nib.load(tmp_path / "images/tinyf-s2-0000.nii.gz").dataobj)  # (X, Y, Z, T)
    tcf = TCFile.TCFile(str(tmp_path / "tcf/tinyf-s2-0000.TCF"), "3D")
    assert len(tcf) == 2
    np.testing.assert_array_equal(np.asarray(tcf[1]), img[..., 1].transpose(2, 1, 0))


@pytest.mark.parametrize(
    "kwargs, word",
    [({"n": 0}, "n"), ({"n": 2.5}, "n"), ({"frames": 0}, "frames"), ({"preset": "nope"}, "preset"),
     ({"preset": ["ht2h", "nope"]}, "preset"), ({"validation_fraction": 1.0}, "validation_fraction")],
)
def test_bad_arguments_raise_value_error(tmp_path, kwargs, word):
    args = {"n": 1, "frames": 1, "preset": "ht2h"} | kwargs
    with pytest.raises(ValueError, match=word):
        generate_dataset(tmp_path, **args)
    assert not (tmp_path / "datalist.json").exists()


def test_cli(tmp_path, tiny, capsys):
    from osnet_monai.cli import main

    assert main(["phantoms", str(tmp_path / "o"), "--n", "2", "--frames", "1", "--seed", "1", "--preset", "tiny",
                 "--workers", "1", "--tcf"]) == 0
    d = json.loads((tmp_path / "o/datalist.json").read_text())
    assert d["styles"] == ["tiny"] and (tmp_path / "o/tcf/tiny-s1-0000.TCF").is_file()
    assert main(["phantoms", str(tmp_path / "p"), "--n", "0"]) == 2
    assert main(["phantoms", str(tmp_path / "p"), "--preset", "bogus"]) == 2
    assert "preset" in capsys.readouterr().out


def test_ensure_default_dataset_is_idempotent_and_atomic(tmp_path, tiny, monkeypatch):
    spec = dict(dataset_module.DEFAULT_DATASET, parts=[("tiny", 2, 1), ("tinyf", 1, 2)])
    monkeypatch.setattr(dataset_module, "DEFAULT_DATASET", spec)
    cache = tmp_path / "cache"
    path = ensure_default_dataset(cache, workers=1)
    d = json.loads(path.read_text())
    assert len(d["training"]) + len(d["validation"]) == 3 and d["nucleus_sections"] > 0
    stamp = path.stat().st_mtime_ns
    assert ensure_default_dataset(cache, workers=1) == path and path.stat().st_mtime_ns == stamp
    # an incomplete set is regenerated
    first = d["training"][0]["image"]
    (cache / first).unlink()
    ensure_default_dataset(cache, workers=1)
    assert (cache / first).is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache"]  # no temp folders left


def test_default_dataset_spec_is_large_enough_and_holds_out_cross_lab():
    spec = dataset_module.DEFAULT_DATASET
    presets = {p for p, _, _ in spec["parts"]}
    assert "cross_lab" not in presets and len(presets) >= 2
    assert any(frames > 1 for _, _, frames in spec["parts"])
    volumes = sum(count * frames for _, count, frames in spec["parts"])
    assert volumes >= 50  # about 20-30 nucleus sections each -> well over 1,000 sections


@pytest.mark.parametrize("name, gzipped", [("field.nii.gz", True), ("field.nii", False), ("FIELD.NII.GZ", True)])
def test_write_nifti_compresses_only_gz_names(tmp_path, name, gzipped):
    """A ``.nii`` name gets plain NIfTI that nibabel reads (and can memory-map); ``.nii.gz`` gets gzip."""
    from osnet_monai.phantoms import write_nifti

    array = np.arange(4 * 5 * 3, dtype=np.float32).reshape(4, 5, 3)
    path = write_nifti(tmp_path / name, array, (0.1, 0.1, 0.2), medium_ri=1.337)
    assert (path.read_bytes()[:2] == b"\x1f\x8b") is gzipped
    assert np.array_equal(np.asarray(nib.load(path).dataobj), array)
