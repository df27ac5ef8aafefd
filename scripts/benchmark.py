"""Speed and memory of osnet-monai, measured side by side in one run; writes docs/benchmarks.md.

    python scripts/benchmark.py            # full run (about 10-15 minutes on a 2-core CPU)
    python scripts/benchmark.py --quick    # fewer repeats and frames, for a smoke check
    python scripts/benchmark.py --report-only docs/benchmarks.json   # rewrite the report only

Every number comes from this run on this machine: the fp32 matmul rate is the yardstick for the
network's achieved GFLOP/s. Settings that need a fresh process (glibc malloc thresholds) are
measured in subprocesses.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
PAPER_SECONDS_PER_SECTION = 0.91
MALLOC_ENV = {"MALLOC_MMAP_THRESHOLD_": "33554432", "MALLOC_TRIM_THRESHOLD_": "17179869184"}
PRODUCT_BATCH = 4  # inference.json's sw_batch_size
PRODUCT_ROW = f"batched ({PRODUCT_BATCH}), frozen graph, mmap threshold 1 MB (inference.json on a CPU)"


def machine() -> str:
    cpu = "unknown CPU"
    if Path("/proc/cpuinfo").is_file():
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    return (
        f"{cpu}, {os.cpu_count()} logical cores, torch {torch.__version__} ({torch.get_num_threads()} threads), "
        f"Python {platform.python_version()}, GPU: {gpu}"
    )


def best_time(fn, repeats: int, warmup: int = 1) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def matmul_gflops(n: int = 2048, repeats: int = 5) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    seconds = best_time(lambda: a @ b, repeats)
    return 2 * n**3 / seconds / 1e9


def flops_per_section(size: int = 448) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    from osnet_monai.networks import OSNet

    net = OSNet().eval()
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        net(torch.zeros(1, 1, size, size))
    return int(counter.get_total_flops())


def inference_rate(size: int, batch: int, sections: int, repeats: int, mode: str = "eager") -> float:
    """Sections per second for OS-Net forward passes at ``size`` x ``size``, ``batch`` at a time;
    ``mode`` "eager", "frozen" (``FrozenForInference``, inference.json on a CPU), "compile",
    "channels_last" or "bf16" (CPU autocast)."""
    from osnet_monai.inference import FrozenForInference
    from osnet_monai.networks import OSNet

    net = OSNet().eval()
    if mode == "frozen":
        net = FrozenForInference(net).eval()
    elif mode == "compile":
        net = torch.compile(net)
    x = torch.randn(sections, 1, size, size)
    if mode == "channels_last":
        net, x = net.to(memory_format=torch.channels_last), x.to(memory_format=torch.channels_last)

    def run():
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=mode == "bf16"):
            for start in range(0, sections, batch):
                net(x[start : start + batch])

    return sections / best_time(run, repeats)


def inference_rate_subprocess(
    size: int, batch: int, sections: int, repeats: int, env: dict, mmap_threshold: int | None = None, mode: str = "eager"
) -> float | str:
    """``inference_rate`` in a fresh process (malloc settings only apply at process start); a failure
    (e.g. torch.compile without a compiler) comes back as its last error line."""
    code = (
        "import sys, json; sys.path.insert(0, %r); import benchmark; "
        "from osnet_monai.inference import fix_malloc_mmap_threshold; fix_malloc_mmap_threshold(%r); "
        "print(json.dumps(benchmark.inference_rate(%d, %d, %d, %d, %r)))"
        % (str(Path(__file__).parent), mmap_threshold, size, batch, sections, repeats, mode)
    )
    try:
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ, **env}, timeout=600)
    except subprocess.TimeoutExpired:
        return "failed: over 10 minutes"
    if out.returncode != 0:
        return "failed: " + (out.stderr.strip().splitlines() or ["no output"])[-1][:120]
    return float(out.stdout.strip().splitlines()[-1])


def concurrent_inference_rate(processes: int, threads: int, size: int, batch: int, sections: int, repeats: int) -> float:
    """Summed sections per second of ``processes`` simultaneous processes with ``threads`` threads each
    (frozen graph, batch 4, mmap threshold 1 MB as in inference.json): how torchrun-sharded
    inference uses one machine."""
    code = (
        "import sys, json; sys.path.insert(0, %r); import benchmark; "
        "from osnet_monai.inference import fix_malloc_mmap_threshold; fix_malloc_mmap_threshold(1 << 20); "
        "print(json.dumps(benchmark.inference_rate(%d, %d, %d, %d, 'frozen')))"
        % (str(Path(__file__).parent), size, batch, sections, repeats)
    )
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    running = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=env) for _ in range(processes)]
    rates = []
    for proc in running:
        out, _ = proc.communicate()
        if proc.returncode != 0:
            raise RuntimeError("concurrent inference benchmark failed")
        rates.append(float(out.strip().splitlines()[-1]))
    return sum(rates)


def cuda_rates(batch: int = 32, sections: int = 256, repeats: int = 3) -> dict[str, float]:
    """Sections per second at 448 x 448 on the GPU: fp32, AMP (fp16 autocast), channels_last, both;
    cudnn benchmark on, as inference.json sets it."""
    from osnet_monai.networks import OSNet

    torch.backends.cudnn.benchmark = True
    device = torch.device("cuda")
    rates = {}
    for amp in (False, True):
        for channels_last in (False, True):
            net = OSNet().eval().to(device)
            x = torch.randn(sections, 1, 448, 448, device=device)
            if channels_last:
                net, x = net.to(memory_format=torch.channels_last), x.to(memory_format=torch.channels_last)

            def run():
                with torch.inference_mode(), torch.autocast("cuda", enabled=amp):
                    for start in range(0, sections, batch):
                        net(x[start : start + batch])
                torch.cuda.synchronize()

            name = f"batch {batch}, {'AMP fp16' if amp else 'fp32'}{', channels_last' if channels_last else ''}"
            rates[name] = sections / best_time(run, repeats)
    return rates


def slice_inferer_rate(volume_sections: int, skip_empty: bool, cell_share: float, repeats: int) -> float:
    """Sections per second through MONAI's SliceInferer on a 448 x 448 x Z volume, optionally skipping
    sections with no cell (``cell_share`` of them show cell)."""
    from monai.inferers import SliceInferer

    from osnet_monai.inference import SkipEmptyWindows
    from osnet_monai.networks import OSNet

    net = OSNet().eval()
    network = SkipEmptyWindows(net) if skip_empty else net
    volume = torch.zeros(1, 1, 448, 448, volume_sections)
    with_cell = int(round(cell_share * volume_sections))
    volume[..., :with_cell] = torch.rand(1, 1, 448, 448, with_cell) * 2
    inferer = SliceInferer(roi_size=(448, 448), spatial_dim=2, sw_batch_size=8, progress=False)

    def run():
        with torch.inference_mode():
            inferer(volume, network)

    return volume_sections / best_time(run, repeats, warmup=0)


PEAK_CODE = """
import json, resource, sys, time
from osnet_monai.inference import writer
from osnet_monai.inference.cli import segment

