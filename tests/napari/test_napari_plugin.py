"""The napari plugin: manifest, reader, and the widget segmenting a TCF series in a worker thread.

Runs on napari's ``make_napari_viewer`` (a real viewer with its canvas) under a virtual display,
else on napari's ``ViewerModel`` with Qt offscreen (the widget's Qt parts run either way).
"""

from __future__ import annotations

import os
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

napari = pytest.importorskip("napari", reason="the napari plugin is the napari extra (pip install -e '.[napari]')")
pytest.importorskip("pytestqt", reason="the widget tests need pytest-qt")
try:
    import qtpy.QtWidgets  # noqa: F401
except ImportError as err:  # a Qt binding without the system's GL/xkb/fontconfig libraries
    pytest.skip(f"Qt cannot load here ({err})", allow_module_level=True)

from osnet_monai.phantoms import PRESETS, render_field, write_nifti, write_tcf  # noqa: E402
from osnet_monai.readers import file_stem, open_frames, supported_suffixes  # noqa: E402

SPACING = (0.15, 0.15, 0.3)
HAS_DISPLAY = os.environ.get("QT_QPA_PLATFORM") != "offscreen"  # set by conftest.py


@pytest.fixture(scope="module", autouse=True)
def _plugins():
    """Installed plugins registered, as napari's application does at start (the entry point names ours)."""
    from npe2 import PluginManager

    PluginManager.instance().discover()


@pytest.fixture(scope="module")
def series_tcf(tmp_path_factory) -> Path:
    """A 2-frame phantom series (96 x 80 x 24) as a Tomocube TCF file."""
    field = render_field(PRESETS["hx1"].replace(name="napari_small", field_shape=(96, 80, 24)), seed=1, frames=2)
    frames = [field.image[..., t].transpose(2, 1, 0) for t in range(2)]
    return write_tcf(tmp_path_factory.mktemp("napari") / "series.TCF", frames, SPACING, time_interval_s=60.0)


def test_manifest_is_valid_and_its_commands_import():
    from npe2 import PluginManifest

    manifest = PluginManifest.from_distribution("osnet-monai")  # the installed entry point finds it
    manifest.validate_imports()
    assert {w.display_name for w in manifest.contributions.widgets} == {"Segment nuclei"}


def test_reader_patterns_cover_every_supported_suffix():
    """One home for formats: the manifest's patterns follow the readers' registry."""
    from npe2 import PluginManifest

    patterns = {p.lower() for r in PluginManifest.from_distribution("osnet-monai").contributions.readers for p in r.filename_patterns}
    assert {f"*{s}" for s in supported_suffixes()} <= patterns
    assert "*.ome.zarr" in patterns


def test_reader_takes_only_what_the_package_reads(series_tcf, tmp_path):
    from osnet_monai.napari._reader import get_reader

    assert get_reader(str(series_tcf)) is not None
    assert get_reader(str(tmp_path / "photo.png")) is None
    assert get_reader(str(tmp_path)) is None  # a plain folder is another plugin's business


def test_series_opens_lazily_with_voxel_size_and_time_step(series_tcf):
    viewer = napari.components.ViewerModel()
    [layer] = viewer.open(str(series_tcf), plugin="osnet-monai")
    assert layer.name == "series" and layer.ndim == 4
    assert layer.data.shape == (2, 24, 80, 96)  # (T, Z, Y, X): time is the slider
    assert "dask" in type(layer.data).__module__  # frames are read when shown
    np.testing.assert_allclose(layer.scale, [60.0, 0.3, 0.15, 0.15])
    assert tuple(layer.axis_labels) == ("t", "z", "y", "x")
    frame, _ = open_frames(series_tcf).read(1)
    np.testing.assert_array_equal(np.asarray(layer.data[1]), frame.T)


@pytest.mark.parametrize("kind", ["nifti2d", "tiff3d"])  # NRRD/MHA take the TIFF path (read whole)
def test_other_formats_open_in_napari_order(tmp_path, kind):
    import tifffile

    volume = (1.337 + 0.02 * np.random.default_rng(0).random((30, 20, 5))).astype(np.float32)
    if kind == "nifti2d":
        path = tmp_path / "section.nii.gz"
        nib.save(nib.Nifti1Image(volume[:, :, 2], np.diag([*SPACING, 1.0])), path)
        expected, scale = volume[:, :, 2].T, SPACING[1::-1]
    else:
        path = tmp_path / "stack.tif"
        tifffile.imwrite(path, volume.transpose(2, 1, 0), imagej=True, resolution=(1 / SPACING[0], 1 / SPACING[1]),
                         metadata={"spacing": SPACING[2], "unit": "um", "axes": "ZYX"})
        expected, scale = volume.T, SPACING[::-1]
    [layer] = napari.components.ViewerModel().open(str(path), plugin="osnet-monai")
    np.testing.assert_allclose(np.asarray(layer.data), expected, rtol=1e-6)
    np.testing.assert_allclose(layer.scale, scale, rtol=1e-6)


