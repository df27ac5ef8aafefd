"""Segmenting tomograms: the frame stream, postprocessing, the output writer (overlapped with the network),
test-time augmentation, pictures, the run report, the progress bar."""

from __future__ import annotations

from osnet_monai.inference.figures import save_overlay, save_timecourse
from osnet_monai.inference.inferer import ContextSliceInferer
from osnet_monai.inference.memory import fix_malloc_mmap_threshold
from osnet_monai.inference.nifti_stream import StreamingNiftiWriter
from osnet_monai.inference.overlap import BackgroundWorker, prefetch
from osnet_monai.inference.postprocessing import (
    AliasItemsd,
    CroppedFillHoles,
    CroppedFillHolesd,
    CroppedRemoveSmallObjects,
    CroppedRemoveSmallObjectsd,
    InvertSectionSpacingd,
    LabelNucleid,
)
from osnet_monai.inference.progress import JobProgress
from osnet_monai.inference.report import RunReport, write_report
from osnet_monai.inference.stream import TomogramStream, list_inputs
from osnet_monai.inference.wrappers import FlipTTA, FrozenForInference, SkipEmptyWindows, wrap_for_inference
from osnet_monai.inference.writer import OUTPUT_FORMATS, CompletedOutputs, TomogramWriter

__all__ = [
    "AliasItemsd",
    "BackgroundWorker",
    "CompletedOutputs",
    "ContextSliceInferer",
    "CroppedFillHoles",
    "CroppedFillHolesd",
    "CroppedRemoveSmallObjects",
    "CroppedRemoveSmallObjectsd",
    "InvertSectionSpacingd",
    "LabelNucleid",
    "JobProgress",
    "OUTPUT_FORMATS",
    "RunReport",
    "write_report",
    "prefetch",
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
