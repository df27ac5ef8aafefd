"""osnet-monai: OS-Net nucleus segmentation in refractive-index tomograms, as a MONAI bundle."""

from __future__ import annotations

# The one home of the version: pyproject.toml reads it at build time; metadata.json repeats it for the
# Model Zoo and tests/bundle/test_bundle_conformance.py keeps the copies equal.
__version__ = "0.6.0"
__all__ = ["__version__"]
