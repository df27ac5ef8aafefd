"""OME-Zarr output: written frame by frame, read back with ome-zarr-py and with the napari plugin's reader."""

from __future__ import annotations

import sys

import numpy as np
import pytest

pytest.importorskip("ome_zarr", reason="OME-Zarr output is the ome-zarr extra (pip install -e '.[ome-zarr]')")

from ome_zarr.io import parse_url  # noqa: E402
from ome_zarr.reader import Label, Reader  # noqa: E402

from osnet_monai.inference.omezarr import OME_ZARR_MISSING, StreamingOmeZarrWriter, pyramid_factors  # noqa: E402

SPACING = (0.2, 0.25, 0.5)  # x, y, z: distinct, so a swapped axis shows


def _series(shape=(300, 270, 6), frames=3, seed=0):
    """RI frames (X, Y, Z) and labels with a nucleus that moves, one per frame."""
    rng = np.random.default_rng(seed)
    out = []
    for t in range(frames):
        ri = (1.337 + 0.02 * rng.random(shape)).astype(np.float32)
        labels = np.zeros(shape, np.uint8)
        labels[20 + 10 * t: 60 + 10 * t, 30:90, 1:4] = 1
        labels[150:200, 100:140, 2:5] = 2
        out.append((ri, labels))
    return out


def _nodes(path):
    nodes = list(Reader(parse_url(str(path), mode="r"))())
    image = next(n for n in nodes if n.data and n.load(Label) is None)
    labels = {n.metadata["name"]: n for n in nodes if n.data and n.load(Label) is not None}
    return image, labels


def test_series_round_trip_through_ome_zarr_py(tmp_path):
    frames = _series()
    path = tmp_path / "cell.ome.zarr"
    writer = StreamingOmeZarrWriter(path, frames[0][0].shape, len(frames), SPACING, time_step_s=60.0, attributes={"medium_ri": 1.337})
    for ri, labels in frames:
        writer.write(ri, labels)
    assert not path.exists()  # nothing under the final name until every frame is in
    assert writer.close() == path
    assert [p.name for p in tmp_path.iterdir()] == ["cell.ome.zarr"]  # no temporary left

    image, labels = _nodes(path)
    assert [a["name"] for a in image.metadata["axes"]] == ["t", "z", "y", "x"]
    assert [a.get("unit") for a in image.metadata["axes"]] == ["second", "micrometer", "micrometer", "micrometer"]
    scales = [next(t["scale"] for t in level if t["type"] == "scale") for level in image.metadata["coordinateTransformations"]]
    assert scales[0] == pytest.approx([60.0, 0.5, 0.25, 0.2])  # time step and voxel size, slowest axis first
    assert scales[1] == pytest.approx([60.0, 0.5, 0.5, 0.4])  # x-y halved, z kept
    assert [level.shape for level in image.data] == [(3, 6, 270, 300), (3, 6, 135, 150)]
    for t, (ri, mask) in enumerate(frames):
        np.testing.assert_array_equal(np.asarray(image.data[0][t]), ri.T)
        np.testing.assert_array_equal(np.asarray(labels["nucleus"].data[0][t]), mask.T)
    level1 = np.asarray(labels["nucleus"].data[1])
    assert set(np.unique(level1)) == {0, 1, 2}  # nearest-neighbour labels: no blended ids

    import zarr

    root = zarr.open_group(str(path), mode="r")
    assert root.attrs["ome"]["version"] == "0.5"
    assert root.attrs["osnet_monai"] == {"medium_ri": 1.337}
    assert root["labels"].attrs["ome"]["labels"] == ["nucleus"]
    assert root["labels/nucleus"].attrs["ome"]["image-label"]["source"] == {"image": "../../"}
    assert root["s0"].chunks[0] == 1  # one frame per chunk: a frame is written without touching the others


