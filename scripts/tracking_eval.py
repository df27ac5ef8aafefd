#!/usr/bin/env python
"""Instances, cells and tracks with divisions on division series: from the shipped model's masks and from the truth.

    python scripts/tracking_eval.py [--series 6] [--frames 8] [--seed 2026] [--work build/tracking_eval]
                                    [--neck-sweep] [--out docs/tracking.md]

For each of ``--series`` division series (``osnet-monai phantoms DIR --preset mitosis``, seeds
``--seed`` + k, the instrument drawn per series over the full ODT range):

1. the series is rendered with its truth (nucleus and cell instances, lineage);
2. the shipped model segments it (``osnet_monai.inference.cli.segment``, the bundle in bundle/);
3. two inputs go through the same instance and tracking stage as the segment command
   (``label_nuclei`` -> tracker -> ``label_cells`` -> ``measure_nuclei``): the model's nucleus mask
   with the cell mask from the RI (``cell_mask_from_ri``), and the TRUE nucleus and cell masks (which
   isolates the instance and tracking stage from segmentation errors);
4. scores: instance F1 at IoU >= 0.5 (nuclei, pooled over frames), the Cell Tracking Challenge's DET,
   SEG, TRA and division F1 (BC(0): the division in the right frame; BC(1): within one frame) computed by
   ``py-ctcmetrics`` (the ``eval`` extra), and the nucleus-to-cell volume ratio per cell against the
   truth's (share of truth nuclei whose ratio is within 10 %; an unmatched nucleus counts as a miss).
   Both trackers run on the same labels: ``NucleusTracker`` (laptrack, divisions) and the frame-to-frame
   matcher ``track_nuclei`` (no divisions), which is the comparison the tracker was chosen on.

Every step is cached under ``--work`` (series, masks, one JSON of scores per series), so a stopped run
resumes. ``--neck-sweep`` adds instance F1 of ``label_nuclei`` for several ``neck_ratio`` on the truth
masks of 20 fields per rendering style (seed 77), the numbers quoted in
``osnet_monai/measurements/cells.py``. Writes ``--out`` (markdown) and ``tracking_lineage.png`` beside it.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import statistics
import tempfile
import warnings

import numpy as np

from osnet_monai.measurements import (
    NucleusTracker,
    cell_mask_from_ri,
    label_cells,
    label_nuclei,
    track_nuclei,
    tracks_from_labels,
)
from osnet_monai.phantoms.dataset import generate_dataset
from osnet_monai.phantoms.mitosis import SERIES_NAME
from osnet_monai.readers import load_tomogram

ROOT = pathlib.Path(__file__).resolve().parents[1]
MIN_VOLUME_UM3 = 20.0  # the bundle's min_nucleus_volume_um3: smaller objects are removed before labelling
NC_TOLERANCE = 0.10


# ---------------------------------------------------------------------------------------------
# scores
# ---------------------------------------------------------------------------------------------
def instance_counts(truth: np.ndarray, pred: np.ndarray, iou: float = 0.5) -> tuple[int, int, int, dict[int, int]]:
    """TP, FP, FN of instances matched at IoU > ``iou`` (one-to-one above 0.5) and the matches {truth id: pred id}."""
    both = (truth > 0) & (pred > 0)
    t_ids, t_area = np.unique(truth[truth > 0], return_counts=True)
    p_ids, p_area = np.unique(pred[pred > 0], return_counts=True)
    t_area, p_area = dict(zip(t_ids.tolist(), t_area.tolist())), dict(zip(p_ids.tolist(), p_area.tolist()))
    pairs, inter = np.unique(np.stack([truth[both], pred[both]]), axis=1, return_counts=True)
    matches = {int(t): int(p) for (t, p), n in zip(pairs.T.tolist(), inter.tolist()) if n / (t_area[t] + p_area[p] - n) > iou}
    tp = len(matches)
    return tp, len(p_ids) - tp, len(t_ids) - tp, matches


def f1(tp: int, fp: int, fn: int) -> float:
    return 2 * tp / max(2 * tp + fp + fn, 1)


def _write_ctc(folder: pathlib.Path, masks: np.ndarray, tracks, prefix: str, track_file: str) -> None:
    import tifffile

    folder.mkdir(parents=True, exist_ok=True)
    for t in range(masks.shape[-1]):
        tifffile.imwrite(folder / f"{prefix}{t:03d}.tif", masks[..., t].astype(np.uint16))
    (folder / track_file).write_text("".join(" ".join(str(int(v)) for v in row) + "\n" for row in tracks))


def ctc_scores(pred: np.ndarray, pred_tracks, truth: np.ndarray, truth_tracks) -> dict:
    """DET, SEG, TRA and division F1 (BC(0), BC(1)) of a tracked series (X, Y, Z, T) against the truth, by py-ctcmetrics."""
    from ctc_metrics.scripts.evaluate import evaluate_sequence

    if any(not pred[..., t].any() for t in range(pred.shape[-1])):
        # the CTC refuses a result with an empty frame; it scores 0
        return {"DET": 0.0, "SEG": 0.0, "TRA": 0.0, "BC(0)": 0.0, "BC(1)": 0.0, "divisions": 0, "valid": False}
    with tempfile.TemporaryDirectory() as tmp:
        res, gt = pathlib.Path(tmp) / "res", pathlib.Path(tmp) / "gt"
        _write_ctc(res, pred, pred_tracks, "mask", "res_track.txt")
        _write_ctc(gt / "TRA", truth, truth_tracks, "man_track", "man_track.txt")
        _write_ctc(gt / "SEG", truth, [], "man_seg", "unused.txt")
        with warnings.catch_warnings(), open(os.devnull, "w") as null:
            warnings.simplefilter("ignore")
            import contextlib

            with contextlib.redirect_stdout(null):
                r = evaluate_sequence(str(res), str(gt), ["DET", "SEG", "TRA", "BC"], threads=1)
    n_div = sum(1 for row in pred_tracks if row[3]) // 2
    return {k: float(r[k]) for k in ("DET", "SEG", "TRA", "BC(0)", "BC(1)")} | {"divisions": n_div, "valid": True}


def nc_ratios(labels: np.ndarray, cells: np.ndarray) -> dict[int, float]:
    """Nucleus-to-cell volume ratio per id (voxel counts; the spacing cancels)."""
    n = max(int(labels.max()), int(cells.max())) + 1
    nuc, cell = np.bincount(labels.ravel(), minlength=n), np.bincount(cells.ravel(), minlength=n)
    return {int(i): float(nuc[i] / cell[i]) for i in np.flatnonzero(nuc[1:]) + 1 if cell[i]}


# ---------------------------------------------------------------------------------------------
# one series
# ---------------------------------------------------------------------------------------------
def ensure_series(work: pathlib.Path, seed: int, frames: int) -> tuple[pathlib.Path, dict]:
    folder = work / "series" / f"s{seed}"
    datalist = folder / "datalist.json"
    if not datalist.is_file():
        generate_dataset(folder, n=1, frames=frames, seed=seed, preset=SERIES_NAME, validation_fraction=0, workers=1)
    (entry,) = json.loads(datalist.read_text())["training"]
    return folder, entry


def ensure_segmented(image: pathlib.Path, out: pathlib.Path) -> pathlib.Path:
    """The shipped model's NAME_nucleus.nii.gz (its mask is what the writer labels)."""
    from osnet_monai.inference.cli import segment

    mask = out / (image.name.replace(".nii.gz", "") + "_nucleus.nii.gz")
    if not mask.is_file():
        if segment([str(image)], out, save_figures=False) != 0 or not mask.is_file():
            raise RuntimeError(f"{image}: segmentation failed")
    return mask


