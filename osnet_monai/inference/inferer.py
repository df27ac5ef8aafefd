"""Section-by-section inference with 2.5D context: MONAI's ``SliceInferer`` fed neighbour stacks."""

from __future__ import annotations

from typing import Any

import torch

from monai.inferers import SliceInferer

from osnet_monai.data.sections import stack_neighbours

__all__ = ["ContextSliceInferer"]


class ContextSliceInferer(SliceInferer):
    """``SliceInferer`` whose network sees each section with its ``context`` neighbours on either side
    as channels (edge sections replicated), as :class:`osnet_monai.data.SectionDataset` trains it.

    The stacks are built once from the whole volume before the sliding windows, so every window of
    section z carries sections z-k..z+k at the same place; the output keeps one section per z.
    ``context`` 0 is MONAI's ``SliceInferer`` unchanged. Living in the inferer, not in a network
    wrapper, it also reaches MONAI Label, which calls the bundle's ``inferer`` on its own network.

    Shapes: input ``(B, C, X, Y, Z)`` -> network windows ``(b, C * (2k+1), h, w)`` -> output
    ``(B, out_channels, X, Y, Z)``.

    Args:
        spatial_dim: the axis sliced (2 = z for ``(X, Y, Z)`` volumes), as in ``SliceInferer``.
        context: neighbours k on each side. Defaults to 0.
        args, kwargs: ``SliceInferer``'s (``roi_size``, ``sw_batch_size``, ``overlap``, ``mode``, ...).
    """

    def __init__(self, spatial_dim: int = 0, *args: Any, context: int = 0, **kwargs: Any) -> None:
        if int(context) < 0:
            raise ValueError(f"context must be >= 0, got {context}.")
        self.context = int(context)
        super().__init__(spatial_dim, *args, **kwargs)

    def __call__(self, inputs: torch.Tensor, network, *args: Any, **kwargs: Any):
        if self.context:
            inputs = stack_neighbours(inputs, self.context, dim=self.spatial_dim + 2)
        return super().__call__(inputs, network, *args, **kwargs)
