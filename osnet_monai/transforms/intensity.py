"""Refractive-index normalisation relative to the culture medium."""

from __future__ import annotations

import re
from collections.abc import Hashable, Mapping

import numpy as np
import torch

from monai.config import KeysCollection
from monai.data import MetaTensor
from monai.transforms import MapTransform

__all__ = ["DEFAULT_CONTRAST_SCALE", "estimate_medium_ri", "medium_ri_from_meta", "NormalizeRId"]

# RI contrast that maps to 1.0: cytoplasm sits ~0.02-0.04 above the medium, lipid droplets ~0.1.
DEFAULT_CONTRAST_SCALE = 0.03

_DESCRIP_MEDIUM = re.compile(rb"medium_ri=([0-9.]+)")


def estimate_medium_ri(ri: np.ndarray | torch.Tensor, bin_width: float = 5e-4, max_samples: int = 2_000_000) -> float:
    """The culture medium's RI as the mode of the RI histogram.

    The medium fills most of an ODT field of view (around and above the adherent cells), so the
    most common value is the medium's even when the missing cone blurs the cells' edges.
    """
    values = ri.detach().cpu().numpy() if isinstance(ri, torch.Tensor) else np.asarray(ri)
    values = values.reshape(-1)
    if values.size > max_samples:  # a strided sample keeps large volumes cheap
        values = values[:: values.size // max_samples + 1]
    values = values[np.isfinite(values)]
    low, high = np.percentile(values, [1, 99])
    bins = max(int(np.ceil((high - low) / bin_width)), 1)
    counts, edges = np.histogram(values, bins=bins, range=(low, high + bin_width))
    peak = int(np.argmax(counts))
    return float(0.5 * (edges[peak] + edges[peak + 1]))


def medium_ri_from_meta(meta: Mapping | None) -> float | None:
    """The medium RI a reader recorded: ``medium_ri`` (TCF, TIFF) or ``descrip = "medium_ri=..."`` (NIfTI)."""
    if not meta:
        return None
    if meta.get("medium_ri") is not None:
        return float(meta["medium_ri"])
    descrip = meta.get("descrip")
    if descrip is not None:
        raw = bytes(np.asarray(descrip).tobytes()) if not isinstance(descrip, (bytes, str)) else descrip
        raw = raw.encode() if isinstance(raw, str) else raw
        match = _DESCRIP_MEDIUM.search(raw)
        if match:
            return float(match.group(1))
    return None


class NormalizeRId(MapTransform):
    """Turns RI (float, or Tomocube uint16 RI x 10,000) into contrast relative to the medium.

    ``out = (RI - medium_ri) / contrast_scale``, so data from instruments and media with different
    absolute RI share one scale. The medium RI comes from, in order: the data dict's
    ``medium_ri_key`` (a datalist field), the image's metadata, else the histogram mode
    (:func:`estimate_medium_ri`). The value used is stored in the data dict under
    ``medium_ri_key`` for the measurements.

    Args:
        keys: image keys.
        contrast_scale: RI difference that maps to 1.0. Defaults to 0.03.
        medium_ri_key: data dict key holding the medium RI. Defaults to ``"medium_ri"``.
        clip: clip the output to ``[-clip, clip]`` (None keeps all). Defaults to 10.
    """

    def __init__(
        self,
        keys: KeysCollection,
        contrast_scale: float = DEFAULT_CONTRAST_SCALE,
        medium_ri_key: str = "medium_ri",
        clip: float | None = 10.0,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        if contrast_scale <= 0:
            raise ValueError(f"contrast_scale must be positive, got {contrast_scale}.")
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
            medium = d.get(self.medium_ri_key)
            medium = float(medium) if medium is not None else medium_ri_from_meta(meta)
            if medium is None:
                medium = estimate_medium_ri(ri)
            out = (ri - medium) / self.contrast_scale
            if self.clip is not None:
                out = out.clamp(-self.clip, self.clip)
            if isinstance(image, MetaTensor):
                out = MetaTensor(out, meta=image.meta, applied_operations=image.applied_operations)
            d[key] = out
            d[self.medium_ri_key] = medium
        return d
