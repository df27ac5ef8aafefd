"""``osnet-monai phantoms OUT_DIR --n N --frames T --seed S [--style NAME | --preset NAME] [--tcf]``.

``--preset mitosis`` writes division series with instance and lineage truth (:mod:`.mitosis`).
"""

from __future__ import annotations

import argparse
import time

from .mitosis import SERIES_NAME
from .presets import PRESETS
from .styles import STYLES

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("out_dir", metavar="OUT_DIR", nargs="?", help="destination folder (images/, labels/, datalist.json)")
    parser.add_argument("--n", type=int, default=4, help="number of fields (files) to write (default 4)")
    parser.add_argument("--frames", type=int, default=1, help="time points per field; > 1 writes 4-D X,Y,Z,T (default 1)")
    parser.add_argument("--seed", type=int, default=0, help="random seed; same seed, same bytes (default 0)")
    parser.add_argument(
        "--style", default=None, action="append", dest="sources", metavar="NAME",
        help=f"rendering style, one of {', '.join(STYLES)}; repeat to mix styles (default: all styles)",
    )
    parser.add_argument(
        "--preset", default=None, action="append", dest="sources", metavar="NAME",
        help=f"a fixed instrument of the classic engine instead, one of {', '.join(PRESETS)}; or {SERIES_NAME}: "
        "division series (8 frames unless --frames says more) with nucleus and cell instances and the lineage in instances/",
    )
    parser.add_argument("--list-styles", action="store_true", help="list the rendering styles and presets, then exit")
    parser.add_argument("--tcf", action="store_true", help="also write tcf/NAME.TCF (Tomocube HDF5 layout)")
    parser.add_argument(
        "--fluorescence", action="store_true",
        help="also record a simulated DAPI/Hoechst channel in tcf/NAME.TCF (/Data/3DFL), for osnet-monai fl-labels",
    )
    parser.add_argument(
        "--nonneg-fill", choices=["preset", "on", "off"], default="preset",
        help="presets only: non-negativity fill of the missing cone as the preset says (default), or on/off",
    )
    parser.add_argument("--validation-fraction", type=float, default=0.25, help="share of files in 'validation' (default 0.25)")
    parser.add_argument("--workers", type=int, default=None, help="worker processes (default: up to 2)")
    parser.add_argument("--default-dataset", action="store_true",
                        help="write THE default training set into OUT_DIR (ignores --n/--frames/--seed/--style)")


def _list_styles() -> int:
    from .styles import get_style

    for name in STYLES:
        print(f"{name:10s} style   {get_style(name).DESCRIPTION}")
    for name, preset in PRESETS.items():
        print(f"{name:10s} preset  {preset.description}")
    print(f"{SERIES_NAME:10s} series  cells that move, touch and divide; nucleus and cell instances, lineage (CTC columns)")
    return 0


def run(args: argparse.Namespace) -> int:
    from .dataset import ensure_default_dataset, generate_dataset

    if args.list_styles:
        return _list_styles()
    if not args.out_dir:
        print("osnet-monai phantoms: error: OUT_DIR is required (or --list-styles)")
        return 2
    t0 = time.perf_counter()
    try:
        if args.default_dataset:
            path = ensure_default_dataset(args.out_dir, workers=args.workers)
        else:
            sources = args.sources or list(STYLES)
            path = generate_dataset(
                args.out_dir, n=args.n, frames=args.frames, seed=args.seed,
                preset=sources if len(sources) > 1 else sources[0], tcf=args.tcf, fluorescence=args.fluorescence,
                validation_fraction=args.validation_fraction, workers=args.workers,
                nonneg_fill={"preset": None, "on": True, "off": False}[args.nonneg_fill],
            )
    except ValueError as err:
        print(f"osnet-monai phantoms: error: {err}")
        return 2
    print(f"wrote {path} in {time.perf_counter() - t0:.1f} s")
    return 0
