"""Sample data: a small 4D phantom series, written as a Tomocube TCF file and opened by the reader."""

from __future__ import annotations

import tempfile
from pathlib import Path

from osnet_monai.napari._layers import LayerData, read_tomogram

__all__ = ["demo_series"]


def demo_series(frames: int = 2, seed: int = 2026) -> list[LayerData]:
    """The demo's phantom (``osnet-monai demo``), ``frames`` time points, as an RI layer read from a TCF file."""
    from osnet_monai.phantoms import generate_dataset

    out = Path(tempfile.mkdtemp(prefix="osnet-napari-sample-"))
    generate_dataset(out, n=1, frames=frames, seed=seed, preset="ht2h", tcf=True, validation_fraction=0.0, workers=1)
    return read_tomogram(next((out / "tcf").glob("*.TCF")))
