"""Refractive-index normalisation relative to the culture medium."""

from __future__ import annotations

from collections.abc import Hashable, Mapping

import numpy as np
import torch

from monai.config import KeysCollection
from monai.data import MetaTensor
from monai.transforms import MapTransform

from osnet_monai.readers import parse_medium_ri

__all__ = [
    "DEFAULT_CONTRAST_SCALE",
    "NORMALISATIONS",
    "estimate_medium_ri",
    "background_noise_std",
    "robust_contrast_scale",
    "medium_ri_from_meta",
    "NormalizeRId",
]

# RI contrast that maps to 1.0: cytoplasm sits ~0.02-0.04 above the medium, lipid droplets ~0.1.
DEFAULT_CONTRAST_SCALE = 0.03

#: "medium": the paper's fixed scale around the medium, ``(RI - medium) / contrast_scale``;
#: "robust": per field, medium from the background and scale from the cell region (contrast-invariant)
NORMALISATIONS = ("medium", "robust")

#: a field counts as showing cell when this share of voxels lies clearly above the background
_MIN_CELL_SHARE = 0.002


def estimate_medium_ri(ri: np.ndarray | torch.Tensor, bin_width: float = 5e-4, max_samples: int = 2_000_000) -> float:
    """The culture medium's RI as the mode of the RI histogram.

    The medium fills most of an ODT field of view (around and above the adherent cells), so the
    most common value is the medium's even when the missing cone blurs the cells' edges.
    """
    values = _sample(ri, max_samples)
    low, high = np.percentile(values, [1, 99])
    bins = max(int(np.ceil((high - low) / bin_width)), 1)
    counts, edges = np.histogram(values, bins=bins, range=(low, high + bin_width))
    peak = int(np.argmax(counts))
    return float(0.5 * (edges[peak] + edges[peak + 1]))


