"""The paper's conventional baseline: an edge-based (Sobel) nucleus segmentation, rule-based, no weights.

The paper compares OS-Net with "the conventional edge-based method" (Table 2; its Supplementary Text 3
is not part of our copy). Its references 30-31 and its remarks fix the recipe: a 3 x 3 Sobel gradient,
edges above a threshold, the closed regions filled, then a threshold on the RI inside them, which is
why it "falsely identified the nucleolus or organelles with higher RI values than surrounding pixels".
The steps here follow MATLAB's ``edge(I, 'sobel')`` cell-detection recipe (Kemeny & Clyne, ref. 31):

1. gradient magnitude from the 3 x 3 Sobel kernels;
2. edges where it exceeds ``fudge`` x MATLAB's automatic cut-off ``sqrt(4 mean(|g|^2))``;
3. edges dilated by 3-pixel lines (horizontal and vertical), holes filled, the result eroded twice by
   a diamond (smoothing the outline);
4. inside those regions, the pixels above Otsu's threshold of the regions' own intensities are kept;
   holes filled again and objects under ``min_area_px`` dropped.

Written with scipy and scikit-image (there is no maintained implementation of this recipe to call).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn
from scipy import ndimage as ndi

__all__ = ["edge_based_mask", "EdgeBased"]

#: MATLAB's default scale of the automatic Sobel cut-off (``cutoff = 4 * mean(g^2)``)
_MATLAB_SCALE = 4.0
_LINE_H = np.ones((1, 3), bool)
_LINE_V = np.ones((3, 1), bool)
_DIAMOND = ndi.generate_binary_structure(2, 1)


def edge_based_mask(section: np.ndarray, fudge: float = 0.5, min_area_px: int = 50) -> np.ndarray:
    """The edge-based nucleus mask of one 2D section.

    Args:
        section: (H, W) intensities (RI, or RI normalised by any increasing affine map: the result
            does not change, both thresholds being relative).
        fudge: factor on MATLAB's automatic gradient cut-off (0.5, as in its cell-detection example).
        min_area_px: smallest object kept, in pixels.

    Returns:
        (H, W) bool mask.
    """
    image = np.asarray(section, dtype=np.float64)
    if image.ndim != 2:
        raise ValueError(f"edge_based_mask takes one 2D section, got shape {image.shape}")
    if not np.isfinite(image).all() or np.ptp(image) == 0:
        return np.zeros(image.shape, bool)
    squared = ndi.sobel(image, axis=0) ** 2 + ndi.sobel(image, axis=1) ** 2
    edges = squared > (fudge**2) * _MATLAB_SCALE * squared.mean()
    regions = ndi.binary_dilation(ndi.binary_dilation(edges, _LINE_H), _LINE_V)
    regions = ndi.binary_fill_holes(regions)
    regions = ndi.binary_erosion(regions, _DIAMOND, iterations=2)
    if regions.sum() < 2:
        return np.zeros(image.shape, bool)
    from skimage.filters import threshold_otsu

    inside = image[regions]
    if np.ptp(inside) == 0:
        return np.zeros(image.shape, bool)
    mask = ndi.binary_fill_holes(regions & (image > threshold_otsu(inside)))
    labels, n = ndi.label(mask)
    if n == 0:
        return mask
    areas = np.bincount(labels.ravel())
    keep = areas >= int(min_area_px)
    keep[0] = False
    return keep[labels]


class EdgeBased(nn.Module):
    """:func:`edge_based_mask` as a drop-in for the network in the inference engine (no weights).

    Each section of the batch is segmented on its own; the channel in the middle is the section
    itself (with 2.5D context the others are its neighbours and are ignored). The output is a logit
    of +/-``confidence``, so the engine's sigmoid and threshold return the mask unchanged.

    Shapes: ``(B, C, H, W) -> (B, 1, H, W)``.
    """

    def __init__(self, fudge: float = 0.5, min_area_px: int = 50, confidence: float = 20.0) -> None:
        super().__init__()
        self.fudge = float(fudge)
        self.min_area_px = int(min_area_px)
        self.confidence = float(confidence)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4:
            raise ValueError(f"EdgeBased takes (B, C, H, W) sections, got shape {tuple(x.shape)}")
        sections = x[:, x.shape[1] // 2].detach().float().cpu().numpy()
        masks = np.stack([edge_based_mask(s, self.fudge, self.min_area_px) for s in sections])
        logits = torch.as_tensor(masks, dtype=x.dtype, device=x.device).unsqueeze(1)
        return (2.0 * logits - 1.0) * self.confidence
