"""osnet-monai: OS-Net nucleus segmentation in refractive-index tomograms, as a MONAI bundle."""

from __future__ import annotations

__version__ = "0.3.0"
__all__ = ["__version__"]
