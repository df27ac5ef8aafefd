"""``osnet-monai demo``: the README's main job (see :mod:`osnet_monai.inference.cli`)."""

from osnet_monai.inference.cli import add_demo_arguments as add_arguments
from osnet_monai.inference.cli import run_demo as run

__all__ = ["add_arguments", "run"]
