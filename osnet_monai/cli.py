"""The ``osnet-monai`` command: a thin front over the package and the bundle configs.

Each subcommand lives in its own module exposing ``add_arguments(parser)`` and ``run(args) -> int``;
modules are imported lazily so ``osnet-monai --help`` stays fast and a broken optional
dependency only breaks its own subcommand.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

__all__ = ["main", "SUBCOMMANDS"]

# name -> (module, one-line help)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "info": ("osnet_monai.networks.summary", "print the Table 1 network family with parameter counts"),
    "phantoms": ("osnet_monai.phantoms.cli", "write synthetic ODT tomograms with nucleus labels"),
    "segment": ("osnet_monai.inference.cli", "segment nuclei in tomograms with the bundle's model"),
    "demo": ("osnet_monai.inference.demo", "segment a small 4D phantom series with the shipped model"),
    "fl-labels": ("osnet_monai.fl_labels", "nucleus masks from a recorded nuclear stain (TCF /Data/3DFL), to train on"),
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The full parser; only ``command``'s module is imported to declare its arguments."""
    from osnet_monai import __version__

    parser = argparse.ArgumentParser(prog="osnet-monai", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"osnet-monai {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        subparser = sub.add_parser(name, help=help_text, description=help_text)
        if name == command:
            importlib.import_module(module_name).add_arguments(subparser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = next((a for a in argv if not a.startswith("-")), None)
    args = build_parser(command).parse_args(argv)
    module = importlib.import_module(SUBCOMMANDS[args.command][0])
    return int(module.run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
