"""OS-Net (Lee et al.) and the rest of the paper's Table 1 family as one parameterised network."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn

from monai.networks.layers.factories import Conv, Pool

from osnet_monai.networks.blocks import GCN, ConvBlock, FusionBlock, UpConcat, UpSum

__all__ = ["OSNet", "STYLES"]

STYLES = ("unet", "fusionnet")


class OSNet(nn.Module):
    """OS-Net: a light U-Net whose Down modules add a GCN layer with a short skip connection.

    Lee et al., "Deep-learning-based label-free segmentation of cell nuclei in time-lapse
    refractive index tomograms". With no arguments this is the published OS-Net
    (Unet16 + GCN + SSC, 2,770,848 parameters). The same class builds every Table 1 row:
    see :func:`osnet_monai.networks.table1_model`.

    Four Down modules (level block, optional GCN with optional SSC, 2x2 max-pool), a bridge
    (one level block), four Up modules (stride-2 transposed convolution, long skip, level block)
    and an output convolution that returns logits (no sigmoid: pair with ``BCEWithLogitsLoss``).

    Args:
        spatial_dims: must be 2 (the paper segments x-y sections; 3D stacks go section by section);
            kept so that MONAI-style configs can pass it, and any other value is refused. Defaults to 2.
        in_channels: input channels (normalised RI). Defaults to 1.
        out_channels: 1 for a single nucleus logit (the paper, BCE), 2 for background/nucleus
            logits (MONAI Label's argmax convention). Defaults to 1.
        features: five feature counts, four Down levels then the bridge, any positive widths.
            Defaults to ``(16, 32, 64, 128, 256)``; ``(64, ..., 1024)`` is the original U-Net
            ("Unet64").
        gcn_kernel_size: the GCN's large kernel ``k`` (odd, >= 3); ``None`` or 0 removes the GCN.
            Defaults to 7.
        short_skip: add each GCN's input to its output (SSC). Requires a GCN. Defaults to True.
        up_kernel_size: transposed-convolution kernel, 3 (reproduces Table 1's parameter counts)
            or 4 (the paper's text). Defaults to 3.
        style: ``"unet"`` (Conv Blocks, concatenated long skips, 1x1 output conv) or
            ``"fusionnet"`` (conv-residual-conv blocks, summed skips, 3x3 output conv; Quan et al.
            2016). Defaults to ``"unet"``.
        act: activation name or ``(name, kwargs)``. Defaults to ReLU.
        norm: normalisation name or ``(name, kwargs)``. Defaults to batch norm.

    Shapes:
        input ``(B, in_channels, H, W)`` with H and W divisible by 16;
        output ``(B, out_channels, H, W)`` logits.

    Examples::

        >>> net = OSNet()
        >>> net(torch.zeros(2, 1, 64, 64)).shape  # any H, W divisible by 16
        torch.Size([2, 1, 64, 64])
        >>> sum(p.numel() for p in net.parameters())
        2770848

    From a bundle config::

        "network_def": {"_target_": "osnet_monai.networks.OSNet", "out_channels": 1}
    """

    def __init__(
        self,
        spatial_dims: int = 2,
        in_channels: int = 1,
        out_channels: int = 1,
        features: Sequence[int] = (16, 32, 64, 128, 256),
        gcn_kernel_size: int | None = 7,
        short_skip: bool = True,
        up_kernel_size: int = 3,
        style: str = "unet",
        act: str | tuple = ("relu", {"inplace": True}),
        norm: str | tuple = "batch",
    ) -> None:
        super().__init__()
        if spatial_dims != 2:
            raise ValueError(f"OSNet segments 2D sections: spatial_dims must be 2, got {spatial_dims}.")
        if in_channels < 1 or out_channels < 1:
            raise ValueError(f"in_channels and out_channels must be >= 1, got {in_channels}, {out_channels}.")
        features = tuple(int(f) for f in features)
        if len(features) != 5 or min(features) < 1:
            raise ValueError(f"features must be five positive ints (four Down levels, bridge), got {features}.")
        if style not in STYLES:
            raise ValueError(f"style must be one of {STYLES}, got {style!r}.")
        use_gcn = bool(gcn_kernel_size)
        if short_skip and not use_gcn:
            raise ValueError("short_skip (SSC) adds a GCN's input to its output: it needs gcn_kernel_size.")

        block = ConvBlock if style == "unet" else FusionBlock
        up = UpConcat if style == "unet" else UpSum
        self.features = features
        self.pool = Pool["MAX", 2](kernel_size=2)
        levels_in = (in_channels,) + features[:3]
        downs = []
        for c_in, c in zip(levels_in, features[:4]):
            down = nn.Sequential()
            down.add_module("block", block(2, c_in, c, act, norm))
            if use_gcn:
                down.add_module("gcn", GCN(2, c, int(gcn_kernel_size), short_skip, norm))  # type: ignore[arg-type]
            downs.append(down)
        self.down_1, self.down_2, self.down_3, self.down_4 = downs
        self.bridge = block(2, features[3], features[4], act, norm)
        # each Up module takes the level below's width, so any five widths work, not only doublings
        self.up_4 = up(2, features[3], up_kernel_size, act, norm, in_channels=features[4])
        self.up_3 = up(2, features[2], up_kernel_size, act, norm, in_channels=features[3])
        self.up_2 = up(2, features[1], up_kernel_size, act, norm, in_channels=features[2])
        self.up_1 = up(2, features[0], up_kernel_size, act, norm, in_channels=features[1])
        head_kernel = 1 if style == "unet" else 3
        self.head = Conv["conv", 2](features[0], out_channels, head_kernel, padding=head_kernel // 2, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4:
            raise ValueError("OSNet expects (B, C, H, W) sections, got a tensor of " + str(x.dim()) + " dims.")
        h, w = x.shape[-2], x.shape[-1]
        if h % 16 != 0 or w % 16 != 0:
            raise ValueError(
                "OSNet needs H and W divisible by 16 (four 2x2 poolings), got " + str(h) + " x " + str(w) + "."
            )
        x1 = self.down_1(x)
        x2 = self.down_2(self.pool(x1))
        x3 = self.down_3(self.pool(x2))
        x4 = self.down_4(self.pool(x3))
        y = self.bridge(self.pool(x4))
        y = self.up_4(y, x4)
        y = self.up_3(y, x3)
        y = self.up_2(y, x2)
        y = self.up_1(y, x1)
        return self.head(y)