def run_stage(mask: np.ndarray, cell_mask: np.ndarray, spacing, tracker: str) -> tuple[np.ndarray, np.ndarray, list]:
    """The segment command's instance and tracking stage on a mask series: tracked nuclei, cells, lineage."""
    frames = [label_nuclei(mask[..., t], MIN_VOLUME_UM3, spacing) for t in range(mask.shape[-1])]
    if tracker == "laptrack":
        track = NucleusTracker(spacing)
        tracked = [track(f) for f in frames]
        lineage = track.tracks
    else:
        tracked, next_id = [], 1
        for f in frames:
            f = f if not tracked else track_nuclei(tracked[-1], f, spacing, next_id=next_id)
            next_id = max(next_id, int(f.max()) + 1)
            tracked.append(f)
        lineage = tracks_from_labels(tracked)
    nuclei = np.stack(tracked, axis=-1)
    cells = np.stack([label_cells(cell_mask[..., t], nuclei[..., t], spacing) for t in range(mask.shape[-1])], axis=-1)
    return nuclei, cells, lineage


def score_input(mask, cell_mask, spacing, truth_nuclei, truth_cells, truth_tracks) -> dict:
    out = {}
    for tracker in ("laptrack", "matcher"):
        nuclei, cells, lineage = run_stage(mask, cell_mask, spacing, tracker)
        out[tracker] = ctc_scores(nuclei, lineage, truth_nuclei, truth_tracks)
        out[tracker]["lineage"] = [list(map(int, row)) for row in lineage]
        if tracker == "laptrack":
            tp = fp = fn = 0
            nc_ok, nc_errors, n_truth = 0, [], 0
            for t in range(mask.shape[-1]):
                a, b, c, matches = instance_counts(truth_nuclei[..., t], nuclei[..., t])
                tp, fp, fn = tp + a, fp + b, fn + c
                true_nc = nc_ratios(truth_nuclei[..., t], truth_cells[..., t])
                pred_nc = nc_ratios(nuclei[..., t], cells[..., t])
                n_truth += len(true_nc)
                for tid, ratio in true_nc.items():
                    if tid in matches and matches[tid] in pred_nc:
                        err = pred_nc[matches[tid]] / ratio - 1
                        nc_errors.append(float(abs(err)))
                        nc_ok += int(abs(err) <= NC_TOLERANCE)
            out["instances"] = {"tp": tp, "fp": fp, "fn": fn, "f1": f1(tp, fp, fn)}
            out["nc"] = {"within": nc_ok, "cells": n_truth, "share": nc_ok / max(n_truth, 1),
                         "median_error": statistics.median(nc_errors) if nc_errors else float("nan")}
            out["volumes"] = {int(i): [float((nuclei[..., t] == i).sum() * np.prod(spacing)) for t in range(mask.shape[-1])]
                              for i in np.unique(nuclei[nuclei > 0]).tolist()}
    return out