def test_ome_zarr_output_opens_in_napari(tmp_path):
    pytest.importorskip("ome_zarr")
    from osnet_monai.inference.omezarr import StreamingOmeZarrWriter

    ri = (1.337 + 0.02 * np.random.default_rng(2).random((40, 30, 4))).astype(np.float32)
    labels = np.zeros(ri.shape, np.uint8)
    labels[5:15, 5:12, 1:3] = 3
    writer = StreamingOmeZarrWriter(tmp_path / "cell.ome.zarr", ri.shape, 1, SPACING)
    writer.write(ri, labels)
    layers = napari.components.ViewerModel().open(str(writer.close()), plugin="osnet-monai")
    by_name = {layer.name: layer for layer in layers}
    assert type(by_name["cell"]).__name__ == "Image" and type(by_name["cell nucleus"]).__name__ == "Labels"
    np.testing.assert_array_equal(np.asarray(by_name["cell nucleus"].data), labels.T)
    np.testing.assert_allclose(by_name["cell"].scale, SPACING[::-1])


def test_divisions_become_the_tracks_graph():
    from osnet_monai.napari._layers import tracks_from_rows

    rows = [{"frame": t, "nucleus_id": i, "parent_id": p, "centroid_x_um": 3.0 * i, "centroid_y_um": 1.5, "centroid_z_um": 0.6}
            for t, i, p in [(0, 1, 0), (1, 1, 0), (2, 2, 1), (2, 3, 1)]]  # nucleus 1 divides into 2 and 3
    data, graph = tracks_from_rows(rows, SPACING, is_2d=False)
    assert graph == {2: [1], 3: [1]}
    np.testing.assert_allclose(data[-1], [3, 2, 2.0, 10.0, 60.0])  # [track, frame, z, y, x] in voxels
    layer = napari.components.ViewerModel().add_tracks(data, graph=graph)
    assert layer.graph == {2: [1], 3: [1]}


@pytest.fixture
def viewer(request, qtbot):
    """napari's own test viewer when a display is there, else the viewer model (no canvas)."""
    if HAS_DISPLAY:
        return request.getfixturevalue("make_napari_viewer")()
    return napari.components.ViewerModel()


def _widget(viewer, qtbot):
    from osnet_monai.napari._widget import SegmentWidget

    if HAS_DISPLAY:  # docked the way a user opens it: Plugins > Segment nuclei
        _, widget = viewer.window.add_plugin_dock_widget("osnet-monai", "Segment nuclei")
        return widget
    widget = SegmentWidget(viewer)
    qtbot.addWidget(widget.native)
    return widget


@pytest.mark.slow
def test_widget_segments_in_a_worker_and_adds_labels_tracks_and_table(viewer, qtbot, series_tcf):
    [image] = viewer.open(str(series_tcf), plugin="osnet-monai")
    widget = _widget(viewer, qtbot)
    assert widget._image.value is image  # the open image is offered
    widget._button.native.click()
    # the click returned before any result: the model runs in the worker's thread, not the viewer's
    assert widget.worker is not None and not widget._button.enabled and len(viewer.layers) == 1
    qtbot.waitUntil(lambda: widget._button.enabled, timeout=600_000)  # the worker's finished signal
    names = [layer.name for layer in viewer.layers]
    assert names == ["series", "series cells", "series nuclei", "series tracks"], (names, widget._status.value)
    cells, nuclei, tracks = (viewer.layers[n] for n in names[1:])
    for layer in (cells, nuclei, tracks):  # on the image's grid, axes and units
        assert list(layer.scale) == list(image.scale) and tuple(layer.units) == tuple(image.units)
        assert tuple(layer.axis_labels) == tuple(image.axis_labels)
    assert nuclei.data.shape == image.data.shape

    out = Path(widget._status.value.split("outputs in ")[1])
    mask = np.asarray(nib.load(out / f"{file_stem(series_tcf)}_nucleus.nii.gz").dataobj)
    np.testing.assert_array_equal(nuclei.data, mask.transpose(3, 2, 1, 0))  # the engine's own mask
    inside = nuclei.data > 0
    assert set(np.unique(cells.data)) <= set(np.unique(nuclei.data))  # a cell carries its nucleus's id
    assert (cells.data[inside] == nuclei.data[inside]).mean() > 0.99

    import csv

    rows = list(csv.DictReader(open(out / "series_measurements.csv")))
    assert len(rows) > 0
    assert len(tracks.data) == len(rows)  # one track point per nucleus per frame
    assert {int(r["nucleus_id"]) for r in rows} == set(np.unique(tracks.data[:, 0]).astype(int))
    table = widget.table
    assert table.shape == (len(rows), len(rows[0])) and list(table.column_headers) == list(rows[0])
    if HAS_DISPLAY:
        assert viewer.screenshot(canvas_only=True).std() > 0  # the canvas draws the layers


def test_widget_reports_an_image_it_cannot_segment(viewer, qtbot):
    viewer.add_image(np.zeros((2, 2, 3, 4, 5), np.float32), name="five_d")
    widget = _widget(viewer, qtbot)
    assert widget.segment() is not None
    qtbot.waitUntil(lambda: widget._button.enabled, timeout=60_000)
    assert widget._status.value.startswith("Not segmented: the image has 5 dimensions")
    assert [layer.name for layer in viewer.layers] == ["five_d"]
