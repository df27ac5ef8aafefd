"""The simulated nuclear stain channel, its TCF layout, its reader and ``osnet-monai fl-labels``."""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys

import h5py
import nibabel as nib
import numpy as np
import pytest

from osnet_monai.fl_labels import fl_labels, fluorescence_mask, fluorescence_on_ri_grid
from osnet_monai.phantoms import generate_dataset, write_tcf
from osnet_monai.phantoms.fluorescence import draw_stain, render_fluorescence
from osnet_monai.readers import InputError, read_tcf_fluorescence, tcf_fluorescence_channels


def _dice(a, b) -> float:
    return 2 * (a & b).sum() / max(a.sum() + b.sum(), 1)


@pytest.fixture(scope="module")
def stained(tmp_path_factory) -> pathlib.Path:
    """Two classic-style fields (one a 2-frame series) with the stain recorded, and the same without."""
    root = tmp_path_factory.mktemp("stained")
    for frames in (1, 2):
        generate_dataset(root / f"with{frames}", n=1, frames=frames, seed=3, preset="classic", fluorescence=True,
                         workers=1, validation_fraction=0)
    generate_dataset(root / "without", n=1, seed=3, preset="classic", tcf=True, workers=1, validation_fraction=0)
    return root


def test_the_stain_changes_no_ri_and_no_label(stained):
    for part in ("images", "labels"):
        name = f"{part}/classic-s3-0000.nii.gz"
        assert (stained / "with1" / name).read_bytes() == (stained / "without" / name).read_bytes()
    with h5py.File(stained / "with1/tcf/classic-s3-0000.TCF") as f, h5py.File(stained / "without/tcf/classic-s3-0000.TCF") as g:
        np.testing.assert_array_equal(f["Data/3D/000000"][()], g["Data/3D/000000"][()])
        assert "3DFL" in f["Data"] and "3DFL" not in g["Data"]


def test_the_tcf_layout_is_the_instruments(stained):
    entry = json.loads((stained / "with2/datalist.json").read_text())["training"][0]
    path = stained / "with2" / entry["tcf"]
    with h5py.File(path) as f:
        group = f["Data/3DFL"]
        assert group.attrs["DataCount"][0] == 2 and group.attrs["Channels"][0] == 1
        assert group["CH0/000001"].dtype == np.uint16
        ri_z, fl_z = f["Data/3D"].attrs["ResolutionZ"][0], group.attrs["ResolutionZ"][0]
        assert np.isclose(fl_z / ri_z, entry["fluorescence"]["z_step_factor"])
        assert np.isclose(group.attrs["OffsetZ"][0], entry["fluorescence"]["recorded_offset_z_um"], atol=1e-4)
    TCFile = pytest.importorskip("TCFile")
    np.testing.assert_array_equal(np.asarray(TCFile.TCFile(str(path), "3DFL")[1]), read_tcf_fluorescence(path, 1)[0].T)


def test_bleaching_dims_later_frames(stained):
    path = stained / "with2/tcf/classic-s3-0000.TCF"
    first, second = (read_tcf_fluorescence(path, t)[0] for t in (0, 1))
    background = np.median(first)
    assert np.percentile(second, 99.9) - background < np.percentile(first, 99.9) - background


def test_reader_refuses_in_one_line(stained, tmp_path):
    plain = stained / "without/tcf/classic-s3-0000.TCF"
    assert tcf_fluorescence_channels(plain) == ()
    with pytest.raises(InputError, match=r"classic-s3-0000\.TCF: no fluorescence channel recorded"):
        read_tcf_fluorescence(plain)
    stained_file = stained / "with1/tcf/classic-s3-0000.TCF"
    assert tcf_fluorescence_channels(stained_file) == ("CH0",)
    with pytest.raises(InputError, match="no fluorescence channel CH3"):
        read_tcf_fluorescence(stained_file, channel="CH3")
    with pytest.raises(InputError, match="time point 5 asked for"):
        read_tcf_fluorescence(stained_file, 5)


