"""``docs/benchmarks.md`` from a benchmark run's results (``docs/benchmarks.json``): the writing side
of ``scripts/benchmark.py``, apart from the measuring (:mod:`osnet_monai.benchmarking`).

The report is a function of the results alone (no torch, no config, no measuring), so
``python scripts/benchmark.py --report-only docs/benchmarks.json`` rewrites it on any machine.
Results saved before runs recorded their torch threads, GPU and product row are read from the
``machine`` line and the inference rows; their config settings are filled in by
:func:`osnet_monai.benchmarking.complete_saved_results` before they come here.
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path
from typing import Any

__all__ = ["PAPER_SECONDS_PER_SECTION", "mmap_label", "product_row", "window_row", "render_report", "write_report"]

#: the paper's reported inference time per 448 x 448 section
PAPER_SECONDS_PER_SECTION = 0.91
#: the issue's targets: the network's share of the matmul rate, end to end's share of the network alone
NETWORK_TARGET, END_TO_END_TARGET = 0.8, 0.8


def mmap_label(nbytes: int) -> str:
    """An mmap threshold in MB as the report names it.

    Examples:
        >>> mmap_label(1 << 20), mmap_label(64 << 20), mmap_label(512 << 10)
        ('1 MB', '64 MB', '0.5 MB')
    """
    return f"{nbytes / 2**20:g} MB"


def _malloc(settings: dict) -> str:
    threshold = settings["malloc_mmap_threshold"]
    return f"mmap threshold {mmap_label(threshold)}" if threshold is not None else "glibc default malloc"


def _graph(settings: dict) -> str:
    return "frozen graph" if settings["optimize_cpu_inference"] else "eager"


def product_row(settings: dict) -> str:
    """The name of the inference row measured with inference.json's CPU setting.

    Examples:
        >>> product_row({"sw_batch_size": 4, "optimize_cpu_inference": True, "malloc_mmap_threshold": 1 << 20})
        'batched (4), frozen graph, mmap threshold 1 MB (inference.json on a CPU)'
    """
    return f"batched ({settings['sw_batch_size']}), {_graph(settings)}, {_malloc(settings)} (inference.json on a CPU)"


def window_row(settings: dict, batch: int, malloc: str | None = None) -> str:
    """The name of a row measured at inference.json's window size (``roi_size``).

    Examples:
        >>> window_row({"roi_size": [224, 224], "optimize_cpu_inference": True, "malloc_mmap_threshold": 1 << 20}, 4)
        '224 x 224 windows, batch 4, frozen graph, mmap threshold 1 MB'
    """
    roi = settings["roi_size"]
    return f"{roi[0]} x {roi[1]} windows, batch {batch}, {_graph(settings)}, {malloc or _malloc(settings)}"


def _product_row_of(inference: dict, settings: dict) -> str:
    """The product row of results saved before runs recorded its name: the one product_row() named."""
    return next((name for name in inference if name.endswith(" (inference.json on a CPU)")), product_row(settings))


def _settings(results: dict) -> dict:
    if "settings" not in results:
        raise KeyError("the results name no inference settings: complete results saved before runs recorded them "
                       "with osnet_monai.benchmarking.complete_saved_results")
    return results["settings"]


def _torch_threads(results: dict) -> int:
    if results.get("torch_threads"):
        return int(results["torch_threads"])
    found = re.search(r"\((\d+) threads\)", results["machine"])  # machine(): "torch X (N threads)"
    if not found:
        raise ValueError("the results name no torch thread count (neither 'torch_threads' nor the machine line)")
    return int(found.group(1))


def _gpu(results: dict) -> str | None:
    if "gpu" in results:
        return results["gpu"]
    found = re.search(r"GPU: (.+)$", results["machine"])
    return None if not found or found.group(1) == "none" else found.group(1)


def _rate_cells(rate: float | str, flops: int, matmul: float) -> str:
    if isinstance(rate, str):
        return f"{rate} | | | | |"
    gflops = rate * flops / 1e9
    return f"{rate:.2f} | {1 / rate:.3f} | {gflops:.0f} | {100 * gflops / matmul:.0f}% | {PAPER_SECONDS_PER_SECTION * rate:.1f}x |"


def render_report(results: dict[str, Any]) -> str:
    """The markdown of ``docs/benchmarks.md`` for a run's ``results``
    (:func:`osnet_monai.benchmarking.run_benchmarks`, or ``docs/benchmarks.json`` read back)."""
    r = results
    settings = _settings(r)
    threads = _torch_threads(r)
    flops, matmul = r["flops_per_section"], r["matmul_gflops"]
    best = max(v for v in r["inference"].values() if not isinstance(v, str))
    windows = r.get("windows", {})
    product_name = r.get("product_row") or _product_row_of(r["inference"], settings)
    # the product row is at inference.json's window size when the run measured it there
    product_flops = r["window_flops"] if product_name in windows else flops
    product = {**r["inference"], **windows}[product_name]
    product_gflops = product * product_flops / 1e9
    product_setting = f"{_graph(settings)}, batch {settings['sw_batch_size']}, {_malloc(settings)}"
    if product_name in windows:
        product_setting = f"{settings['roi_size'][0]} x {settings['roi_size'][1]} windows, " + product_setting
    series = r["series"]
    frame_mb = float(math.prod(series["frame_shape"])) * 4 / 2**20
    longest = series["lengths"][-1]["frames"]
    checkpoints = sorted({k for k in (1, 2, 4, 8, 12, 16, longest) if k <= longest})
    threshold = settings["malloc_mmap_threshold"]
    lines = [
        "# Benchmarks",
        "",
        f"Regenerated by `python scripts/benchmark.py{' --quick' if r['quick'] else ''}` on {r['date']}, "
        "every row measured in the same run.",
        "",
        f"Machine: {r['machine']}.",
        "",
        "## Inference, OS-Net, 448 x 448 sections, CPU fp32",
        "",
        f"- fp32 matmul rate measured in this run (2048 x 2048, {threads} threads): "
        f"**{matmul:.0f} GFLOP/s**.",
        f"- FLOPs per section (`torch.utils.flop_counter`): **{flops / 1e9:.1f} GFLOP**.",
        f"- inference.json's CPU setting ({product_setting}): **{product_gflops:.0f} GFLOP/s, "
        f"{100 * product_gflops / matmul:.0f}% of the matmul rate** (target: at least {NETWORK_TARGET:.0%}: "
        f"{'met' if product_gflops >= NETWORK_TARGET * matmul else 'NOT met'})"
        + (f", {PAPER_SECONDS_PER_SECTION * product:.1f}x the paper's {PAPER_SECONDS_PER_SECTION} s per section."
           if product_flops == flops else "."),
        f"- Fastest row: {best * flops / 1e9:.0f} GFLOP/s, {100 * best * flops / 1e9 / matmul:.0f}% of the matmul rate, "
        f"{PAPER_SECONDS_PER_SECTION * best:.1f}x the paper.",
        "",
        f"| setting | sections/s | s/section | achieved GFLOP/s | share of matmul rate | vs paper ({PAPER_SECONDS_PER_SECTION} s) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    lines += [f"| {name} | {_rate_cells(rate, flops, matmul)}" for name, rate in r["inference"].items()]
    if windows:
        roi = settings["roi_size"]
        lines += [
            "",
            f"At inference.json's window size: the inferer hands the network {roi[0]} x {roi[1]} windows "
            f"(`roi_size`) whatever the section's size; {r['window_flops'] / 1e9:.2f} GFLOP per window. The rows that "
            "choose `sw_batch_size` and the malloc setting:",
            "",
            "| setting | windows/s | s/window | achieved GFLOP/s | share of matmul rate |",
            "|---|---:|---:|---:|---:|",
        ]
        lines += [f"| {name} | {_window_cells(rate, r['window_flops'], matmul)}" for name, rate in windows.items()]
    lines += [
        "",
        (f"`inference.json` fixes glibc's mmap threshold at {mmap_label(threshold)} (`malloc_mmap_threshold`); "
         if threshold is not None else "`inference.json` leaves glibc's mmap threshold alone (`malloc_mmap_threshold` null); ")
        + "the rows above price that choice against glibc's default and raised thresholds (environment variables, "
        "set before the process starts), and the 4D series section below weighs it against peak memory.",
        "",
        "## GPU",
        "",
    ]
    if r["cuda"]:
        lines += [f"Card: {_gpu(r)}.", "", "| setting | sections/s |", "|---|---:|"]
        lines += [f"| {name} | {rate:.1f} |" for name, rate in r["cuda"].items()]
    else:
        lines.append(
            "No GPU on this machine. The CUDA settings are config values of `inference.json` (`amp`, "
            "`channels_last`, `cudnn_benchmark`) and `train.json` (`amp`); `tests/inference/test_inference.py` runs "
            "them on the CPU and checks the result equals the default path. On a GPU this section lists "
            "fp32, AMP and channels_last rates."
        )
    lines += [
        "",
        "## Skipping sections with no cell",
        "",
        "A 448 x 448 x Z stack through MONAI's `SliceInferer` (sw_batch_size 8), with the share of "
        "sections that show cell as given; `SkipEmptyWindows` runs the network only on windows with "
        "cell (anything above the medium's RI):",
        "",
        "| sections with cell | without skipping (sections/s) | with `SkipEmptyWindows` (sections/s) | speed-up |",
        "|---:|---:|---:|---:|",
    ]
    for share, (plain, skipping) in r["skip_empty"].items():
        lines.append(f"| {float(share):.0%} | {plain:.2f} | {skipping:.2f} | {skipping / plain:.2f}x |")
    skipping = "skipping sections without cell" if settings["skip_empty_sections"] else "every section through the network"
    lines += [
        "",
        "## 4D series end to end (read, segment, write, measure)",
        "",
        f"`osnet-monai segment` on an ht2h series ({' x '.join(map(str, series['frame_shape']))} per frame, "
        f"{frame_mb:.0f} MB as float32), inference.json's defaults ({_graph(settings)}, {settings['sw_batch_size']} windows "
        f"per batch, {skipping}, {_malloc(settings)}), figures {'on' if settings['save_figures'] else 'off'}, one fresh "
        "process per row. Peak RSS is the "
        "process's own high-water mark (`VmHWM`; `ru_maxrss` would carry over the benchmark's own peak, which "
        "Linux hands to a child across fork and exec).",
        "",
        "| frames | wall time (s) | s/frame | peak RSS (MB) |",
        "|---:|---:|---:|---:|",
    ]
    for row in series["lengths"]:
        lines.append(f"| {row['frames']} | {row['seconds']:.1f} | {row['seconds'] / row['frames']:.1f} | {row['peak_mb']:.0f} |")
    first, last = series["lengths"][0], series["lengths"][-1]
    growth = (last["peak_mb"] - first["peak_mb"]) / (last["frames"] - first["frames"])
    lines += [
        "",
        f"Peak RSS from {first['frames']} to {last['frames']} frames: {first['peak_mb']:.0f} -> {last['peak_mb']:.0f} MB, "
        f"{growth:+.1f} MB per added frame against {frame_mb:.0f} MB for one float32 frame: "
        f"{'flat, frames are streamed' if abs(growth) < 0.25 * frame_mb else 'NOT flat'}.",
        "",
        f"The {last['frames']}-frame series under each malloc setting, peak RSS (MB) after frame k of the same run:",
        "",
        "| malloc | s/frame | " + " | ".join(f"k = {k}" for k in checkpoints) + " | growth after frame 2 (MB/frame) |",
        "|---|---:|" + "---:|" * len(checkpoints) + "---:|",
    ]
    for setting, run in series["malloc"].items():
        curve = run["after_frame"]
        late_growth = _late_growth(curve)
        lines.append(
            f"| {setting} | {run['seconds'] / len(curve):.1f} | " + " | ".join(str(curve[k - 1]) for k in checkpoints)
            + f" | {late_growth:+.1f} |"
        )
    if "end_to_end" in r:
        lines += _end_to_end_lines(r["end_to_end"], settings, series, frame_mb)
    serial = "run serially so that cProfile, which follows one thread, sees every stage; " if "end_to_end" in r else ""
    lines += [
        "",
        f"Where the time goes (cProfile, cumulative seconds, the {r['profile_frames']}-frame series; {serial}stages nest):",
        "",
        "| stage | seconds | share of the run |",
        "|---|---:|---:|",
    ]
    total = r["profile"]["whole run (segment)"]
    lines += [f"| {stage} | {sec:.1f} | {100 * sec / total:.0f}% |" for stage, sec in r["profile"].items()]
    if "memory" in r:
        lines += _memory_lines(r["memory"])
    lines += _training_lines(r["training"], threads)
    return "\n".join(lines) + "\n"


def _memory_lines(m: dict) -> list[str]:
    """The memory ceiling: a large stack against the issue's limit, each stage's peak on a smaller
    stack, a long series' peak frame by frame."""
    shape = " x ".join(map(str, m["stack_shape"]))
    stack_mb = math.prod(m["stack_shape"]) * 4 / 2**20
    stack, series = m["stack"], m["series"]
    ceiling = f"within {m['ceiling_mb'] / 1024:.0f} GB"
    if "stopped_above_mb" in stack:
        stack_line = (f"**stopped above {stack['stopped_above_mb'] / 1024:.1f} GB** "
                      f"({stack['stopped_above_mb'] / stack_mb:.1f} times the stack; target: {ceiling}: NOT met).")
    else:
        met = "met" if stack["peak_mb"] <= m["ceiling_mb"] else "NOT met"
        stack_line = (f"**peak {stack['peak_mb'] / 1024:.1f} GB**, {stack['peak_mb'] / stack_mb:.1f} times the stack, "
                      f"in {stack['seconds']:.0f} s (target: {ceiling}: {met}).")
    lines = [
        "",
        "## Memory ceiling",
        "",
        "`osnet-monai segment` with inference.json's defaults, each run in a fresh process, peak RSS (`VmHWM`).",
        "",
        f"- A {shape} float32 stack ({stack_mb / 1024:.1f} GB; plain NIfTI, four ht2h cells in the medium): " + stack_line,
    ]
    if m.get("stages"):
        staged_mb = math.prod(m["stages_shape"]) * 4 / 2**20
        lines += [
            "",
            f"Where it goes: each stage on a {' x '.join(map(str, m['stages_shape']))} stack ({staged_mb:.0f} MB as float32), "
            "one after another in one process; *added* is the stage's peak above the memory held before it, *held* "
            "what is resident after it, both in frames (multiples of the stack's float32 size):",
            "",
            "| stage | added at its peak (frames) | held after it (frames) |",
            "|---|---:|---:|",
        ]
        lines += [f"| {name} | {(peak - before) / staged_mb:.2f} | {after / staged_mb:.2f} |" for name, before, peak, after in m["stages"]]
    curve = series["after_frame"]
    checkpoints = sorted({k for k in (1, 2, 4, 8, 16, 24, 32, len(curve)) if k <= len(curve)})
    lines += [
        "",
        f"- A {len(curve)}-frame series of the ht2h frames above: peak RSS (MB) after frame k:",
        "",
        "| " + " | ".join(f"k = {k}" for k in checkpoints) + " | growth after frame 2 (MB/frame) |",
        "|" + "---:|" * (len(checkpoints) + 1),
        "| " + " | ".join(str(curve[k - 1]) for k in checkpoints) + f" | {_late_growth(curve):+.1f} |",
    ]
    return lines