def touching_pairs(nuclei: np.ndarray) -> int:
    """Pairs of nuclei sharing a face, counted per frame, of an instance series (X, Y, Z, T)."""
    pairs = set()
    for t in range(nuclei.shape[-1]):
        for axis in range(3):
            a = np.moveaxis(nuclei[..., t], axis, 0)
            left, right = a[:-1], a[1:]
            where = (left != right) & (left > 0) & (right > 0)
            pairs |= {(t, min(x, y), max(x, y)) for x, y in zip(left[where].tolist(), right[where].tolist())}
    return len(pairs)


def evaluate_series(work: pathlib.Path, seed: int, frames: int) -> dict:
    result_path = work / "results" / f"s{seed}.json"
    if result_path.is_file():
        return json.loads(result_path.read_text())
    import nibabel as nib

    folder, entry = ensure_series(work, seed, frames)
    image, meta = load_tomogram(folder / entry["image"])
    spacing = tuple(float(s) for s in meta["spacing"])
    medium = float(meta["medium_ri"])
    truth_nuclei = np.asarray(nib.load(folder / entry["nucleus_instances"]).dataobj)
    truth_cells = np.asarray(nib.load(folder / entry["cell_instances"]).dataobj)
    truth_tracks = [tuple(int(v) for v in line.split(",")) for line in (folder / entry["tracks"]).read_text().splitlines()[1:]]
    model_mask = np.asarray(nib.load(ensure_segmented(folder / entry["image"], work / "segmented")).dataobj) > 0
    ri_cells = np.stack([cell_mask_from_ri(image[..., t], medium, spacing) for t in range(image.shape[-1])], axis=-1)
    result = {
        "seed": seed, "shape": list(image.shape), "spacing": list(spacing), "truth_tracks": [list(r) for r in truth_tracks],
        "divisions": sum(1 for r in truth_tracks if r[3]) // 2, "touching": touching_pairs(truth_nuclei),
        "model": score_input(model_mask, ri_cells, spacing, truth_nuclei, truth_cells, truth_tracks),
        "truth": score_input(truth_nuclei > 0, truth_cells > 0, spacing, truth_nuclei, truth_cells, truth_tracks),
        # where the N/C error comes from: true nuclei, cells from the RI as the segment command finds them
        "truth_ri_cells": score_input(truth_nuclei > 0, ri_cells, spacing, truth_nuclei, truth_cells, truth_tracks),
    }
    truth_volumes = {int(i): [float((truth_nuclei[..., t] == i).sum() * np.prod(spacing)) for t in range(image.shape[-1])]
                     for i in np.unique(truth_nuclei[truth_nuclei > 0]).tolist()}
    result["truth_volumes"] = truth_volumes
    result_path.parent.mkdir(parents=True, exist_ok=True)
    result_path.write_text(json.dumps(result, indent=1))
    return result


