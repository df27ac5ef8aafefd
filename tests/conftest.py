"""Shared fixtures: small on-disk data sets laid out as the phantom engine writes them."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from helpers import write_ellipsoid_dataset


@pytest.fixture(scope="session")
def ellipsoid_dataset(tmp_path_factory) -> Path:
    return write_ellipsoid_dataset(tmp_path_factory.mktemp("ellipsoids"))


@pytest.fixture(scope="session")
def untrained_checkpoint(tmp_path_factory) -> Path:
    """A seeded, untrained OS-Net state dict: for tests of shapes, grids, files and exports, not accuracy."""
    from osnet_monai.networks import OSNet

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("checkpoint") / "model.pt"
    torch.save(OSNet().state_dict(), path)
    return path


def pytest_addoption(parser):
    """The options napari's ``make_napari_viewer`` reads: its pytest plugin, which registers them,
    is off for the suite (pyproject ``-p no:napari``); tests/napari/conftest.py takes the fixture."""
    for name, help_text in (("--show-napari-viewer", "show the napari viewers of tests/napari"),
                            ("--save-leaked-object-graph", "napari: save a graph of leaked viewers (objgraph)")):
        try:
            parser.addoption(name, action="store_true", default=False, help=help_text)
        except ValueError:  # napari's plugin is loaded after all (-p napari): it declared them
            pass
