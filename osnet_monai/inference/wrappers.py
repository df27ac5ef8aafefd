"""Network wrappers for inference: a frozen CPU graph, flip test-time augmentation and skipping
sections with no cell.

Wrapping the network is the cheap place for both: MONAI's inferers (``SliceInferer``,
``SlidingWindowInferer``) call it on batches of 2D windows, so neither needs its own inferer.
"""

from __future__ import annotations

import torch
import torch.nn as nn

__all__ = ["FlipTTA", "FrozenForInference", "SkipEmptyWindows", "wrap_for_inference"]


class FrozenForInference(nn.Module):
    """Runs ``network`` as a frozen TorchScript graph optimised for inference.

    ``torch.jit.freeze`` + ``torch.jit.optimize_for_inference`` fold batch norm into the
    convolutions and keep activations in oneDNN's blocked layout between layers, which is where a
    CPU spends its time on OS-Net's 16-channel full-resolution layers (measured in
    ``docs/benchmarks.md``). The graph is built at the first call without gradients, after the
    checkpoint is loaded, and rebuilt when the weights change; with gradients or in train mode the
    eager network runs.

    Shapes: those of ``network``, e.g. ``(B, 1, H, W) -> (B, out_channels, H, W)``.
    """

    def __init__(self, network: nn.Module) -> None:
        super().__init__()
        self.network = network
        self._frozen: torch.jit.ScriptModule | None = None
        self._versions: list[int] = []

    def _weight_versions(self) -> list[int]:
        return [t._version for t in (*self.network.parameters(), *self.network.buffers())]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training or torch.is_grad_enabled():
            return self.network(x)
        versions = self._weight_versions()
        if self._frozen is None or versions != self._versions:
            # not registered as a submodule: it is a cache, not part of the state dict
            frozen = torch.jit.optimize_for_inference(torch.jit.freeze(torch.jit.script(self.network.eval())))
            object.__setattr__(self, "_frozen", frozen)
            self._versions = versions
        return self._frozen(x)  # type: ignore[misc]


class FlipTTA(nn.Module):
    """Averages the logits of a section and of its horizontal and vertical flips (flipped back).

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


class SkipEmptyWindows(nn.Module):
    """Runs the network only on windows that show cell; the others get ``empty_logit`` (background).

    A window where fewer than ``min_fraction`` of the pixels exceed ``cell_threshold`` (normalised
    RI contrast) is culture medium only (above or below the cells, or beside them) and cannot hold
    a nucleus; the fraction, not a single pixel, keeps noise from counting as cell. With 2.5D
    input (C = 2k+1 neighbouring sections) the centre channel decides.

    Shapes: ``(B, C, H, W) -> (B, out_channels, H, W)``.

    Args:
        network: the segmentation network.
        cell_threshold: contrast ``(RI - medium) / scale`` that counts as cell. Defaults to 0.3
            (0.009 RI with the default scale: above 4 noise SDs of a noisy low-NA system, below
            the contrast of cytoplasm even where the missing cone halves it).
        min_fraction: share of pixels above the threshold that makes a window cell. Defaults to 0.005.
        out_channels: channels of the network's output. Defaults to 1.
        empty_logit: logit given to skipped windows. Defaults to -20 (probability ~2e-9).
    """

    def __init__(
        self,
        network: nn.Module,
        cell_threshold: float = 0.3,
        min_fraction: float = 0.005,
        out_channels: int = 1,
        empty_logit: float = -20.0,
    ) -> None:
        super().__init__()
        self.network = network
        self.cell_threshold = cell_threshold
        self.min_fraction = min_fraction
        self.out_channels = out_channels
        self.empty_logit = empty_logit

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # the centre channel is the section being segmented (its 2.5D neighbours sit on either side)
        centre = x[:, x.shape[1] // 2]
        has_cell = (centre > self.cell_threshold).flatten(1).float().mean(dim=1) >= self.min_fraction
        out = torch.full(
            (x.shape[0], self.out_channels, x.shape[2], x.shape[3]), self.empty_logit, dtype=x.dtype, device=x.device
        )
        if bool(has_cell.any()):
            out[has_cell] = self.network(x[has_cell]).to(x.dtype)
        return out


def wrap_for_inference(
    network: nn.Module,
    freeze: bool = False,
    tta: bool = False,
    skip_empty: bool = True,
    cell_threshold: float = 0.3,
) -> nn.Module:
    """The network as inference runs it, innermost first: :class:`FrozenForInference` (``freeze``,
    for CPUs), :class:`FlipTTA` (``tta``), :class:`SkipEmptyWindows` (``skip_empty``, with
    ``cell_threshold``). Skipping wraps outermost so a window without cell costs no network call,
    flipped or not. The one place that orders the wrappers (``inference.json`` calls it).

    Shapes: those of ``network``, ``(B, C, H, W) -> (B, out_channels, H, W)``.
    """
    if freeze:
        network = FrozenForInference(network)
    if tta:
        network = FlipTTA(network)
    if skip_empty:
        network = SkipEmptyWindows(network, cell_threshold)
    return network