# ---------------------------------------------------------------------------------------------
# the neck-ratio sweep of label_nuclei on the styles' truth
# ---------------------------------------------------------------------------------------------
def neck_sweep(work: pathlib.Path, fields: int = 20, ratios=(0.0, 0.6, 0.7, 0.8, 0.9)) -> dict:
    cached = work / "neck_sweep.json"
    if cached.is_file():
        return json.loads(cached.read_text())
    from osnet_monai.phantoms.styles import STYLES, render_style

    counts = {r: {s: [0, 0, 0] for s in STYLES} for r in ratios}
    nuclei_total = 0
    for style in STYLES:
        for index in range(fields):
            f = render_style(style, seed=77, index=index, frames=1)
            spacing = tuple(float(s) for s in f.acquisition.voxel_size_um)
            truth = f.nuclei.astype(np.int32)
            small = np.flatnonzero(np.bincount(truth.ravel()) * np.prod(spacing) < MIN_VOLUME_UM3)
            truth[np.isin(truth, small)] = 0
            nuclei_total += len(np.unique(truth)) - 1
            for r in ratios:
                tp, fp, fn, _ = instance_counts(truth, label_nuclei(truth > 0, MIN_VOLUME_UM3, spacing, neck_ratio=r))
                c = counts[r][style]
                c[0], c[1], c[2] = c[0] + tp, c[1] + fp, c[2] + fn
    out = {"fields_per_style": fields, "nuclei": nuclei_total, "counts": {str(r): v for r, v in counts.items()}}
    cached.write_text(json.dumps(out, indent=1))
    return out


# ---------------------------------------------------------------------------------------------
# report
# ---------------------------------------------------------------------------------------------
def _mean(values) -> float:
    values = [v for v in values if v == v]
    return statistics.mean(values) if values else float("nan")


