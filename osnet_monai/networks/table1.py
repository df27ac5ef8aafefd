"""The rows of the paper's Table 1, by the names the paper prints."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from osnet_monai.networks.osnet import OSNet

__all__ = ["Table1Row", "TABLE1_NETWORKS", "TABLE1_EXPERIMENTS", "table1_model", "count_parameters"]

UNET16 = {"gcn_kernel_size": None, "short_skip": False}
GCN_ONLY = {"gcn_kernel_size": 7, "short_skip": False}
GCN_SSC = {"gcn_kernel_size": 7, "short_skip": True}


@dataclass(frozen=True)
class Table1Row:
    """A network of Table 1: its constructor arguments and the parameter count the paper prints."""

    name: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    paper_parameters: int = 0


# "Unet64" is printed as 8,638,592 = 4 x Unet16, which no network matches; the paper's text defines
# it as the original U-Net (64..1024 features), built here (34,517,120 parameters).
TABLE1_NETWORKS: dict[str, Table1Row] = {
    row.name: row
    for row in (
        Table1Row("Unet64", {**UNET16, "features": (64, 128, 256, 512, 1024)}, 8_638_592),
        Table1Row("Unet16", UNET16, 2_159_648),
        Table1Row("Unet16 + GCN", GCN_ONLY, 2_770_848),
        Table1Row("Unet16 + GCN + SSC", GCN_SSC, 2_770_848),
        Table1Row("FusionNet", {**UNET16, "style": "fusionnet"}, 4_913_344),
        Table1Row("FusionNet v2", {**GCN_SSC, "style": "fusionnet"}, 5_524_544),
        Table1Row("OS-Net", GCN_SSC, 2_770_848),
    )
}

# Table 1's experiment rows in print order: (printed name, network, trained with augmentation).
TABLE1_EXPERIMENTS: tuple[tuple[str, str, bool], ...] = (
    ("Unet64", "Unet64", False),
    ("Unet16", "Unet16", False),
    ("Unet16 + GCN", "Unet16 + GCN", False),
    ("Unet16 + GCN + SSC", "Unet16 + GCN + SSC", False),
    ("Unet16 + Aug", "Unet16", True),
    ("Unet16 + GCN + Aug", "Unet16 + GCN", True),
    ("FusionNet + Aug", "FusionNet", True),
    ("FusionNet v2", "FusionNet v2", True),
    ("OS-Net", "OS-Net", True),
)


def _network_name(name: str) -> str:
    """Maps a printed row name ("Unet16 + Aug", "FusionNet + GCN + SSC + Aug (FusionNet v2)") to its network."""
    inner = re.search(r"\(([^)]+)\)", name)
    if inner and inner.group(1).strip() in TABLE1_NETWORKS:
        return inner.group(1).strip()
    base = re.sub(r"\s*\+\s*Aug\b", "", re.sub(r"\(.*\)", "", name)).strip()
    return base


def table1_model(name: str, **overrides: Any) -> OSNet:
    """Builds the network of a Table 1 row by the name the paper prints.

    Args:
        name: "Unet64", "Unet16", "Unet16 + GCN", "Unet16 + GCN + SSC", "FusionNet",
            "FusionNet v2" or "OS-Net"; a "+ Aug" suffix (a training setting) is accepted.
        overrides: constructor arguments replacing the row's (e.g. ``out_channels=2``).

    Examples::

        >>> count_parameters(table1_model("Unet16"))
        2159648
    """
    key = _network_name(name)
    if key not in TABLE1_NETWORKS:
        raise ValueError(f"Unknown Table 1 model {name!r}; expected one of {sorted(TABLE1_NETWORKS)}.")
    return OSNet(**{**TABLE1_NETWORKS[key].kwargs, **overrides})


def count_parameters(module) -> int:
    """Number of parameters of a module, as Table 1 counts them (trainable and frozen alike)."""
    return sum(p.numel() for p in module.parameters())