def _window_cells(rate: float | str, flops: int, matmul: float) -> str:
    if isinstance(rate, str):
        return f"{rate} | | | |"
    gflops = rate * flops / 1e9
    return f"{rate:.2f} | {1 / rate:.3f} | {gflops:.0f} | {100 * gflops / matmul:.0f}% |"


def _end_to_end_lines(e: dict, settings: dict, series: dict, frame_mb: float) -> list[str]:
    """The series against the network alone: the headline ratio, each end-to-end setting, each
    network-alone setting, and which of them inference.json uses."""
    runs, network, z, frames = e["segment"], e["network"], e["sections_per_frame"], e["frames"]
    own_run = next(iter(runs))
    own_network = next(iter(network))
    batch = str(settings["sw_batch_size"])
    alone = network[own_network][batch]
    steady = runs[own_run]["steady_sections_per_s"]
    whole = frames * z / runs[own_run]["seconds"]
    fastest_run = max(runs, key=lambda name: runs[name]["steady_sections_per_s"])
    batches = sorted({b for rates in network.values() for b in rates}, key=int)
    fastest_batch = max(network[own_network], key=lambda b: network[own_network][b])
    fastest_network = max(network, key=lambda name: max(network[name].values()))
    shape = " x ".join(map(str, series["frame_shape"]))
    lines = [
        "",
        f"## End to end against the network alone ({shape} series, {frames} frames)",
        "",
        f"The same {frames - 1} frames ({(frames - 1) * z} sections) measured two ways in this run, each in a fresh process: "
        "the network alone (inference.json's `inference_network` through its `inferer` on the preprocessed "
        "frames held in memory, after a warm-up frame), and `osnet-monai segment` on the file from the first "
        "frame written to the end of the run (reading, the network, postprocessing, measuring, writing, "
        "figures; the start, which builds the frozen graph, is left out as the warm-up is).",
        "",
        f"- Network alone ({own_network}, batch {batch}): **{alone:.2f} sections/s**.",
        f"- End to end, inference.json ({own_run.replace(' (inference.json)', '')}): **{steady:.2f} sections/s, "
        f"{steady / alone:.0%} of the network alone** (target: at least {END_TO_END_TARGET:.0%}: "
        f"{'met' if steady >= END_TO_END_TARGET * alone else 'NOT met'}); the whole command, start included: "
        f"{whole:.2f} sections/s ({runs[own_run]['seconds']:.1f} s).",
        "",
        "| end-to-end setting | whole run (s) | s/frame, steady | sections/s, steady | share of the network alone | peak RSS (MB) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, run in runs.items():
        rate = run["steady_sections_per_s"]
        lines.append(f"| {name} | {run['seconds']:.1f} | {z / rate:.2f} | {rate:.2f} | {rate / alone:.0%} | {run['peak_mb']:.0f} |")
    lines += [
        "",
        "The network alone on the same sections (sections/s by `sw_batch_size`; - not measured):",
        "",
        "| network-alone setting | " + " | ".join(f"batch {b}" for b in batches) + " |",
        "|---|" + "---:|" * len(batches),
    ]
    for name, rates in network.items():
        lines.append(f"| {name} | " + " | ".join(f"{rates[b]:.2f}" if b in rates else "-" for b in batches) + " |")
    malloc = series["malloc"]
    flat = {name: run for name, run in malloc.items() if _late_growth(run["after_frame"]) < 0.25 * frame_mb}
    fastest_flat = min(flat or malloc, key=lambda name: malloc[name]["seconds"])
    own_malloc = next(iter(malloc))

    def verdict(own: str, fastest: str) -> str:
        return "inference.json's" if own == fastest else f"**not inference.json's** ({own})"

    lines += [
        "",
        "Chosen by these measurements:",
        "",
        f"- `sw_batch_size`: fastest network alone at batch {fastest_batch} "
        f"({network[own_network][fastest_batch]:.2f} sections/s), {verdict(batch, fastest_batch)}.",
        f"- Threads and overlap (`prefetch_frames`, `export_workers`, `OMP_NUM_THREADS`): fastest end to end is "
        f"{fastest_run.replace(' (inference.json)', '')}, {verdict(own_run, fastest_run)}; the network alone is fastest with "
        f"{fastest_network}.",
        f"- malloc (`malloc_mmap_threshold`, below): fastest of the settings whose peak memory stays flat is "
        f"{fastest_flat.replace(' (inference.json)', '')}, {verdict(own_malloc, fastest_flat)}.",
    ]
    return lines


def _late_growth(curve: list[int]) -> float:
    """MB of peak memory added per frame after the second."""
    return (curve[-1] - curve[min(1, len(curve) - 1)]) / max(len(curve) - 2, 1)


def _training_lines(t: dict, threads: int) -> list[str]:
    empty_share, augmented_share = t["empty_share"], t["augmented_share"]
    ratio_aug = t["augment_sections_per_s"] / t["step_sections_per_s"]
    ratio_loader = t["loader_sections_per_s"] / t["step_sections_per_s"]
    lines = [
        "",
        "## Training",
        "",
        *([f"Measured {t['date']} (`python scripts/benchmark.py --only-training` reruns this section alone), "
           "over two fields of every rendering style.", ""] if "date" in t else []),
        f"- Training step (forward, backward, Adam), batch {t['batch']} at {t['roi'][0]} x {t['roi'][1]}, "
        f"malloc thresholds raised: **{t['step_sections_per_s']:.1f} sections/s** with torch's default "
        f"{threads} threads"
        + "".join(f"; {rate:.1f} with {n} thread{'s' if int(n) > 1 else ''}" for n, rate in t["step_sections_per_s_by_threads"].items())
        + ".",
        f"- Augmentation alone (paper elastic, flips, zoom-crop, instrument augmentation), every "
        f"section augmented, one process: **{t['augment_sections_per_s']:.0f} sections/s**, {ratio_aug:.1f}x "
        "what the step consumes.",
        f"- The config's DataLoader ({t['num_workers']} workers, sections cached by `SectionDataset`, "
        f"{augmented_share:.0%} augmented copies): **{t['loader_sections_per_s']:.0f} sections/s**, {ratio_loader:.1f}x the step "
        f"(target: at least 3x): {'met' if ratio_loader >= 3 else 'NOT met'}.",
    ]
    if "generation" in t:
        gen = t["generation"]
        worst = min(v["nucleus_sections_per_s"] for v in gen.values())
        lines += [
            "- Rendering on the fly instead, one process, seconds per 3D field and nucleus sections per second: "
            + ", ".join(f"{k} {v['seconds_per_field']:.1f} s ({v['nucleus_sections_per_s']:.1f}/s)" for k, v in gen.items())
            + f"; the slowest style feeds {worst / t['step_sections_per_s']:.1f}x the step per process, which is why "
            "training reads the cached default data set (written once, `ensure_default_dataset`) instead of rendering.",
        ]
    if t.get("default_dataset_sections_per_epoch"):
        per_day = 86400 * t["step_sections_per_s_batch8"]
        epoch = t["default_dataset_sections_per_epoch"]
        lines += [
            f"- Batch 8 at the same crop: **{t['step_sections_per_s_batch8']:.1f} sections/s** (smaller batches "
            "stay in the CPU's caches). A day of this CPU buys "
            f"{per_day / 1e3:.0f} thousand training sections at batch 8, {per_day / epoch:.0f} epochs of the default data set "
            f"({epoch} sections per epoch: nucleus sections, {empty_share:.0%} nucleus-free, {augmented_share:.0%} augmented copies).",
        ]
    return lines


def write_report(results: dict[str, Any], path: str | os.PathLike) -> Path:
    """Writes :func:`render_report` of ``results`` to ``path``; returns the path."""
    path = Path(path)
    path.write_text(render_report(results))
    return path
