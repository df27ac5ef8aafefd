"""``osnet-monai segment`` and ``osnet-monai demo``: thin fronts over ``bundle/configs/inference.json``."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
import warnings
from pathlib import Path

from osnet_monai.inference.writer import OUTPUT_FORMATS

#: what finds the nuclei: the bundle's network, or the paper's edge-based baseline (no weights);
#: each names the config files merged in order
METHODS = {"osnet": ("inference.json",), "edge-based": ("inference.json", "edge_based.json")}

__all__ = ["METHODS", "bundle_dir", "segment", "add_arguments", "run", "add_demo_arguments", "run_demo"]


def bundle_dir(explicit: str | os.PathLike | None = None) -> Path:
    """The bundle to run: ``explicit``, else ``$OSNET_BUNDLE``, else the checkout's ``bundle/``, else the
    copy installed with the package (``osnet_monai/bundle_data``, packed from ``bundle/`` into the wheel)."""
    from importlib.resources import files

    candidates = [
        explicit,
        os.environ.get("OSNET_BUNDLE"),
        Path(__file__).resolve().parents[2] / "bundle",
        # the wheel's copy, for installs without a checkout
        str(files("osnet_monai") / "bundle_data"),
    ]
    for candidate in candidates:
        if candidate and (Path(candidate) / "configs" / "inference.json").is_file():
            return Path(candidate).resolve()
    raise FileNotFoundError(
        "No bundle found: pass --bundle DIR (the folder holding configs/inference.json) or set OSNET_BUNDLE."
    )


def segment(
    inputs: list[str],
    output_dir: str | os.PathLike,
    bundle: str | os.PathLike | None = None,
    method: str = "osnet",
    **overrides,
) -> int:
    """Runs the bundle's inference config on ``inputs``; returns the exit status (1 when any input failed).

    ``method`` "edge-based" merges ``configs/edge_based.json`` (the paper's Sobel baseline) in place of
    the network. ``overrides`` replace config values by id (``None`` included, e.g.
    ``malloc_mmap_threshold=None``).
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    from monai.bundle import ConfigWorkflow

    root = bundle_dir(bundle)
    bundle_logger = logging.getLogger("monai.bundle.workflows")
    level = bundle_logger.level
    with warnings.catch_warnings():
        # MONAI's notes to bundle authors, not to users: our logging is our own (no logging.conf), and
        # metadata.json keeps the schema's `optional_packages_version` beside the key MONAI reads
        warnings.filterwarnings("ignore", message="Detected deprecated name 'optional_packages_version'")
        bundle_logger.setLevel(logging.ERROR)
        try:
            workflow = ConfigWorkflow(
                config_file=[str(root / "configs" / name) for name in METHODS[method]],
                meta_file=str(root / "configs" / "metadata.json"),
                logging_file=False,
                workflow_type="infer",
                bundle_root=str(root),
                inputs=[str(p) for p in inputs],
                output_dir=str(output_dir),
                **overrides,
            )
        finally:
            bundle_logger.setLevel(level)
        workflow.initialize()
    with warnings.catch_warnings():
        # MONAI's RemoveSmallObjectsd still passes skimage's deprecated `min_size`; the warning would
        # bury the one-line messages about bad inputs
        warnings.filterwarnings("ignore", message="Parameter `min_size` is deprecated")
        workflow.run()
    try:
        workflow.finalize()
    except SystemExit as failed:
        print(failed.code, file=sys.stderr)
        return 1
    return 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inputs", nargs="+", metavar="IN", help="tomogram files or folders (NIfTI, NRRD, MHA, TIFF, TCF)")
    parser.add_argument("-o", "--output-dir", required=True, help="folder for NAME_nucleus.nii.gz, NAME_measurements.csv, PNGs")
    _add_common(parser)


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--bundle", default=None, help="bundle folder (default: the checkout's bundle/, else the one installed with the package)"
    )
    parser.add_argument(
        "--model", default=None,
        help="checkpoint to use (default: BUNDLE/models/model.pt); its model card (model.json) sets threshold and 2.5D context",
    )
    parser.add_argument(
        "--method", choices=list(METHODS), default="osnet",
        help="osnet (the bundle's network, default) or edge-based: the paper's Sobel baseline, no weights, for comparison",
    )
    parser.add_argument("--tta", action="store_true", help="average with horizontally and vertically flipped sections")
    parser.add_argument("--save-prob", action="store_true", help="also write NAME_prob.nii.gz")
    parser.add_argument("--no-figures", action="store_true", help="skip NAME_overlay.png and NAME_timecourse.png")
    parser.add_argument(
        "--format", choices=OUTPUT_FORMATS, default=None, dest="output_format",
        help="labels as NAME_nucleus.nii.gz and NAME_cell.nii.gz (nifti, default) or in NAME.ome.zarr with the RI (ome-zarr)",
    )
    parser.add_argument("--no-report", action="store_true", help="skip report.html and run.json")
    parser.add_argument(
        "--resume", action="store_true",
        help="leave out inputs whose outputs in the output folder are complete (e.g. after an interrupted run)",
    )
    parser.add_argument(
        "--threshold", type=float, default=None,
        help="probability threshold (default: the model card's, MODEL.json beside the checkpoint, else 0.5)",
    )
    parser.add_argument("--device", default=None, help="torch device, e.g. cpu or cuda:0 (default: CUDA when available)")
    parser.add_argument(
        "--spacing", type=float, nargs=3, default=None, metavar=("X", "Y", "Z"),
        help="voxel size in um for files that do not state one (plain TIFF)",
    )


def _overrides(args: argparse.Namespace) -> dict:
    overrides = {
        "ckpt_path": args.model,
        "tta": True if args.tta else None,
        "save_prob": True if args.save_prob else None,
        "save_figures": False if args.no_figures else None,
        "output_format": args.output_format,
        "save_report": False if args.no_report else None,
        "resume": True if args.resume else None,
        "threshold": args.threshold,
        "default_spacing_um": list(args.spacing) if args.spacing else None,
    }
    if args.device:
        overrides["device"] = f"$torch.device('{args.device}')"
    return {k: v for k, v in overrides.items() if v is not None}  # options not given keep the config's values


def _find_bundle(command: str, explicit: str | None) -> Path | None:
    """``bundle_dir``, or None after the one-line error (no traceback) that the command then exits 2 on."""
    try:
        return bundle_dir(explicit)
    except FileNotFoundError as err:
        print(f"osnet-monai {command}: error: {err}", file=sys.stderr)
        return None


def _console_logging() -> None:
    """One line per file and, on a terminal, the job's progress bar (``JobProgress``, which puts the
    lines above it): the engine's own start, restore and timing lines (ignite's INFO) are for the
    bundle runner's logs, not for a user watching the command."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("ignite.engine").setLevel(logging.WARNING)


def run(args: argparse.Namespace) -> int:
    _console_logging()
    if (root := _find_bundle("segment", args.bundle)) is None:
        return 2
    if args.method != "osnet" and (args.model or args.tta or args.threshold is not None):
        print("osnet-monai segment: error: --model, --tta and --threshold apply to the network, not to --method "
              f"{args.method}", file=sys.stderr)
        return 2
    return segment(args.inputs, args.output_dir, root, method=args.method, **_overrides(args))


def add_demo_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-o", "--output-dir", default="osnet-demo", help="folder for the example and the outputs (default osnet-demo)")
    parser.add_argument("--frames", type=int, default=4, help="time points of the example series (default 4)")
    parser.add_argument("--seed", type=int, default=2026, help="phantom seed (default 2026)")
    _add_common(parser)


def run_demo(args: argparse.Namespace) -> int:
    """Writes a small 4D phantom series, segments it with the shipped model, and says where everything is."""
    from osnet_monai.phantoms import generate_dataset

    _console_logging()
    # before the phantom, so a missing bundle fails in a second, not after it is drawn
    if (root := _find_bundle("demo", args.bundle)) is None:
        return 2
    out = Path(args.output_dir)
    start = time.perf_counter()
    generate_dataset(out / "example", n=1, frames=args.frames, seed=args.seed, preset="ht2h", validation_fraction=0.0)
    image = next((out / "example" / "images").glob("*.nii.gz"))
    print(f"Example 4D series ({args.frames} frames): {image}")
    status = segment([str(image)], out / "segmentation", root, method=args.method, **_overrides(args))
    print(f"\nOutputs in {out / 'segmentation'} ({time.perf_counter() - start:.0f} s):")
    for path in sorted((out / "segmentation").iterdir()):
        print(f"  {path.name}")
    truth = out / "example" / "labels" / image.name
    predicted = out / "segmentation" / image.name.replace(".nii.gz", "_nucleus.nii.gz")
    if status == 0 and truth.is_file() and predicted.is_file():
        import nibabel as nib
        import numpy as np

        t, p = np.asarray(nib.load(truth).dataobj) > 0, np.asarray(nib.load(predicted).dataobj) > 0
        print(f"Dice against the phantom's truth: {2 * (t & p).sum() / max(t.sum() + p.sum(), 1):.3f}")
    return status
