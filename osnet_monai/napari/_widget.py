"""The plugin's dock widget: segment the chosen image layer, then show labels, tracks and measurements."""

from __future__ import annotations

from typing import TYPE_CHECKING

from magicgui.widgets import CheckBox, ComboBox, Container, FileEdit, Label, PushButton, Table
from napari.layers import Image

from osnet_monai.napari._layers import Segmentation, segment_image, segmentation_layers

if TYPE_CHECKING:
    import napari

__all__ = ["SegmentWidget"]


class SegmentWidget(Container):
    """Segments nuclei in an image layer with the bundle's model (the shipped one unless a bundle
    folder or a checkpoint is chosen), in a worker thread so the viewer stays responsive; adds the
    nucleus and cell labels and, for a series, the nucleus tracks, and fills the measurements table
    (one row per nucleus per frame; click a column header to sort).

    Args:
        viewer: the napari viewer (napari passes it; any ``ViewerModel`` works).
    """

    def __init__(self, viewer: napari.viewer.Viewer) -> None:
        self._viewer = viewer
        self._image = ComboBox(label="image", choices=self._image_layers)
        self._bundle = FileEdit(label="bundle", mode="d", nullable=True, value=None,
                                tooltip="bundle folder (configs/inference.json); empty: the shipped bundle")
        self._model = FileEdit(label="model", mode="r", filter="*.pt", nullable=True, value=None,
                               tooltip="checkpoint (.pt); empty: the bundle's models/model.pt")
        self._tta = CheckBox(text="flip test-time augmentation", value=False)
        self._button = PushButton(text="Segment")
        self._status = Label(value="")
        self.table = Table(value=[])
        self.table.native.setSortingEnabled(True)
        self.worker = None
        super().__init__(widgets=[self._image, self._bundle, self._model, self._tta, self._button, self._status, self.table])
        self._button.changed.connect(self.segment)
        for event in (viewer.layers.events.inserted, viewer.layers.events.removed, viewer.layers.events.reordered):
            event.connect(self._image.reset_choices)
        self._image.reset_choices()

    def _image_layers(self, _widget=None) -> list[tuple[str, Image]]:
        return [(layer.name, layer) for layer in self._viewer.layers if isinstance(layer, Image)]

    def segment(self):
        """Starts segmenting the chosen layer; returns the worker (None when no image is open)."""
        from napari.qt.threading import thread_worker  # Qt itself: imported when a widget runs, not with the module

        layer = self._image.value
        if layer is None:
            self._status.value = "Open a tomogram first."
            return None
        data = layer.data[0] if layer.multiscale else layer.data
        self._button.enabled = False
        self._status.value = f"Segmenting {layer.name} ..."
        # connected at creation: the thread starts at once, and an error goes to the status line, not up
        self.worker = thread_worker(segment_image, connect={
            "returned": lambda result: self._show(result, layer),
            "errored": self._failed,
            "finished": lambda: setattr(self._button, "enabled", True),
        })(data, tuple(layer.scale), dict(layer.metadata), name=layer.name,
           model=self._model.value, bundle=self._bundle.value, tta=self._tta.value)
        return self.worker

    def _show(self, result: Segmentation, layer: Image) -> None:
        for data, kwargs, kind in segmentation_layers(result, layer.scale, layer.axis_labels, layer.units):
            getattr(self._viewer, f"add_{kind}")(data, **kwargs)
        self.table.native.setSortingEnabled(False)  # filling a sorting table scrambles rows
        self.table.value = [{c: row.get(c, "") for c in result.columns} for row in result.rows]
        self.table.native.setSortingEnabled(True)
        nuclei = len({row["nucleus_id"] for row in result.rows})
        self._status.value = f"{result.name}: {nuclei} nuclei, outputs in {result.output_dir}"

    def _failed(self, error: Exception) -> None:
        self._status.value = f"Not segmented: {error}"
