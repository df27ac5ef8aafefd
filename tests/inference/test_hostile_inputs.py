"""An input deleted while its frames are being read: one line names it, nothing of it is kept,
the next file is still written (issue: nothing lost under faults)."""

from __future__ import annotations

import logging

import numpy as np
import torch
from monai.data import MetaTensor

from osnet_monai.inference import TomogramStream, TomogramWriter
from osnet_monai.phantoms import PRESETS, render_field, write_nifti

SPACING = (0.15, 0.15, 0.3)


def test_input_deleted_mid_series_is_refused_and_the_next_file_written(tmp_path, caplog):
    inputs = tmp_path / "in"
    inputs.mkdir()
    frames = [render_field(PRESETS["hx1"].replace(name="s", field_shape=(64, 56, 12)), seed=k).image for k in range(4)]
    for name in ("a", "b"):
        write_nifti(inputs / f"{name}.nii.gz", np.stack(frames, -1), SPACING, time_step_s=30.0, medium_ri=1.337)
    stream = TomogramStream([str(inputs)])
    writer = TomogramWriter(tmp_path / "out", save_figures=False, stream=stream)
    for item in stream:
        mask = (torch.as_tensor(item["ri"]) > 1.345).float()[None]
        writer.submit({**item, "pred": MetaTensor(mask, affine=item["image"].affine)})
        if item["name"] == "a" and item["frame"] == 1:
            (inputs / "a.nii.gz").unlink()  # gone while frames 2 and 3 are still to be read
    writer.finish()
    assert list(stream.failures) == [str(inputs / "a.nii.gz")]
    message = stream.failures[str(inputs / "a.nii.gz")]
    assert message.startswith(str(inputs / "a.nii.gz")) and "\n" not in message
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert not [n for n in names if n.startswith("a")], names  # nothing of the deleted input, not even hidden
    assert {"b_nucleus.nii.gz", "b_cell.nii.gz", "b_measurements.csv", "b_tracks.csv", "b_quality.json"} <= set(names)
    # one line for the refused file: the stream's; the writer's discarding it is not a second
    said = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING and "a.nii.gz" in r.getMessage()]
    assert said == [message], said
