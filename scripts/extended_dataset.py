"""The extended training set: the default data set plus more fields of every style (and of the ht2h
and hx1 presets), with the default set's validation list kept for checkpoint selection and, on request,
more validation fields per style.

    python scripts/extended_dataset.py OUT            # 40 fields per style, 10 per preset (about 25 CPU-minutes)
    python scripts/extended_dataset.py OUT --per-style 10 --per-preset 0
    python scripts/extended_dataset.py OUT2 --first-seed 32001   # another set of new fields
    python scripts/extended_dataset.py OUT --val-per-style 8      # and 8 more validation fields per style

Writes ``OUT/STYLE/`` (images/, labels/, datalist.json per source) and ``OUT/datalist.json`` (absolute
paths): the training list is the default set's plus every new field, the validation list the default
set's alone, so a model trained on it is selected on the same files as every earlier one. Train with
``--dataset_dir OUT``. Each source has its own seed (``--first-seed``, 31001 by default, then 31002, ...),
none of the evaluation seeds (9100, 9200, 9300, 9400) and not the default set's (2024). The extra
validation fields (``--val-per-style``) have fixed seeds (39001, 39002, ...) whatever ``--first-seed``,
so models trained on different new fields are selected on the same list. Finished sources are kept
(resumable).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from osnet_monai.data import find_dataset
from osnet_monai.phantoms import ensure_default_dataset, generate_dataset
from osnet_monai.phantoms.styles import STYLES

REPO = Path(__file__).resolve().parents[1]
#: the sources in order; each one's seed is the first seed + its place
SOURCES = ("beam", "organic", "classic", "spectral", "ht2h", "hx1")
FIRST_SEED = 31001
#: seed of the first extra validation source (fixed: every model is selected on the same fields)
VALIDATION_SEED = 39001


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", help="destination folder")
    parser.add_argument("--per-style", type=int, default=40, help="new fields per rendering style (default 40)")
    parser.add_argument("--per-preset", type=int, default=10, help="new fields of ht2h and of hx1 (default 10)")
    parser.add_argument("--default-dataset", default=str(REPO / "bundle" / "cache" / "default_dataset"),
                        help="the default data set's folder (generated there when missing)")
    parser.add_argument("--workers", type=int, default=None, help="worker processes (default: up to 2)")
    parser.add_argument("--first-seed", type=int, default=FIRST_SEED,
                        help=f"seed of the first source, the others follow (default {FIRST_SEED})")
    parser.add_argument("--val-per-style", type=int, default=0,
                        help=f"extra validation fields per rendering style, seeds from {VALIDATION_SEED} (default 0)")
    args = parser.parse_args(argv)
    out = Path(args.out)
    default = find_dataset(Path(ensure_default_dataset(args.default_dataset)).parent)
    training, validation = list(default["training"]), list(default["validation"])
    for place, source in enumerate(SOURCES):
        n = args.per_style if source in STYLES else args.per_preset
        if n <= 0:
            continue
        folder = out / source
        if not (folder / "datalist.json").is_file():
            generate_dataset(folder, n, seed=args.first_seed + place, preset=source, validation_fraction=0.0,
                             workers=args.workers, name=f"osnet-phantoms-extended-{source}")
        training += find_dataset(folder)["training"]
        print(f"{source}: {n} fields in {folder}", flush=True)
    for place, style in enumerate(STYLES):
        if args.val_per_style <= 0:
            break
        folder = out / f"validation-{style}"
        if not (folder / "datalist.json").is_file():
            generate_dataset(folder, args.val_per_style, seed=VALIDATION_SEED + place, preset=style,
                             validation_fraction=0.0, workers=args.workers, name=f"osnet-phantoms-validation-{style}")
        validation += find_dataset(folder)["training"]
        print(f"{style}: {args.val_per_style} validation fields in {folder}", flush=True)
    names = [item["cell_id"] for item in training + validation]
    if len(names) != len(set(names)):
        raise SystemExit(f"{out}: two fields share a cell_id; remove the folder and start again")
    datalist = {"name": "osnet-phantoms-extended", "training": training, "validation": validation}
    (out / "datalist.json").write_text(json.dumps(datalist, indent=1) + "\n")
    print(f"wrote {out / 'datalist.json'}: {len(training)} training, {len(validation)} validation files")
    return 0


if __name__ == "__main__":
    sys.exit(main())