def test_section_2d_has_no_t_or_z_axis(tmp_path):
    ri = (1.337 + 0.01 * np.random.default_rng(1).random((40, 30))).astype(np.float32)
    labels = np.zeros((40, 30), np.uint8)
    labels[5:15, 5:20] = 1
    writer = StreamingOmeZarrWriter(tmp_path / "s.ome.zarr", ri.shape, 1, SPACING[:2])
    writer.write(ri, labels)
    image, found = _nodes(writer.close())
    assert [a["name"] for a in image.metadata["axes"]] == ["y", "x"]
    assert len(image.data) == 1  # too small for a pyramid
    np.testing.assert_array_equal(np.asarray(found["nucleus"].data[0]), labels.T)


def test_incomplete_store_is_discarded_and_wrong_frames_refused(tmp_path):
    frames = _series(shape=(20, 20, 3), frames=2)
    writer = StreamingOmeZarrWriter(tmp_path / "x.ome.zarr", (20, 20, 3), 2, SPACING)
    with pytest.raises(ValueError, match="frame shape"):
        writer.write(frames[0][0][:10], frames[0][1])
    writer.write(*frames[0])
    with pytest.raises(ValueError, match="1 of 2 frames"):
        writer.close()
    assert list(tmp_path.iterdir()) == []


def test_track_ids_above_255_are_kept(tmp_path):
    """Label ids are track ids, which pass 255 in a long series with divisions."""
    ri = _series(shape=(20, 20, 3), frames=1)[0][0]
    labels = np.zeros(ri.shape, np.int32)
    labels[2:8, 2:8, :] = 300
    writer = StreamingOmeZarrWriter(tmp_path / "x.ome.zarr", ri.shape, 1, SPACING)
    writer.write(ri, labels)
    writer.close()
    _, found = _nodes(tmp_path / "x.ome.zarr")
    assert int(np.asarray(found["nucleus"].data[0]).max()) == 300


def test_close_replaces_an_earlier_store(tmp_path):
    path = tmp_path / "x.ome.zarr"
    ri = _series(shape=(20, 20, 3), frames=1)[0][0]
    for value in (1, 2):
        writer = StreamingOmeZarrWriter(path, ri.shape, 1, SPACING)
        writer.write(ri, np.full(ri.shape, value, np.uint8))
        writer.close()
    _, found = _nodes(path)
    assert int(np.asarray(found["nucleus"].data[0]).max()) == 2
    assert [p.name for p in tmp_path.iterdir()] == ["x.ome.zarr"]


def test_pyramid_stops_above_min_size():
    assert pyramid_factors((448, 448)) == [2]
    assert pyramid_factors((2048, 1024)) == [2, 4, 8]
    assert pyramid_factors((100, 900)) == []


def test_missing_package_is_one_clear_line(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ome_zarr", None)  # what an environment without the extra looks like to find_spec
    with pytest.raises(ImportError) as err:
        StreamingOmeZarrWriter(tmp_path / "x.ome.zarr", (4, 4, 2), 1, SPACING)
    assert str(err.value) == OME_ZARR_MISSING and "pip install" in OME_ZARR_MISSING


def test_napari_plugin_reader_gives_image_and_labels_layers(tmp_path):
    """The plugin's reader, without Qt: the layers napari would get from the store."""
    from osnet_monai.napari._layers import read_ome_zarr

    frames = _series(frames=2)
    writer = StreamingOmeZarrWriter(tmp_path / "cell.ome.zarr", frames[0][0].shape, 2, SPACING, time_step_s=30.0)
    for ri, labels in frames:
        writer.write(ri, labels)
    layers = read_ome_zarr(writer.close())
    kinds = {kwargs["name"]: (kind, data, kwargs) for data, kwargs, kind in layers}
    assert sorted(kinds) == ["cell", "cell nucleus"]
    kind, data, kwargs = kinds["cell"]
    assert kind == "image" and kwargs["multiscale"] and kwargs["scale"] == pytest.approx([30.0, 0.5, 0.25, 0.2])
    kind, data, kwargs = kinds["cell nucleus"]
    assert kind == "labels"
    np.testing.assert_array_equal(np.asarray(data[0][1]), frames[1][1].T)
