"""``segment --format ome-zarr`` and the run report: the same labels as the NIfTI run, in one store
ome-zarr-py reads back; report.html and run.json written unless ``--no-report``."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest

pytest.importorskip("ome_zarr", reason="OME-Zarr output is the ome-zarr extra (pip install -e '.[ome-zarr]')")

from ome_zarr.io import parse_url  # noqa: E402
from ome_zarr.reader import Label, Reader  # noqa: E402

from osnet_monai.cli import main  # noqa: E402
from osnet_monai.phantoms import PRESETS, render_field, write_nifti  # noqa: E402

SPACING = (0.15, 0.15, 0.3)


@pytest.fixture(scope="module")
def runs(tmp_path_factory, untrained_checkpoint):
    """One 2-frame series segmented twice with the same model: NIfTI labels, then OME-Zarr without the report."""
    tmp = tmp_path_factory.mktemp("formats")
    fields = [render_field(PRESETS["hx1"].replace(name="s", field_shape=(96, 80, 24)), seed=s).image for s in (0, 1)]
    image = write_nifti(tmp / "series.nii.gz", np.stack(fields, -1), SPACING, time_step_s=30.0, medium_ri=PRESETS["hx1"].medium_ri)
    common = [str(image), "--model", str(untrained_checkpoint), "--threshold", "0.3", "--no-figures"]
    assert main(["segment", *common, "-o", str(tmp / "nifti")]) == 0
    assert main(["segment", *common, "-o", str(tmp / "zarr"), "--format", "ome-zarr", "--no-report"]) == 0
    return tmp


def test_ome_zarr_holds_the_ri_and_the_nifti_runs_labels(runs):
    nodes = list(Reader(parse_url(str(runs / "zarr" / "series.ome.zarr"), mode="r"))())
    image = next(n for n in nodes if n.data and n.load(Label) is None)
    labels = {n.metadata["name"]: n for n in nodes if n.data and n.load(Label) is not None}
    assert set(labels) == {"nucleus", "cell"}
    assert [a["name"] for a in image.metadata["axes"]] == ["t", "z", "y", "x"]
    scale = next(t["scale"] for t in image.metadata["coordinateTransformations"][0] if t["type"] == "scale")
    assert scale == pytest.approx([30.0, 0.3, 0.15, 0.15])
    for kind in ("nucleus", "cell"):
        nifti = np.asarray(nib.load(runs / "nifti" / f"series_{kind}.nii.gz").dataobj)  # (X, Y, Z, T)
        np.testing.assert_array_equal(np.asarray(labels[kind].data[0]), nifti.transpose(3, 2, 1, 0))
    assert not (runs / "zarr" / "series_nucleus.nii.gz").exists()
    assert (runs / "zarr" / "series_measurements.csv").read_text() == (runs / "nifti" / "series_measurements.csv").read_text()


def test_report_and_run_record_written_unless_asked_not_to(runs):
    html = (runs / "nifti" / "report.html").read_text()
    assert "series" in html and "http://" not in html.replace("http://www.w3.org", "")
    record = json.loads((runs / "nifti" / "run.json").read_text())
    assert record["settings"]["output_format"] == "nifti" and record["settings"]["threshold"] == 0.3
    assert record["inputs"] == [str(runs / "series.nii.gz")] and record["failures"] == {}
    assert not (runs / "zarr" / "report.html").exists() and not (runs / "zarr" / "run.json").exists()
