"""napari plugin (``pip install "osnet-monai[napari]"``; manifest ``napari.yaml``).

- reader (:mod:`._reader`): TCF, NIfTI, NRRD/MetaImage, TIFF and OME-Zarr as refractive-index
  layers, voxel size as scale, time as a slider; series are read frame by frame when shown;
- widget (:mod:`._widget`): segments the chosen image layer with the bundle's model in a worker
  thread and adds nucleus and cell labels, the nucleus tracks and the measurements table;
- sample data: a small 4D phantom series written as a TCF file.

The parts that do not need Qt live in :mod:`._layers` (array orders, running the engine on a layer,
building layer data) so that they are tested without a display.
"""
