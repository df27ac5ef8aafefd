"""Building blocks of the OS-Net family: conv blocks, the GCN layer with its short skip, up modules.

Every convolution is bias-free and followed by batch normalisation, the configuration that
reproduces the parameter counts of the paper's Table 1 (see ``docs/networks.md``).
"""

from __future__ import annotations

import torch
import torch.nn as nn

from monai.networks.blocks import Convolution

__all__ = ["ConvBlock", "ResidualBlock", "FusionBlock", "GCN", "UpConcat", "UpSum"]


def _conv(
    spatial_dims: int,
    in_channels: int,
    out_channels: int,
    kernel_size: int | tuple[int, ...],
    act: str | tuple | None,
    norm: str | tuple | None,
) -> Convolution:
    """Bias-free convolution, then norm, then activation (MONAI's "NDA" order)."""
    return Convolution(
        spatial_dims, in_channels, out_channels, kernel_size=kernel_size, act=act, norm=norm, bias=False
    )


class ConvBlock(nn.Sequential):
    """The paper's Conv Block: two 3x3 convolutions, each followed by BN and ReLU.

    Shapes: ``(B, in_channels, H, W) -> (B, out_channels, H, W)``.
    """

    def __init__(
        self, spatial_dims: int, in_channels: int, out_channels: int, act: str | tuple, norm: str | tuple
    ) -> None:
        super().__init__()
        self.add_module("conv_0", _conv(spatial_dims, in_channels, out_channels, 3, act, norm))
        self.add_module("conv_1", _conv(spatial_dims, out_channels, out_channels, 3, act, norm))