@pytest.mark.parametrize("factor, offset_um", [(1, 0.0), (2, 0.0), (3, 0.35), (2, -0.5)])
def test_resampling_onto_the_ri_grid_honours_step_and_offset(factor, offset_um):
    """A stain linear in z lands on the RI grid exactly where the recorded offset says."""
    dz, n_z = 0.2, 30
    fl_z = (np.arange(n_z // factor) + 0.5) * dz * factor + offset_um  # physical centres in the RI frame
    fl = np.broadcast_to(fl_z, (4, 5, len(fl_z))).astype(np.float32)
    on_grid = fluorescence_on_ri_grid(fl, {"spacing": (0.1, 0.1, dz * factor), "offset_z_um": offset_um}, (4, 5, n_z),
                                      (0.1, 0.1, dz))
    ri_z = (np.arange(n_z) + 0.5) * dz
    inside = (ri_z >= fl_z[0]) & (ri_z <= fl_z[-1])
    np.testing.assert_allclose(on_grid[0, 0, inside], ri_z[inside], atol=1e-5)


def test_mask_of_a_blurred_sphere_is_the_sphere():
    spacing = (0.2, 0.2, 0.2)
    grid = np.mgrid[:60, :60, :40].astype(np.float32)
    truth = ((grid[0] - 30) ** 2 + (grid[1] - 30) ** 2 + (grid[2] - 20) ** 2) < 12**2
    rng = np.random.default_rng(0)
    stain = draw_stain(rng)
    stain = type(stain)(**{**stain.__dict__, "z_step_factor": 1, "offset_um": (0.0, 0.0, 0.0), "nucleolus_holes": 0})
    counts = render_fluorescence(truth.astype(np.uint8), spacing, stain, rng).counts[0].transpose(2, 1, 0)
    assert _dice(fluorescence_mask(counts, spacing), truth) > 0.9
    assert not fluorescence_mask(np.full((20, 20, 8), 100.0), spacing).any()


def test_fl_labels_end_to_end(stained, tmp_path):
    """Masks near the truth on the RI grid, a datalist pairing them with the TCF files, a file without a
    stain refused in one line while the others are written, exit status 1."""
    import shutil

    series = shutil.copy(stained / "with2/tcf/classic-s3-0000.TCF", tmp_path / "series.TCF")
    files = [stained / "with1/tcf/classic-s3-0000.TCF", series]
    unstained = shutil.copy(stained / "without/tcf/classic-s3-0000.TCF", tmp_path / "plain.TCF")
    same_name = stained / "with2/tcf/classic-s3-0000.TCF"
    out = tmp_path / "fl"
    done = subprocess.run([sys.executable, "-m", "osnet_monai.cli", "fl-labels", *map(str, files),
                           str(unstained), str(same_name), "-o", str(out)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        f"{unstained}: no fluorescence channel recorded (/Data/3DFL is missing)",
        f"{same_name}: another input is also named classic-s3-0000; its mask would be overwritten",
    ]
    datalist = json.loads((out / "datalist.json").read_text())
    entries = datalist["training"] + datalist["validation"]
    assert len(entries) == 2
    from osnet_monai.transforms import LoadTomogramd

    for entry, folder in zip(sorted(entries, key=lambda e: e["frames"]), ("with1", "with2")):
        label = nib.load(out / entry["label"])
        truth = np.asarray(nib.load(stained / folder / "labels/classic-s3-0000.nii.gz").dataobj) > 0
        mask = np.asarray(label.dataobj) > 0
        assert mask.shape == truth.shape
        assert _dice(mask, truth) > 0.7
        image = LoadTomogramd(keys="image")({"image": str((out / entry["image"]).resolve())})["image"]
        assert tuple(image.shape) == truth.shape
        np.testing.assert_allclose(label.affine, np.asarray(image.affine), atol=1e-6)


def test_fl_labels_with_no_usable_file_says_so(tmp_path):
    frames = np.full((1, 4, 8, 8), 1.337, np.float32)
    plain = write_tcf(tmp_path / "plain.TCF", frames, (0.2, 0.2, 0.2))
    datalist, errors = fl_labels([plain], tmp_path / "out")
    assert len(errors) == 1 and not datalist.exists()
