"""The OS-Net network family (the paper's Table 1) as MONAI-style modules."""

from __future__ import annotations

from osnet_monai.networks.blocks import GCN, ConvBlock, FusionBlock, ResidualBlock, UpConcat, UpSum
from osnet_monai.networks.edge_based import EdgeBased, edge_based_mask
from osnet_monai.networks.osnet import STYLES, OSNet
from osnet_monai.networks.table1 import (
    TABLE1_EXPERIMENTS,
    TABLE1_NETWORKS,
    Table1Row,
    count_parameters,
    table1_model,
)

__all__ = [
    "OSNet",
    "EdgeBased",
    "edge_based_mask",
    "STYLES",
    "GCN",
    "ConvBlock",
    "FusionBlock",
    "ResidualBlock",
    "UpConcat",
    "UpSum",
    "Table1Row",
    "TABLE1_NETWORKS",
    "TABLE1_EXPERIMENTS",
    "table1_model",
    "count_parameters",
]
