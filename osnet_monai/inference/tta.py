"""Flip test-time augmentation as a network wrapper, so any inferer can use it."""

from __future__ import annotations

import torch
import torch.nn as nn

__all__ = ["FlipTTA"]


class FlipTTA(nn.Module):
    """Averages the logits of a section and of its horizontal and vertical flips (flipped back).

    MONAI's ``TestTimeAugmentation`` runs whole-volume pipelines per draw; for a 2D network inside a
    sliding-window inferer, wrapping the network is the cheap place to do it.

    Shapes: ``(B, C, H, W) -> (B, out_channels, H, W)``.
    """

    def __init__(self, network: nn.Module, flip_dims: tuple[int, ...] = (-1, -2)) -> None:
        super().__init__()
        self.network = network
        self.flip_dims = flip_dims

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.network(x)
        for dim in self.flip_dims:
            out = out + torch.flip(self.network(torch.flip(x, (dim,))), (dim,))
        return out / (1 + len(self.flip_dims))