class ResidualBlock(nn.Module):
    """FusionNet's residual block: three 3x3 conv-BN-ReLU units whose output is added to the input.

    Shapes: ``(B, C, H, W) -> (B, C, H, W)``.
    """

    def __init__(self, spatial_dims: int, channels: int, act: str | tuple, norm: str | tuple) -> None:
        super().__init__()
        self.convs = nn.Sequential(*[_conv(spatial_dims, channels, channels, 3, act, norm) for _ in range(3)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.convs(x)


class FusionBlock(nn.Sequential):
    """FusionNet's level block (Quan et al. 2016): conv, residual block, conv.

    Shapes: ``(B, in_channels, H, W) -> (B, out_channels, H, W)``.
    """

    def __init__(
        self, spatial_dims: int, in_channels: int, out_channels: int, act: str | tuple, norm: str | tuple
    ) -> None:
        super().__init__()
        self.add_module("conv_in", _conv(spatial_dims, in_channels, out_channels, 3, act, norm))
        self.add_module("residual", ResidualBlock(spatial_dims, out_channels, act, norm))
        self.add_module("conv_out", _conv(spatial_dims, out_channels, out_channels, 3, act, norm))


class GCN(nn.Module):
    """Global Convolutional Network layer (Peng et al. 2017, "Large Kernel Matters"), optionally with
    the short skip connection (SSC) of OS-Net.

    Two branches approximate a dense ``k x k`` convolution with separable 1-D kernels:
    ``(k x 1 -> 1 x k) + (1 x k -> k x 1)``; each 1-D convolution is bias-free with BN and no
    activation. With ``short_skip`` the layer returns ``gcn(x) + x`` (adds no parameters).
    Parameters: ``28 c^2 + 8 c`` for ``k = 7``.

    Shapes: ``(B, C, H, W) -> (B, C, H, W)``.

    Args:
        spatial_dims: must be 2; the 1-D kernels are defined for sections.
        channels: input and output channels ``C``.
        kernel_size: the large kernel ``k``, odd, >= 3. Defaults to 7 (Table 1).
        short_skip: add the input to the output (SSC). Defaults to True.
        norm: normalisation after each 1-D convolution. Defaults to batch norm.
    """

    def __init__(
        self,
        spatial_dims: int,
        channels: int,
        kernel_size: int = 7,
        short_skip: bool = True,
        norm: str | tuple = "batch",
    ) -> None:
        super().__init__()
        if spatial_dims != 2:
            raise ValueError(f"GCN is defined for 2D sections, got spatial_dims={spatial_dims}.")
        if kernel_size < 3 or kernel_size % 2 == 0:
            raise ValueError(f"gcn_kernel_size must be an odd integer >= 3, got {kernel_size}.")
        column, row = (kernel_size, 1), (1, kernel_size)
        self.branch_column_first = nn.Sequential(
            _conv(2, channels, channels, column, None, norm), _conv(2, channels, channels, row, None, norm)
        )
        self.branch_row_first = nn.Sequential(
            _conv(2, channels, channels, row, None, norm), _conv(2, channels, channels, column, None, norm)
        )
        self.short_skip = short_skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.branch_column_first(x) + self.branch_row_first(x)
        if self.short_skip:
            y = y + x
        return y


class _Up(nn.Module):
    """What both up modules share: a stride-2 transposed convolution ``c_in -> c`` (``upsample``,
    with act and norm when ``upsample_act_norm``) and a block merging it with the skip (``conv``)."""

    upsample_act_norm = False

    def __init__(
        self,
        spatial_dims: int,
        channels: int,
        up_kernel_size: int,
        act: str | tuple,
        norm: str | tuple,
        in_channels: int | None = None,
    ) -> None:
        super().__init__()
        up_act, up_norm = (act, norm) if self.upsample_act_norm else (None, None)
        self.upsample = _transposed(spatial_dims, in_channels or 2 * channels, channels, up_kernel_size, up_act, up_norm)
        self.conv = self._merge(spatial_dims, channels, act, norm)

    def _merge(self, spatial_dims: int, channels: int, act: str | tuple, norm: str | tuple) -> nn.Module:
        raise NotImplementedError


class UpConcat(_Up):
    """U-Net up module: transposed convolution ``c_in -> c`` (stride 2, no bias, no BN), concatenation
    with the encoder's skip (the long skip connection), then a Conv Block ``2c -> c``.

    ``up_kernel_size`` 3 reproduces Table 1's counts; 4 follows the paper's text. Both double H and W.
    ``in_channels`` (``c_in``) defaults to ``2c``, the U-Net's doubling.

    Shapes: ``x (B, c_in, H, W)``, ``skip (B, c, 2H, 2W)`` -> ``(B, c, 2H, 2W)``.
    """

    def _merge(self, spatial_dims: int, channels: int, act: str | tuple, norm: str | tuple) -> nn.Module:
        return ConvBlock(spatial_dims, 2 * channels, channels, act, norm)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return self.conv(torch.cat([skip, self.upsample(x)], dim=1))


class UpSum(_Up):
    """FusionNet up module: transposed convolution ``c_in -> c`` with BN and ReLU, summed with the
    encoder's skip, then a FusionBlock ``c -> c``. ``in_channels`` (``c_in``) defaults to ``2c``.

    Shapes: ``x (B, c_in, H, W)``, ``skip (B, c, 2H, 2W)`` -> ``(B, c, 2H, 2W)``.
    """

    upsample_act_norm = True

    def _merge(self, spatial_dims: int, channels: int, act: str | tuple, norm: str | tuple) -> nn.Module:
        return FusionBlock(spatial_dims, channels, channels, act, norm)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return self.conv(skip + self.upsample(x))


def _transposed(
    spatial_dims: int,
    in_channels: int,
    out_channels: int,
    kernel_size: int,
    act: str | tuple | None,
    norm: str | tuple | None,
) -> Convolution:
    """Stride-2 transposed convolution that exactly doubles each spatial size for kernel 3 or 4."""
    if kernel_size not in (3, 4):
        raise ValueError(f"up_kernel_size must be 3 (Table 1 counts) or 4 (paper text), got {kernel_size}.")
    return Convolution(
        spatial_dims,
        in_channels,
        out_channels,
        strides=2,
        kernel_size=kernel_size,
        act=act,
        norm=norm,
        bias=False,
        conv_only=act is None and norm is None,
        is_transposed=True,
        padding=1,
        output_padding=kernel_size % 2,
    )