def high_water_mb():
    # VmHWM, not ru_maxrss: Linux carries the parent's peak into a child's ru_maxrss across fork + exec
    try:
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

after_frame = []
write_frame = writer.TomogramWriter.write_frame
def recording_write_frame(self, item):
    write_frame(self, item)
    after_frame.append(round(high_water_mb()))
writer.TomogramWriter.write_frame = recording_write_frame
start = time.perf_counter()
status = segment([sys.argv[1]], sys.argv[2], ckpt_path=sys.argv[3], **json.loads(sys.argv[4]))
print("RESULT", json.dumps({"seconds": time.perf_counter() - start, "peak_mb": high_water_mb(), "after_frame": after_frame}))
sys.exit(status)
"""

#: malloc settings of the series rows: (inference.json overrides, environment)
SERIES_MALLOC = {
    "mmap threshold 1 MB (inference.json)": ({}, {}),
    "glibc default": ({"malloc_mmap_threshold": None}, {}),
    "mmap threshold 64 MB": ({"malloc_mmap_threshold": 64 << 20}, {}),
    "malloc thresholds raised": ({"malloc_mmap_threshold": None}, MALLOC_ENV),
}


def write_series(frames: int, work: Path) -> Path:
    """A 4D ht2h series (448 x 448 x 64 per frame): one field shifted a little per frame."""
    from osnet_monai.phantoms import render_field, write_nifti

    base = render_field("ht2h", seed=11, frames=1)
    series = np.stack([np.roll(base.image, 4 * t, axis=0) for t in range(frames)], axis=-1)
    return write_nifti(work / f"series_{frames}.nii.gz", series, base.preset.voxel_size_um, time_step_s=600.0, medium_ri=base.preset.medium_ri)


def segment_series(image: Path, out: Path, checkpoint: Path, setting: str) -> dict:
    """``segment`` in a fresh process (malloc settings apply at process start): wall time, peak RSS and
    the peak after each frame."""
    overrides, env = SERIES_MALLOC[setting]
    out_run = subprocess.run(
        [sys.executable, "-c", PEAK_CODE, str(image), str(out), str(checkpoint), json.dumps(overrides)],
        capture_output=True, text=True, cwd=REPO, env={**os.environ, **env},
    )
    if out_run.returncode != 0:
        raise RuntimeError(out_run.stderr[-2000:])
    return json.loads(out_run.stdout.split("RESULT")[-1])


def series_end_to_end(frames_list: list[int], work: Path, checkpoint: Path) -> dict:
    """Read, segment, write and measure 4D series: one process per length with inference.json's
    settings, and the longest series under each malloc setting (peak after every frame)."""
    images = {frames: write_series(frames, work) for frames in frames_list}
    product = next(iter(SERIES_MALLOC))
    lengths = [{"frames": frames, **segment_series(images[frames], work / f"out_{frames}", checkpoint, product)} for frames in frames_list]
    longest = max(frames_list)
    settings = {product: lengths[-1]}
    for setting in list(SERIES_MALLOC)[1:]:
        settings[setting] = segment_series(images[longest], work / "out_malloc", checkpoint, setting)
    import nibabel as nib

    return {"frame_shape": tuple(int(n) for n in nib.load(images[longest]).shape[:3]), "lengths": lengths, "malloc": settings}


PROFILE_CODE = """
import cProfile, inspect, json, pstats, sys
from monai.inferers.utils import sliding_window_inference
from monai.transforms import FillHoles, Invertd, RemoveSmallObjects
from osnet_monai.inference import FrozenForInference, StreamingNiftiWriter, TomogramStream
from osnet_monai.inference.cli import segment
from osnet_monai.inference.figures import save_overlay, save_timecourse
from osnet_monai.measurements import label_nuclei, measure_nuclei, track_nuclei
from osnet_monai.networks import OSNet

