"""Segmenting tomograms: the frame stream, the output writer, test-time augmentation, pictures."""

from __future__ import annotations

from osnet_monai.inference.figures import save_overlay, save_timecourse
from osnet_monai.inference.inferer import ContextSliceInferer
from osnet_monai.inference.memory import fix_malloc_mmap_threshold
from osnet_monai.inference.nifti_stream import StreamingNiftiWriter
from osnet_monai.inference.stream import TomogramStream, list_inputs
from osnet_monai.inference.wrappers import FlipTTA, FrozenForInference, SkipEmptyWindows, wrap_for_inference
from osnet_monai.inference.writer import TomogramWriter

__all__ = [
    "ContextSliceInferer",
    "FlipTTA",
    "FrozenForInference",
    "wrap_for_inference",
    "SkipEmptyWindows",
    "StreamingNiftiWriter",
    "fix_malloc_mmap_threshold",
    "TomogramStream",
    "TomogramWriter",
    "list_inputs",
    "save_overlay",
    "save_timecourse",
]