def _sample(ri: np.ndarray | torch.Tensor, max_samples: int) -> np.ndarray:
    values = ri.detach().cpu().numpy() if isinstance(ri, torch.Tensor) else np.asarray(ri)
    values = values.reshape(-1)
    if values.size > max_samples:  # a strided sample keeps large volumes cheap
        values = values[:: values.size // max_samples + 1]
    return values[np.isfinite(values)].astype(np.float64, copy=False)


def background_noise_std(contrast: np.ndarray | torch.Tensor, max_samples: int = 2_000_000) -> float:
    """The background's noise from the half of its histogram peak below the medium.

    Cells lie above the medium, so the lower half-width at half maximum of the peak around 0
    measures the noise alone: sigma = HWHM / sqrt(2 ln 2).
    """
    values = _sample(contrast, max_samples)
    spread = float(np.percentile(np.abs(values), 50)) or 1e-6
    counts, edges = np.histogram(values, bins=400, range=(-8 * spread, 8 * spread))
    peak = int(np.argmax(counts))
    below = np.nonzero(counts[: peak + 1] < 0.5 * counts[peak])[0]
    centre = 0.5 * (edges[peak] + edges[peak + 1])
    half = centre - edges[below[-1] + 1] if below.size else spread
    return float(max(half, edges[1] - edges[0]) / np.sqrt(2 * np.log(2)))


def robust_contrast_scale(
    contrast: np.ndarray | torch.Tensor,
    fallback: float = DEFAULT_CONTRAST_SCALE,
    noise_multiple: float = 4.0,
    max_samples: int = 2_000_000,
    percentile: float = 50.0,
) -> float:
    """The median (or another ``percentile``) contrast of the cell region: voxels ``noise_multiple``
    noise SDs above the medium.

    Multiplying a field's contrast by c multiplies the result by c, so ``contrast / scale`` does
    not depend on the instrument's absolute contrast. A field with (almost) no cell gets
    ``fallback``, so its noise is not blown up to the cells' level.
    """
    values = _sample(contrast, max_samples)
    cell = values[values > noise_multiple * background_noise_std(values)]
    if cell.size < _MIN_CELL_SHARE * max(values.size, 1):
        return float(fallback)
    return float(np.percentile(cell, percentile))


def medium_ri_from_meta(meta: Mapping | None) -> float | None:
    """The medium RI a reader recorded: ``medium_ri`` (TCF, TIFF) or ``descrip = "medium_ri=..."`` (NIfTI)."""
    if not meta:
        return None
    if meta.get("medium_ri") is not None:
        return float(meta["medium_ri"])
    return parse_medium_ri([meta.get("descrip")])


class NormalizeRId(MapTransform):
    """Turns RI (float, or Tomocube uint16 RI x 10,000) into contrast relative to the medium.

    ``out = (RI - medium_ri) / scale``. With ``normalisation="medium"`` (the paper's), the scale is
    the fixed ``contrast_scale`` and the medium RI comes from, in order: the data dict's
    ``medium_ri_key`` (a datalist field), the image's metadata, else the histogram mode
    (:func:`estimate_medium_ri`). With ``normalisation="robust"`` each field (each frame of a
    series) is standardised on its own: medium from the histogram mode (an offset error in the
    file's tag or the background does not matter) and scale from the cell region
    (:func:`robust_contrast_scale`), so the output does not change when an instrument's contrast
    is scaled or offset. The medium RI used is stored in the data dict under ``medium_ri_key``
    for the measurements.

    Args:
        keys: image keys.
        contrast_scale: RI difference that maps to 1.0 ("medium"), the fallback for fields without
            cell ("robust"). Defaults to 0.03.
        medium_ri_key: data dict key holding the medium RI. Defaults to ``"medium_ri"``.
        clip: clip the output to ``[-clip, clip]`` (None keeps all). Defaults to 10.
        normalisation: one of :data:`NORMALISATIONS`. Defaults to ``"medium"``.
    """

    def __init__(
        self,
        keys: KeysCollection,
        contrast_scale: float = DEFAULT_CONTRAST_SCALE,
        medium_ri_key: str = "medium_ri",
        clip: float | None = 10.0,
        allow_missing_keys: bool = False,
        normalisation: str = "medium",
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        if contrast_scale <= 0:
            raise ValueError(f"contrast_scale must be positive, got {contrast_scale}.")
        if normalisation not in NORMALISATIONS:
            raise ValueError(f"normalisation must be one of {NORMALISATIONS}, got {normalisation!r}.")
        self.normalisation = normalisation
        self.contrast_scale = contrast_scale
        self.medium_ri_key = medium_ri_key
        self.clip = clip

    def __call__(self, data: Mapping[Hashable, torch.Tensor]) -> dict[Hashable, torch.Tensor]:
        from osnet_monai.readers import as_refractive_index

        d = dict(data)
        for key in self.key_iterator(d):
            image = d[key]
            meta = image.meta if isinstance(image, MetaTensor) else d.get(f"{key}_meta_dict")
            source = meta.get("filename_or_obj", key) if meta else key
            ri = torch.as_tensor(as_refractive_index(image, source), dtype=torch.float32)
            if self.normalisation == "robust":
                medium, out = self._robust(ri)
            else:
                medium = d.get(self.medium_ri_key)
                medium = float(medium) if medium is not None else medium_ri_from_meta(meta)
                if medium is None:
                    medium = estimate_medium_ri(ri)
                out = torch.sub(ri, medium).div_(self.contrast_scale)
            if self.clip is not None:
                out.clamp_(-self.clip, self.clip)  # in place: a large stack has no room for another copy
            if isinstance(image, MetaTensor):
                out = MetaTensor(out, meta=image.meta, applied_operations=image.applied_operations)
            d[key] = out
            d[self.medium_ri_key] = medium
        return d

    def _robust(self, ri: torch.Tensor) -> tuple[float, torch.Tensor]:
        """Per-frame standardisation of a channel-first ``(C, ...)`` tensor (C = frames of a series)."""
        frames = ri.unsqueeze(0) if ri.dim() < 2 else ri
        out = torch.empty_like(frames)
        media = []
        for frame, standardised in zip(frames, out):
            medium = estimate_medium_ri(frame)
            torch.sub(frame, medium, out=standardised)
            standardised.div_(robust_contrast_scale(standardised, fallback=self.contrast_scale))
            media.append(medium)
        out = out.reshape(ri.shape)
        return float(np.mean(media)), out