stages = {
    "whole run (segment)": [segment],
    "read and preprocess": [TomogramStream._frames],
    "sliding-window inference": [sliding_window_inference],
    "of which the network": [OSNet.forward, FrozenForInference.forward],
    "invert to the input grid": [Invertd.__call__],
    "fill holes, remove small objects": [FillHoles.__call__, RemoveSmallObjects.__call__],
    "label and track nuclei": [label_nuclei, track_nuclei],
    "measure nuclei": [measure_nuclei],
    "write NIfTI": [StreamingNiftiWriter.write, StreamingNiftiWriter.close],
    "figures": [save_overlay, save_timecourse],
}
profile = cProfile.Profile()
profile.runcall(segment, [sys.argv[1]], sys.argv[2], ckpt_path=sys.argv[3])
stats = pstats.Stats(profile).stats
def seconds(fn):
    code = inspect.unwrap(fn).__code__
    return sum(v[3] for (f, line, name), v in stats.items() if f == code.co_filename and line == code.co_firstlineno and name == code.co_name)
print("RESULT", json.dumps({stage: sum(seconds(f) for f in fns) for stage, fns in stages.items()}))
"""


def stage_profile(image: Path, out: Path, checkpoint: Path) -> dict[str, float]:
    """Where the end-to-end time goes: cumulative seconds per pipeline stage under cProfile."""
    result = subprocess.run(
        [sys.executable, "-c", PROFILE_CODE, str(image), str(out), str(checkpoint)],
        capture_output=True, text=True, cwd=REPO,
    )
    if result.returncode != 0:
        raise RuntimeError(result.stderr[-2000:])
    return json.loads(result.stdout.split("RESULT")[-1])


def training_step_rate(batch: int, roi: list[int], repeats: int) -> float:
    """Sections per second of OS-Net training steps (forward, BCE, backward, Adam)."""
    from osnet_monai.networks import OSNet

    net = OSNet()
    optimizer = torch.optim.Adam(net.parameters(), lr=5e-4, betas=(0.5, 0.999))
    loss_fn = torch.nn.BCEWithLogitsLoss()
    x, y = torch.randn(batch, 1, *roi), (torch.rand(batch, 1, *roi) > 0.7).float()

    def step():
        optimizer.zero_grad()
        loss_fn(net(x), y).backward()
        optimizer.step()

    return batch / best_time(step, repeats)


def training_step_rate_subprocess(batch: int, roi: list[int], repeats: int, threads: int) -> float:
    code = (
        "import sys, json; sys.path.insert(0, %r); import benchmark; "
        "print(json.dumps(benchmark.training_step_rate(%d, %r, %d)))" % (str(Path(__file__).parent), batch, roi, repeats)
    )
    env = {**os.environ, **MALLOC_ENV, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def training_rates(repeats: int, dataset_dir: Path) -> dict:
    """A training step's sections/s (forward, backward, Adam at the config's batch size) against the
    data pipeline: the augmentation alone (every section augmented, the worst case) and the config's
    own DataLoader over phantom tomograms (its workers, 30% augmented copies)."""
    from monai.bundle import ConfigParser

    parser = ConfigParser()
    parser.read_config(str(REPO / "bundle" / "configs" / "train.json"))
    parser.update({"instrument_augment": True, "dataset_dir": str(dataset_dir)})
    batch, roi = parser["batch_size"], parser["roi_size"]
    threads = sorted({1, torch.get_num_threads()})
    step_rate_threads = {n: training_step_rate_subprocess(batch, roi, repeats, n) for n in threads}
    step_rate = step_rate_threads[torch.get_num_threads()]  # torch's default: one thread per core

    augmentation = parser.get_parsed_content("train#augmentation")
    preprocessing = parser.get_parsed_content("train#preprocessing")
    section = {"image": torch.randn(1, *roi), "label": (torch.rand(1, *roi) > 0.7).to(torch.uint8)}
    n = 64

    def augment():
        for _ in range(n):
            preprocessing(augmentation(dict(section)))

    augment_rate = n / best_time(augment, max(1, repeats // 2))

    loader = parser.get_parsed_content("train#dataloader")
    for _ in loader:  # a first epoch starts the persistent workers
        pass
    count, start = 0, time.perf_counter()
    for _ in range(3):  # whole epochs, so no batch prefetched before the clock started is counted
        for item in loader:
            count += item["image"].shape[0]
    loader_rate = count / (time.perf_counter() - start)
    return {
        "batch": batch, "roi": roi, "num_workers": parser["num_workers"], "step_sections_per_s": step_rate,
        "step_sections_per_s_by_threads": step_rate_threads,
        "step_sections_per_s_batch8": training_step_rate_subprocess(8, roi, repeats, torch.get_num_threads()),
        "augment_sections_per_s": augment_rate, "loader_sections_per_s": loader_rate,
        "generation": generation_rates(),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "default_dataset_sections_per_epoch": default_dataset_epoch_sections(parser),
    }


def training_rates_on_styles(repeats: int, tmp: Path) -> dict:
    """:func:`training_rates` over two fields of every rendering style."""
    from osnet_monai.phantoms import generate_dataset
    from osnet_monai.phantoms.styles import STYLES

    generate_dataset(tmp / "phantoms", n=2 * len(STYLES), frames=1, seed=5, preset=list(STYLES))
    return training_rates(repeats, tmp / "phantoms")


def generation_rates() -> dict:
    """Rendering a field on the fly, one process: seconds per field and nucleus sections per second,
    per style (what training would get without the cached default data set)."""
    from osnet_monai.phantoms.styles import STYLES, render_style

    rates = {}
    for style in STYLES:
        start = time.perf_counter()
        field = render_style(style, seed=11, index=0)
        seconds = time.perf_counter() - start
        sections = int(field.label.reshape(-1, field.label.shape[2]).any(axis=0).sum())
        rates[style] = {"seconds_per_field": seconds, "nucleus_sections_per_s": sections / seconds}
    return rates


def default_dataset_epoch_sections(parser) -> int:
    """Sections in one training epoch over the whole default data set (the paper's composition)."""
    datalist = REPO / "bundle" / "cache" / "default_dataset" / "datalist.json"
    if not datalist.is_file():
        return 0
    nucleus = sum(e["nucleus_sections"] for e in json.loads(datalist.read_text())["training"])
    return int(round(nucleus * (1 + parser["empty_share"]) * (1 + parser["augmented_share"])))


def _rate_cells(rate: float | str, flops: int, matmul: float) -> str:
    if isinstance(rate, str):
        return f"{rate} | | | | |"
    gflops = rate * flops / 1e9
    return f"{rate:.2f} | {1 / rate:.3f} | {gflops:.0f} | {100 * gflops / matmul:.0f}% | {PAPER_SECONDS_PER_SECTION * rate:.1f}x |"


def write_report(results: dict, path: Path) -> None:
    r = results
    flops, matmul = r["flops_per_section"], r["matmul_gflops"]
    best = max(v for v in r["inference"].values() if not isinstance(v, str))
    product = r["inference"][PRODUCT_ROW]
    series = r["series"]
    frame_mb = float(np.prod(series["frame_shape"])) * 4 / 2**20
    longest = series["lengths"][-1]["frames"]
    checkpoints = sorted({k for k in (1, 2, 4, 8, 12, 16, longest) if k <= longest})
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
        f"- fp32 matmul rate measured in this run (2048 x 2048, {torch.get_num_threads()} threads): "
        f"**{matmul:.0f} GFLOP/s**.",
        f"- FLOPs per section (`torch.utils.flop_counter`): **{flops / 1e9:.1f} GFLOP**.",
        f"- inference.json's CPU setting (frozen graph, batch 4, mmap threshold 1 MB): **{product * flops / 1e9:.0f} GFLOP/s, "
        f"{100 * product * flops / 1e9 / matmul:.0f}% of the matmul rate** (target: at least 50%: "
        f"{'met' if product * flops / 1e9 >= 0.5 * matmul else 'NOT met'}), {PAPER_SECONDS_PER_SECTION * product:.1f}x the paper's "
        f"0.91 s per section.",
        f"- Fastest row: {best * flops / 1e9:.0f} GFLOP/s, {100 * best * flops / 1e9 / matmul:.0f}% of the matmul rate, "
        f"{PAPER_SECONDS_PER_SECTION * best:.1f}x the paper.",
        "",
        "| setting | sections/s | s/section | achieved GFLOP/s | share of matmul rate | vs paper (0.91 s) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    lines += [f"| {name} | {_rate_cells(rate, flops, matmul)}" for name, rate in r["inference"].items()]
    lines += [
        "",
        "`inference.json` fixes glibc's mmap threshold at 1 MB (`malloc_mmap_threshold`); the rows above price "
        "that choice against glibc's default and raised thresholds (environment variables, set before the "
        "process starts), and the 4D series section below weighs it against peak memory.",
        "",
        "## GPU",
        "",
    ]
    if r["cuda"]:
        lines += [f"Card: {torch.cuda.get_device_name(0)}.", "", "| setting | sections/s |", "|---|---:|"]
        lines += [f"| {name} | {rate:.1f} |" for name, rate in r["cuda"].items()]
    else:
        lines.append(
            "No GPU on this machine. The CUDA settings are config values of `inference.json` (`amp`, "
            "`channels_last`, `cudnn_benchmark`) and `train.json` (`amp`); `tests/test_inference.py` runs "
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
    lines += [
        "",
        "## 4D series end to end (read, segment, write, measure)",
        "",
        f"`osnet-monai segment` on an ht2h series ({' x '.join(map(str, series['frame_shape']))} per frame, "
        f"{frame_mb:.0f} MB as float32), inference.json's defaults (frozen graph, 4 windows per batch, skipping "
        "sections without cell, mmap threshold 1 MB), figures on, one fresh process per row. Peak RSS is the "
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
        late_growth = (curve[-1] - curve[min(1, len(curve) - 1)]) / max(len(curve) - 2, 1)
        lines.append(
            f"| {setting} | {run['seconds'] / len(curve):.1f} | " + " | ".join(str(curve[k - 1]) for k in checkpoints)
            + f" | {late_growth:+.1f} |"
        )
    lines += [
        "",
        f"Where the time goes (cProfile, cumulative seconds, the {r['profile_frames']}-frame series; stages nest):",
        "",
        "| stage | seconds | share of the run |",
        "|---|---:|---:|",
    ]
    total = r["profile"]["whole run (segment)"]
    lines += [f"| {stage} | {sec:.1f} | {100 * sec / total:.0f}% |" for stage, sec in r["profile"].items()]
    t = r["training"]
    ratio_aug = t["augment_sections_per_s"] / t["step_sections_per_s"]
    ratio_loader = t["loader_sections_per_s"] / t["step_sections_per_s"]
    lines += [
        "",
        "## Training",
        "",
        *([f"Measured {t['date']} (`python scripts/benchmark.py --only-training` reruns this section alone), "
           "over two fields of every rendering style.", ""] if "date" in t else []),
        f"- Training step (forward, backward, Adam), batch {t['batch']} at {t['roi'][0]} x {t['roi'][1]}, "
        f"malloc thresholds raised: **{t['step_sections_per_s']:.1f} sections/s** with torch's default "
        f"{torch.get_num_threads()} threads"
        + "".join(f"; {rate:.1f} with {n} thread{'s' if int(n) > 1 else ''}" for n, rate in t["step_sections_per_s_by_threads"].items())
        + ".",
        f"- Augmentation alone (paper elastic, flips, zoom-crop, instrument augmentation), every "
        f"section augmented, one process: **{t['augment_sections_per_s']:.0f} sections/s**, {ratio_aug:.1f}x "
        "what the step consumes.",
        f"- The config's DataLoader ({t['num_workers']} workers, sections cached by `SectionDataset`, "
        f"30% augmented copies): **{t['loader_sections_per_s']:.0f} sections/s**, {ratio_loader:.1f}x the step "
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
            f"({epoch} sections per epoch: nucleus sections, 20% nucleus-free, 30% augmented copies).",
        ]
    path.write_text("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats and frames")
    parser.add_argument("--out", default=str(REPO / "docs" / "benchmarks.md"))
    parser.add_argument("--report-only", metavar="JSON", help="rewrite the report from a run's saved results")
    parser.add_argument("--only-training", action="store_true",
                        help="rerun only the training section, keep the other saved results")
    args = parser.parse_args(argv)
    if args.report_only:
        write_report(json.loads(Path(args.report_only).read_text()), Path(args.out))
        return 0
    if args.only_training:
        saved = Path(args.out).with_suffix(".json")
        results = json.loads(saved.read_text())
        with tempfile.TemporaryDirectory() as tmp:
            results["training"] = training_rates_on_styles(2 if args.quick else 3, Path(tmp))
        print(json.dumps(results["training"]), flush=True)
        saved.write_text(json.dumps(results, indent=1) + "\n")
        write_report(results, Path(args.out))
        print(f"wrote {args.out} (training section rerun on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})")
        return 0
    repeats = 2 if args.quick else 3
    sections = 8 if args.quick else 16
    results: dict = {"quick": args.quick, "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "machine": machine()}
    print("machine:", results["machine"], flush=True)
    results["matmul_gflops"] = matmul_gflops()
    results["flops_per_section"] = flops_per_section()
    print(f"matmul {results['matmul_gflops']:.0f} GFLOP/s; {results['flops_per_section'] / 1e9:.1f} GFLOP/section", flush=True)
    batch = 16
    one_mb, raised_mb = 1 << 20, 64 << 20
    product_batch = PRODUCT_BATCH
    results["inference"] = {
        "per-section loop (batch 1), eager, glibc default malloc": inference_rate_subprocess(448, 1, sections // 2, repeats, {}),
        f"batched ({batch}), eager, glibc default malloc": inference_rate_subprocess(448, batch, sections, repeats, {}),
        f"batched ({batch}), eager, mmap threshold fixed at 1 MB": inference_rate_subprocess(
            448, batch, sections, repeats, {}, mmap_threshold=one_mb
        ),
        f"batched ({batch}), eager, malloc thresholds raised": inference_rate_subprocess(448, batch, sections, repeats, MALLOC_ENV),
        PRODUCT_ROW: inference_rate_subprocess(448, product_batch, sections, repeats, {}, mmap_threshold=one_mb, mode="frozen"),
        f"batched ({product_batch}), frozen graph, glibc default malloc": inference_rate_subprocess(
            448, product_batch, sections, repeats, {}, mode="frozen"
        ),
        f"batched ({product_batch}), frozen graph, mmap threshold fixed at 64 MB": inference_rate_subprocess(
            448, product_batch, sections, repeats, {}, mmap_threshold=raised_mb, mode="frozen"
        ),
        f"batched ({product_batch}), frozen graph, malloc thresholds raised": inference_rate_subprocess(
            448, product_batch, sections, repeats, MALLOC_ENV, mode="frozen"
        ),
    }
    if not args.quick:
        for mode, label in (("channels_last", "eager, channels_last"), ("bf16", "eager, bf16 autocast"), ("compile", "torch.compile (after its cold compile)")):
            results["inference"][f"batched ({batch}), {label}, malloc thresholds raised"] = inference_rate_subprocess(
                448, batch, sections, repeats, MALLOC_ENV, mode=mode
            )
    print(json.dumps(results["inference"]), flush=True)
    results["matmul_gflops"] = max(results["matmul_gflops"], matmul_gflops())  # the yardstick at its best
    cores = os.cpu_count() or 1
    results["threads"] = {
        f"1 x {torch.get_num_threads()}": concurrent_inference_rate(1, torch.get_num_threads(), 448, product_batch, sections, repeats),
        "1 x 1": concurrent_inference_rate(1, 1, 448, product_batch, sections, repeats),
        f"{cores} x 1": concurrent_inference_rate(cores, 1, 448, product_batch, sections, repeats),
    }
    print(json.dumps(results["threads"]), flush=True)
    results["cuda"] = cuda_rates() if torch.cuda.is_available() else {}
    z = 16 if args.quick else 32
    results["skip_empty"] = {
        share: (slice_inferer_rate(z, False, share, 1), slice_inferer_rate(z, True, share, 1)) for share in (0.5,)
    }
    print(json.dumps(results["skip_empty"]), flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        from osnet_monai.networks import OSNet
        from osnet_monai.phantoms import generate_dataset

        checkpoint = REPO / "bundle" / "models" / "model.pt"
        if not checkpoint.is_file():
            checkpoint = Path(tmp) / "model.pt"
            torch.save(OSNet().state_dict(), checkpoint)
        results["series"] = series_end_to_end([1, 3] if args.quick else [2, 8, 16], Path(tmp), checkpoint)
        print(json.dumps(results["series"]), flush=True)
        results["profile_frames"] = results["series"]["lengths"][0]["frames"]
        results["profile"] = stage_profile(Path(tmp) / f"series_{results['profile_frames']}.nii.gz", Path(tmp) / "profiled", checkpoint)
        print(json.dumps(results["profile"]), flush=True)
        results["training"] = training_rates_on_styles(repeats, Path(tmp))
    print(json.dumps(results["training"]), flush=True)
    saved = Path(args.out).with_suffix(".json")  # the raw numbers, so the report can be rewritten without a rerun
    saved.write_text(json.dumps(results, indent=1) + "\n")
    write_report(results, Path(args.out))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