def lineage_figure(result: dict, path: pathlib.Path) -> None:
    """Nucleus volume over time, one line per track, divisions marked: truth and the model's LAP tracks."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), sharey=True)
    panels = [("truth (rendered lineage)", result["truth_tracks"], result["truth_volumes"]),
              ("model masks -> label_nuclei -> NucleusTracker", result["model"]["laptrack"]["lineage"], result["model"]["volumes"])]
    for ax, (title, tracks, volumes) in zip(axes, panels):
        colours = plt.get_cmap("tab10")
        ends = {}
        for k, (tid, first, last, parent) in enumerate(tracks):
            series = volumes.get(str(tid)) or volumes.get(tid)
            frames = list(range(first, last + 1))
            vols = [series[t] for t in frames]
            ax.plot(frames, vols, "o-", color=colours(k % 10), ms=3, label=f"track {tid}")
            ends[tid] = (last, vols[-1])
            if parent and parent in ends:
                px, py = ends[parent]
                ax.plot([px, first], [py, vols[0]], ":", color="k", lw=1)
                ax.plot([first], [vols[0]], "k*", ms=9)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("frame")
    axes[0].set_ylabel("nucleus volume (um^3)")
    axes[0].plot([], [], "k*", label="division (daughter start)")
    axes[0].legend(fontsize=6, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def report(results: list[dict], sweep: dict | None, args) -> str:
    cmd = f"python scripts/tracking_eval.py --series {args.series} --frames {args.frames} --seed {args.seed}" + (" --neck-sweep" if sweep else "")
    lines = [
        "# Instances, cells and tracks with divisions",
        "",
        f"Generated by `{cmd}` ({len(results)} division series of {args.frames} frames, seeds {args.seed}-{args.seed + len(results) - 1}).",
        "",
        "The segment command labels every nucleus on its own (touching nuclei split where the mask narrows,",
        "`label_nuclei`), gives each its cell (`label_cells`: a watershed of the cell mask seeded by the",
        "nuclei), measures both (`measure_nuclei`: the cell's volume, dry mass and the nucleus-to-cell",
        "ratio per cell) and follows the nuclei through a series with divisions (`NucleusTracker`, the LAP",
        "tracker of the `laptrack` package). Ids and the lineage follow the Cell Tracking Challenge: a",
        "nucleus's id is its track's, constant over the track; at a division the mother's track ends and",
        "two daughter tracks start with the mother as parent (`NAME_tracks.csv`: track_id, first_frame,",
        "last_frame, parent_id, the CTC `res_track.txt` columns).",
        "",
        "## The series",
        "",
        "`osnet-monai phantoms DIR --preset mitosis` renders division series with their truth: nucleus and",
        "cell instance ids (`instances/NAME_nucleus_instances.nii.gz`, `instances/NAME_cell_instances.nii.gz`,",
        "a cell with its nucleus's id) and the lineage (`instances/NAME_tracks.csv`). Cells move, some nuclei",
        "are pressed against a neighbour's, cells overlap at their edges, and one or two cells divide: the cell",
        "rounds up while its chromatin condenses, a rounded mitotic cell shows a metaphase plate, two",
        "rounded daughters with compact chromatin appear and spread. The instrument is drawn per series over",
        "the full ODT range (voxel, NA, wavelength, medium, noise, storage) and imaged by the classic engine;",
        "the other rendering styles (beam, spectral, organic) have no division series with cell truth yet, so",
        "'per style' here is per drawn instrument of the classic engine.",
        "",
        "| seed | shape (X, Y, Z, T) | voxel (um) | tracks | divisions | touching nucleus pairs (summed over frames) |",
        "|---:|---|---|---:|---:|---:|",
    ]
    for r in results:
        lines.append(f"| {r['seed']} | {tuple(r['shape'])} | {tuple(round(s, 3) for s in r['spacing'])} | {len(r['truth_tracks'])} | {r['divisions']} | {r['touching']} |")
    lines += [
        "",
        "## Scores",
        "",
        "Instance F1 at IoU > 0.5 over all frames; DET, SEG, TRA, BC(0) (divisions in the right frame) and",
        "BC(1) (within one frame) from `py-ctcmetrics`; N/C: share of truth nuclei whose nucleus-to-cell",
        "volume ratio is within 10 % of the truth's (median relative error in brackets). Means over series.",
        "",
        "| input | tracker | instance F1 | DET | SEG | TRA | division F1 BC(0) | BC(1) | N/C within 10 % |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for source, name in (("model", "shipped model's masks"), ("truth", "true masks"), ("truth_ri_cells", "true nuclei, cells from the RI")):
        for tracker in ("laptrack", "matcher"):
            s = [r[source][tracker] for r in results]
            inst = _mean(r[source]["instances"]["f1"] for r in results)
            nc = _mean(r[source]["nc"]["share"] for r in results)
            nce = _mean(r[source]["nc"]["median_error"] for r in results)
            lines.append(
                f"| {name} | {'NucleusTracker (laptrack)' if tracker == 'laptrack' else 'track_nuclei (matcher)'} | {inst:.3f} | "
                f"{_mean(x['DET'] for x in s):.3f} | {_mean(x['SEG'] for x in s):.3f} | {_mean(x['TRA'] for x in s):.3f} | "
                f"{_mean(x['BC(0)'] for x in s):.3f} | {_mean(x['BC(1)'] for x in s):.3f} | {nc:.2f} ({nce:.3f}) |"
            )
    lines += [
        "",
        "Targets (issue 15), from the shipped model's masks: instance F1 >= 0.95, TRA >= 0.95, division",
        "F1 >= 0.80, N/C within 10 % for 90 % of cells. The third input (true nucleus masks, the cell mask",
        "`cell_mask_from_ri` finds in the imaged RI) shows how much of the N/C error the cell mask makes.",
        "Per series:",
        "",
        "| seed | input | instance F1 (TP/FP/FN) | TRA laptrack / matcher | BC(0) laptrack / matcher | divisions found / true | N/C within 10 % |",
        "|---:|---|---|---|---|---|---:|",
    ]
    for r in results:
        for source in ("model", "truth"):
            x = r[source]
            i = x["instances"]
            lines.append(
                f"| {r['seed']} | {source} | {i['f1']:.3f} ({i['tp']}/{i['fp']}/{i['fn']}) | {x['laptrack']['TRA']:.3f} / {x['matcher']['TRA']:.3f} | "
                f"{x['laptrack']['BC(0)']:.2f} / {x['matcher']['BC(0)']:.2f} | {x['laptrack']['divisions']} / {r['divisions']} | "
                f"{x['nc']['within']}/{x['nc']['cells']} |"
            )
    lines += [
        "",
        "![lineage](tracking_lineage.png)",
        "",
        f"Nucleus volume per track of series {results[0]['seed']}: truth (left) and the segment command's stage",
        "on the model's masks (right); a star marks a daughter's first frame, dotted lines join it to its",
        "mother's last.",
        "",
    ]
    if sweep:
        lines += [
            "## Touching nuclei: the neck ratio",
            "",
            f"`label_nuclei` on the truth masks of {sweep['fields_per_style']} fields per rendering style (seed 77;",
            f"{sweep['nuclei']} nuclei of at least {MIN_VOLUME_UM3:g} um^3): instance F1 at IoU > 0.5 for each `neck_ratio`",
            "(0: connected components only).",
            "",
            "| neck_ratio | " + " | ".join(next(iter(sweep["counts"].values()))) + " | all |",
            "|---:|" + "---:|" * (len(next(iter(sweep["counts"].values()))) + 1),
        ]
        for ratio, per_style in sweep["counts"].items():
            total = np.sum(list(per_style.values()), axis=0)
            lines.append(f"| {ratio} | " + " | ".join(f"{f1(*c):.3f}" for c in per_style.values()) + f" | {f1(*total):.3f} |")
        lines.append("")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=6, help="division series to render and score (default 6)")
    parser.add_argument("--frames", type=int, default=8, help="frames per series (default 8)")
    parser.add_argument("--seed", type=int, default=2026, help="seed of the first series; the others follow (default 2026)")
    parser.add_argument("--work", type=pathlib.Path, default=ROOT / "build" / "tracking_eval", help="cache folder")
    parser.add_argument("--neck-sweep", action="store_true", help="also sweep label_nuclei's neck_ratio on 20 fields per style")
    parser.add_argument("--out", type=pathlib.Path, default=ROOT / "docs" / "tracking.md")
    args = parser.parse_args(argv)
    results = []
    for k in range(args.series):
        results.append(evaluate_series(args.work, args.seed + k, args.frames))
        m, t = results[-1]["model"], results[-1]["truth"]
        print(f"series {args.seed + k}: model F1 {m['instances']['f1']:.3f} TRA {m['laptrack']['TRA']:.3f} BC(0) {m['laptrack']['BC(0)']:.2f}; "
              f"truth F1 {t['instances']['f1']:.3f} TRA {t['laptrack']['TRA']:.3f} BC(0) {t['laptrack']['BC(0)']:.2f}", flush=True)
    sweep = neck_sweep(args.work) if args.neck_sweep else None
    args.out.parent.mkdir(parents=True, exist_ok=True)
    lineage_figure(results[0], args.out.parent / "tracking_lineage.png")
    args.out.write_text(report(results, sweep, args))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
