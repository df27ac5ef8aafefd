"""Speed and memory of osnet-monai: the measuring side of ``scripts/benchmark.py``.

Every measurement is a function here; :func:`run_benchmarks` runs them all side by side and
returns the results as a JSON-ready dict, which :mod:`osnet_monai.benchmark_report` turns into
``docs/benchmarks.md``. What inference and training would run is read from the bundle's
``inference.json`` and ``train.json`` through MONAI's ``ConfigParser`` (:func:`bundle_config`,
:func:`inference_settings`), never copied.

Settings that only apply when a process starts (glibc's malloc thresholds in the environment,
``OMP_NUM_THREADS``, a peak-RSS high-water mark of its own) are measured in fresh processes that
run this module as a command::

    python -m osnet_monai.benchmarking TASK '{"keyword": "arguments as JSON"}'

``TASK`` is one of :data:`FRESH_TASKS`; the child prints ``RESULT <json>`` as its last line and
:func:`run_fresh` returns the parsed value (:func:`start_fresh` starts several side by side).
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from osnet_monai.benchmark_report import mmap_label, product_row, window_row

__all__ = [
    "MALLOC_ENV",
    "RAISED_MMAP_THRESHOLD",
    "FRESH_TASKS",
    "FreshProcessError",
    "bundle_config",
    "inference_settings",
    "machine",
    "best_time",
    "matmul_gflops",
    "flops_per_section",
    "inference_rate",
    "inference_rate_fresh",
    "concurrent_inference_rate",
    "cuda_rates",
    "slice_inferer_rate",
    "high_water_mb",
    "FrameHighWater",
    "segment_peak",
    "series_malloc_settings",
    "write_series",
    "series_end_to_end",
    "steady_rate",
    "network_alone",
    "network_alone_settings",
    "overlap_label",
    "end_to_end_options",
    "end_to_end_against_network",
    "profile_stages",
    "stage_profile",
    "training_step_rate",
    "training_step_rate_fresh",
    "training_rates",
    "training_rates_on_styles",
    "generation_rates",
    "default_dataset_epoch_sections",
    "complete_saved_results",
    "run_fresh",
    "start_fresh",
    "run_benchmarks",
    "main",
]

#: glibc's malloc thresholds raised through the environment (read by glibc when a process starts)
MALLOC_ENV = {"MALLOC_MMAP_THRESHOLD_": "33554432", "MALLOC_TRIM_THRESHOLD_": "17179869184"}
#: an mmap threshold above one 448 x 448 x 64 float32 frame (49 MB), the other side of inference.json's
RAISED_MMAP_THRESHOLD = 64 << 20
#: the prefix of the result line a fresh process prints last
RESULT_PREFIX = "RESULT "


def bundle_config(name: str = "inference.json", bundle: str | os.PathLike | None = None):
    """The bundle's config ``name`` (``inference.json``, ``train.json``) as a MONAI ``ConfigParser``,
    with ``bundle_root`` set to the bundle's folder (:func:`osnet_monai.inference.cli.bundle_dir`),
    whatever the working directory."""
    from monai.bundle import ConfigParser

    from osnet_monai.inference.cli import bundle_dir

    root = bundle_dir(bundle)
    parser = ConfigParser()
    parser.read_config(str(root / "configs" / name))
    parser["bundle_root"] = str(root)
    return parser


def inference_settings(bundle: str | os.PathLike | None = None) -> dict[str, Any]:
    """The values of ``inference.json`` that the benchmark measures and the report names.

    Examples:
        >>> sorted(inference_settings())  # doctest: +NORMALIZE_WHITESPACE
        ['cudnn_benchmark', 'export_workers', 'malloc_mmap_threshold', 'optimize_cpu_inference', 'prefetch_frames',
         'roi_size', 'save_figures', 'skip_empty_sections', 'sw_batch_size']
    """
    parser = bundle_config("inference.json", bundle)
    keys = ("sw_batch_size", "malloc_mmap_threshold", "optimize_cpu_inference", "skip_empty_sections", "save_figures",
            "cudnn_benchmark", "roi_size", "prefetch_frames", "export_workers")
    # parsed: a value may depend on the device (``sw_batch_size``)
    return {key: parser.get_parsed_content(key) for key in keys}


def machine() -> str:
    """CPU, cores, torch and its threads, Python, GPU: one line."""
    import torch

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


def best_time(fn: Callable[[], Any], repeats: int, warmup: int = 1) -> float:
    """The shortest of ``repeats`` timed calls of ``fn`` after ``warmup`` untimed ones, in seconds."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def matmul_gflops(n: int = 2048, repeats: int = 5) -> float:
    """The fp32 matmul rate of this process: the yardstick for the network's achieved GFLOP/s."""
    import torch

    a, b = torch.randn(n, n), torch.randn(n, n)
    seconds = best_time(lambda: a @ b, repeats)
    return 2 * n**3 / seconds / 1e9


def flops_per_section(size: int = 448, network=None) -> int:
    """FLOPs of ``network`` (default OS-Net) for one ``size`` x ``size`` section (``torch.utils.flop_counter``)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from osnet_monai.networks import OSNet

    net = (network if network is not None else OSNet()).eval()
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        net(torch.zeros(1, 1, size, size))
    return int(counter.get_total_flops())


def inference_rate(size: int, batch: int, sections: int, repeats: int, mode: str = "eager") -> float:
    """Sections per second for OS-Net forward passes at ``size`` x ``size``, ``batch`` at a time;
    ``mode`` "eager", "frozen" (``FrozenForInference``, inference.json on a CPU), "compile",
    "channels_last" or "bf16" (CPU autocast)."""
    import torch

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


def _inference_rate_task(mmap_threshold: int | None = None, **kwargs) -> float:
    """:func:`inference_rate` after fixing the mmap threshold (``None``: malloc left alone)."""
    from osnet_monai.inference import fix_malloc_mmap_threshold

    fix_malloc_mmap_threshold(mmap_threshold)
    return inference_rate(**kwargs)


def inference_rate_fresh(
    size: int, batch: int, sections: int, repeats: int, env: dict | None = None, mmap_threshold: int | None = None,
    mode: str = "eager",
) -> float | str:
    """:func:`inference_rate` in a fresh process with ``env`` added to the environment (malloc settings
    only apply at process start); a failure (e.g. torch.compile without a compiler) comes back as
    ``"failed: "`` and its last error line."""
    kwargs = {"size": size, "batch": batch, "sections": sections, "repeats": repeats, "mode": mode,
              "mmap_threshold": mmap_threshold}
    try:
        return float(run_fresh("inference_rate", kwargs, env=env, timeout=600))
    except subprocess.TimeoutExpired:
        return "failed: over 10 minutes"
    except FreshProcessError as err:
        return "failed: " + err.last_line[:120]


def concurrent_inference_rate(
    processes: int, threads: int, size: int, batch: int, sections: int, repeats: int, settings: dict | None = None
) -> float:
    """Summed sections per second of ``processes`` simultaneous processes with ``threads`` threads each,
    each with inference.json's CPU setting (``settings``, default :func:`inference_settings`): how
    torchrun-sharded inference uses one machine."""
    settings = settings or inference_settings()
    kwargs = {"size": size, "batch": batch, "sections": sections, "repeats": repeats,
              "mode": "frozen" if settings["optimize_cpu_inference"] else "eager",
              "mmap_threshold": settings["malloc_mmap_threshold"]}
    env = {"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    running = [start_fresh("inference_rate", kwargs, env=env) for _ in range(processes)]
    return sum(float(_collect(proc)) for proc in running)


def cuda_rates(batch: int = 32, sections: int = 256, repeats: int = 3, cudnn_benchmark: bool | None = None) -> dict[str, float]:
    """Sections per second at 448 x 448 on the GPU: fp32, AMP (fp16 autocast), channels_last, both;
    cudnn benchmark as inference.json sets it (``cudnn_benchmark``, default: read from it)."""
    import torch

    from osnet_monai.networks import OSNet

    if cudnn_benchmark is None:
        cudnn_benchmark = bool(inference_settings()["cudnn_benchmark"])
    torch.backends.cudnn.benchmark = cudnn_benchmark
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


def slice_inferer_rate(volume_sections: int, skip_empty: bool, cell_share: float, repeats: int, size: int = 448) -> float:
    """Sections per second through MONAI's SliceInferer on a ``size`` x ``size`` x Z volume, optionally
    skipping sections with no cell (``cell_share`` of them show cell)."""
    import torch
    from monai.inferers import SliceInferer

    from osnet_monai.inference import SkipEmptyWindows
    from osnet_monai.networks import OSNet

    net = OSNet().eval()
    network = SkipEmptyWindows(net) if skip_empty else net
    volume = torch.zeros(1, 1, size, size, volume_sections)
    with_cell = int(round(cell_share * volume_sections))
    volume[..., :with_cell] = torch.rand(1, 1, size, size, with_cell) * 2
    inferer = SliceInferer(roi_size=(size, size), spatial_dim=2, sw_batch_size=8, progress=False)

    def run():
        with torch.inference_mode():
            inferer(volume, network)

    return volume_sections / best_time(run, repeats, warmup=0)


def _status_mb(field: str, pid: int | str = "self") -> float | None:
    """A memory field of ``/proc/PID/status`` (``VmHWM``, ``VmRSS``) in MB; None where there is none."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith(f"{field}:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def high_water_mb() -> float:
    """This process's peak resident memory in MB: ``VmHWM``, not ``ru_maxrss`` (Linux carries the
    parent's peak into a child's ``ru_maxrss`` across fork and exec)."""
    peak = _status_mb("VmHWM")
    if peak is not None:
        return peak
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class FrameHighWater:
    """A :class:`~osnet_monai.inference.TomogramWriter` ``on_frame`` callback: after every exported
    frame, :func:`high_water_mb` (rounded) in ``after_frame`` and the seconds since :meth:`start` in
    ``done_s``. It runs where the frame is written (the export thread when the writer has one)."""

    def __init__(self) -> None:
        self.after_frame: list[int] = []
        self.done_s: list[float] = []
        self.start()

    def start(self) -> None:
        self._start = time.perf_counter()

    def __call__(self, item=None, written: bool = True) -> None:
        self.after_frame.append(round(high_water_mb()))
        self.done_s.append(time.perf_counter() - self._start)


def segment_peak(image: str, out: str, checkpoint: str, overrides: dict | None = None) -> dict:
    """``segment`` on ``image`` with inference.json's settings and ``overrides``: wall time, this
    process's peak RSS, and the peak and the time after each frame (:class:`FrameHighWater` as the
    writer's ``on_frame``). Meant for a fresh process (:func:`run_fresh` ``"segment_peak"``)."""
    from osnet_monai.inference.cli import segment

    recorder = FrameHighWater()
    recorder.start()
    start = time.perf_counter()
    status = segment([str(image)], str(out), ckpt_path=str(checkpoint), **{"writer#on_frame": [recorder]}, **(overrides or {}))
    seconds = time.perf_counter() - start
    if status != 0:
        raise RuntimeError(f"segment failed on {image}")
    return {"seconds": seconds, "peak_mb": high_water_mb(), "after_frame": recorder.after_frame, "done_s": recorder.done_s}


def steady_rate(run: dict, sections_per_frame: int) -> float:
    """Sections per second once the pipeline is full: the frames after the first over the time from
    the first frame written to the end of the run (which includes the file's CSV and figures); the
    start (config, checkpoint, building the frozen graph) is left out, as the network-alone rate
    leaves out its warm-up.

    Examples:
        >>> steady_rate({"seconds": 10.0, "done_s": [4.0, 6.0, 8.0]}, 64)
        21.333333333333332
    """
    frames = len(run["done_s"])
    return (frames - 1) * sections_per_frame / (run["seconds"] - run["done_s"][0])


def network_alone(image: str, checkpoint: str, batches: list[int], skip_frames: int = 1,
                  mmap_threshold: int | None = None, overrides: dict | None = None) -> dict[str, float]:
    """The network alone on a series' own sections: inference.json's ``inference_network`` through
    its ``inferer`` on the preprocessed frames held in memory (no reading, postprocessing or
    writing), after a warm-up on frame 0; sections per second over the frames after
    ``skip_frames`` (the frames :func:`steady_rate` counts), for each ``sw_batch_size`` in
    ``batches``. ``mmap_threshold`` as inference.json's ``initialize`` sets it. Meant for a fresh
    process (:func:`run_fresh` ``"network_alone"``, threads and malloc from its environment)."""
    import torch

    from osnet_monai.inference import TomogramStream, fix_malloc_mmap_threshold

    fix_malloc_mmap_threshold(mmap_threshold)
    parser = bundle_config("inference.json")
    parser.update({"ckpt_path": str(checkpoint), **(overrides or {})})
    device = parser.get_parsed_content("device")
    state = torch.load(str(checkpoint), map_location=device, weights_only=True)
    parser.get_parsed_content("network").load_state_dict(state.get("model", state))
    network = parser.get_parsed_content("inference_network").eval()
    inferer = parser.get_parsed_content("inferer")
    stream = TomogramStream([str(image)], transform=parser.get_parsed_content("preprocessing"))
    frames = [item["image"][None].to(device) for item in stream]
    timed = frames[skip_frames:]
    sections = sum(int(frame.shape[-1]) for frame in timed)
    rates = {}
    with torch.no_grad():  # as the evaluator runs it (the frozen graph needs gradients off)
        for batch in batches:
            inferer.sw_batch_size = int(batch)
            inferer(frames[0], network)  # warm-up: the frozen graph and its kernels for this batch

            def run():
                for frame in timed:
                    inferer(frame, network)

            rates[str(batch)] = sections / best_time(run, 1, warmup=0)
    return rates


#: torch with one thread, set where a process starts
ONE_THREAD_ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def overlap_label(prefetch_frames: int, export_workers: int, threads: int | str) -> str:
    """An end-to-end setting as the report names it.

    Examples:
        >>> overlap_label(1, 1, 2)
        'read ahead 1 frame, export thread, torch 2 threads'
        >>> overlap_label(0, 0, 1)
        'serial, torch 1 thread'
    """
    parts = ([f"read ahead {prefetch_frames} frame{'s' if prefetch_frames > 1 else ''}"] if prefetch_frames else []) + (
        ["export thread"] if export_workers else [])
    threads_part = f"torch {threads} thread{'s' if str(threads) != '1' else ''}"
    return ", ".join((parts or ["serial"]) + [threads_part])


def end_to_end_options(settings: dict, threads: int) -> dict[str, tuple[dict, dict]]:
    """The end-to-end settings priced on the series, name -> (inference.json overrides, environment):
    inference.json's own first, then reading ahead and exporting on a thread each on and off, and
    inference.json's with torch on one thread (the other core left to the helper threads).

    Examples:
        >>> list(end_to_end_options({"prefetch_frames": 1, "export_workers": 1}, threads=2))  # doctest: +NORMALIZE_WHITESPACE
        ['read ahead 1 frame, export thread, torch 2 threads (inference.json)', 'serial, torch 2 threads',
         'read ahead 1 frame, torch 2 threads', 'export thread, torch 2 threads',
         'read ahead 1 frame, export thread, torch 1 thread']
    """
    own = (int(settings["prefetch_frames"]), int(settings["export_workers"]))
    options = {f"{overlap_label(*own, threads)} (inference.json)": ({}, {})}
    for prefetch_frames, workers in ((0, 0), (1, 0), (0, 1), (1, 1)):
        if (prefetch_frames, workers) != own:
            options[overlap_label(prefetch_frames, workers, threads)] = (
                {"prefetch_frames": prefetch_frames, "export_workers": workers}, {})
    if threads != 1:
        options[overlap_label(*own, 1)] = ({}, ONE_THREAD_ENV)
    return options


def series_malloc_settings(settings: dict | None = None) -> dict[str, tuple[dict, dict]]:
    """The malloc settings of the series rows, name -> (inference.json overrides, environment); the
    first is inference.json's own.

    Examples:
        >>> list(series_malloc_settings({"malloc_mmap_threshold": 1 << 20}))
        ['mmap threshold 1 MB (inference.json)', 'glibc default', 'mmap threshold 64 MB', 'malloc thresholds raised']
    """
    settings = settings or inference_settings()
    threshold = settings["malloc_mmap_threshold"]
    own = f"mmap threshold {mmap_label(threshold)}" if threshold is not None else "glibc default"
    rows = {
        f"{own} (inference.json)": ({}, {}),
        "glibc default": ({"malloc_mmap_threshold": None}, {}),
        f"mmap threshold {mmap_label(RAISED_MMAP_THRESHOLD)}": ({"malloc_mmap_threshold": RAISED_MMAP_THRESHOLD}, {}),
        "malloc thresholds raised": ({"malloc_mmap_threshold": None}, MALLOC_ENV),
    }
    if threshold is None:
        rows.pop("glibc default")
    return rows


def write_series(frames: int, work: Path) -> Path:
    """A 4D ht2h series (448 x 448 x 64 per frame): one field shifted a little per frame."""
    import numpy as np

    from osnet_monai.phantoms import render_field, write_nifti

    base = render_field("ht2h", seed=11, frames=1)
    series = np.stack([np.roll(base.image, 4 * t, axis=0) for t in range(frames)], axis=-1)
    return write_nifti(work / f"series_{frames}.nii.gz", series, base.preset.voxel_size_um, time_step_s=600.0, medium_ri=base.preset.medium_ri)


def series_end_to_end(frames_list: list[int], work: Path, checkpoint: Path, settings: dict | None = None) -> dict:
    """Read, segment, write and measure 4D series: one fresh process per length with inference.json's
    settings, and the longest series under each malloc setting (peak after every frame)."""
    import nibabel as nib

    malloc = series_malloc_settings(settings)
    images = {frames: write_series(frames, work) for frames in frames_list}

    def fresh(image: Path, out: Path, setting: str) -> dict:
        overrides, env = malloc[setting]
        return run_fresh("segment_peak", {"image": str(image), "out": str(out), "checkpoint": str(checkpoint),
                                          "overrides": overrides}, env=env)

    product = next(iter(malloc))
    lengths = [{"frames": frames, **fresh(images[frames], work / f"out_{frames}", product)} for frames in frames_list]
    longest = max(frames_list)
    runs = {product: lengths[-1]}
    for setting in list(malloc)[1:]:
        runs[setting] = fresh(images[longest], work / "out_malloc", setting)
    return {"frame_shape": tuple(int(n) for n in nib.load(images[longest]).shape[:3]), "lengths": lengths, "malloc": runs}


#: the issue's memory ceiling: a 2048 x 2048 x 200 float32 stack (3.2 GB) within 8 GB of peak memory
LARGE_STACK_SHAPE = (2048, 2048, 200)
LARGE_STACK_CEILING_MB = 8192


def write_large_stack(shape: Sequence[int], work: Path) -> Path:
    """A large plain-NIfTI stack at ht2h's voxel size: the medium with the field's own background
    noise, and four copies of an ht2h field placed apart in x, y and z (the network runs only where
    there is cell, so the stack's cost is its memory, not its sections)."""
    import numpy as np

    from osnet_monai.phantoms import render_field, write_nifti

    field = render_field("ht2h", seed=11, frames=1)
    cell = field.image
    rng = np.random.default_rng(0)
    noise = float(cell[:32, :32, :].std())
    stack = np.empty(tuple(shape), dtype=np.float32)
    for z in range(stack.shape[2]):  # a section at a time: the whole stack in float64 would not fit
        stack[:, :, z] = field.preset.medium_ri + rng.normal(0.0, noise, stack.shape[:2])
    for place in ((0.05, 0.05, 0.1), (0.7, 0.15, 0.3), (0.3, 0.7, 0.5), (0.75, 0.75, 0.7)):
        if all(n >= c for n, c in zip(stack.shape, cell.shape)):
            x, y, z = (int((n - c) * f) for n, c, f in zip(stack.shape, cell.shape, place))
            stack[x:x + cell.shape[0], y:y + cell.shape[1], z:z + cell.shape[2]] = cell
    path = work / f"stack_{'x'.join(map(str, shape))}.nii"  # plain NIfTI: written and read without a gzip pass
    return write_nifti(path, stack, field.preset.voxel_size_um, medium_ri=field.preset.medium_ri)


def _rss_mb(pid: int) -> float:
    return _status_mb("VmRSS", pid) or 0.0


def run_fresh_capped(task: str, kwargs: dict, cap_mb: float) -> Any:
    """:func:`run_fresh`, stopped once the process's resident memory passes ``cap_mb`` (a run that
    would take the machine's memory is measured as far as the cap, not left to the OOM killer).
    Returns the task's result, or ``{"stopped_above_mb": cap_mb}``."""
    process = start_fresh(task, kwargs)
    while True:
        try:
            stdout, stderr = process.communicate(timeout=1.0)
            return _result(task, process.returncode, stdout, stderr)
        except subprocess.TimeoutExpired:
            if _rss_mb(process.pid) > cap_mb:
                process.kill()
                process.communicate()
                return {"stopped_above_mb": cap_mb}


def stage_memory(image: str, checkpoint: str) -> list[list]:
    """Each stage of ``segment``'s pipeline on the first frame of ``image``, one after another in this
    process: ``[stage, MB resident before it, peak MB while it ran, MB after it]``, the peak taken
    from ``VmHWM`` reset before each stage (``/proc/self/clear_refs``). The stages are inference.json's
    preprocessing transforms, the inferer, its postprocessing transforms and the writer's steps.
    Meant for a fresh process (:func:`run_fresh` ``"stage_memory"``)."""
    import numpy as np
    import torch

    from osnet_monai.inference import TomogramStream, fix_malloc_mmap_threshold
    from osnet_monai.inference.figures import overlay_sections
    from osnet_monai.inference.postprocessing import voxel_spacing
    from osnet_monai.measurements import NucleusTracker, cell_mask_from_ri, label_cells, measure_nuclei

    parser = bundle_config("inference.json")
    parser.update({"ckpt_path": str(checkpoint)})
    fix_malloc_mmap_threshold(parser.get_parsed_content("malloc_mmap_threshold"))
    state = torch.load(str(checkpoint), map_location="cpu", weights_only=True)
    parser.get_parsed_content("network").load_state_dict(state.get("model", state))
    network = parser.get_parsed_content("inference_network").eval()
    inferer = parser.get_parsed_content("inferer")
    rows: list[list] = []

    def stage(name: str, run: Callable[[], Any]) -> Any:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")  # resets VmHWM to the current resident size
        before = _rss_mb(os.getpid())
        out = run()
        rows.append([name, round(before), round(high_water_mb()), round(_rss_mb(os.getpid()))])
        return out

    item = stage("read the frame", lambda: next(iter(TomogramStream([str(image)]))))
    for transform in parser.get_parsed_content("preprocessing").transforms:
        item = stage(type(transform).__name__, lambda: transform(item))
    with torch.no_grad():
        item["pred"] = stage("network (inferer)", lambda: inferer(item["image"][None], network)[0])
    for transform in parser.get_parsed_content("postprocessing").transforms:
        item = stage(type(transform).__name__, lambda: transform(item))
    labels, ri = np.asarray(item["pred"])[0], item["ri"]
    medium, spacing = float(item["medium_ri"]), voxel_spacing(item["pred"].affine)
    labels = stage("track ids", lambda: NucleusTracker(spacing)(labels))
    cells_mask = stage("cell mask", lambda: cell_mask_from_ri(ri, medium, spacing))
    cells = stage("cell instances", lambda: label_cells(cells_mask, labels, spacing))
    stage("measurements", lambda: measure_nuclei(labels, ri, spacing, medium, cell_labels_xyz=cells))
    stage("overlay figure", lambda: overlay_sections(ri, labels))
    return rows


#: the stage profile's stack: big enough that the frame dominates, small enough for any machine
STAGE_MEMORY_SHAPE = (1024, 1024, 100)


def memory_ceiling(work: Path, checkpoint: Path, quick: bool = False) -> dict:
    """Peak memory of ``segment`` with inference.json's settings, each in a fresh process: on a large
    stack (:data:`LARGE_STACK_SHAPE`, a quarter of it in x-y when ``quick``) against
    :data:`LARGE_STACK_CEILING_MB` (stopped at twice the ceiling or when the machine's memory runs
    short), each stage's peak on a smaller stack (:func:`stage_memory`), and a long series (40
    frames, 6 when ``quick``) with the peak after every frame."""
    shape = (1024, 1024, 50) if quick else LARGE_STACK_SHAPE
    stack = write_large_stack(shape, work)
    cap_mb = min(2 * LARGE_STACK_CEILING_MB, 0.8 * _available_mb())
    large = run_fresh_capped("segment_peak", {"image": str(stack), "out": str(work / "out_stack"),
                                              "checkpoint": str(checkpoint)}, cap_mb)
    stack.unlink()
    staged_shape = list((512, 512, 50) if quick else STAGE_MEMORY_SHAPE)
    staged = write_large_stack(staged_shape, work)
    stages = run_fresh("stage_memory", {"image": str(staged), "checkpoint": str(checkpoint)})
    staged.unlink()
    frames = 6 if quick else 40
    series = write_series(frames, work)
    long = run_fresh("segment_peak", {"image": str(series), "out": str(work / "out_long"), "checkpoint": str(checkpoint)})
    return {"stack_shape": list(shape), "stack": large, "ceiling_mb": LARGE_STACK_CEILING_MB,
            "stages_shape": staged_shape, "stages": stages, "series_frames": frames, "series": long}


def _available_mb() -> float:
    try:
        with open("/proc/meminfo") as info:
            for line in info:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float(4 * LARGE_STACK_CEILING_MB)


def network_alone_settings(settings: dict, threads: int, batches: list[int]) -> dict[str, tuple[list[int], int | None, dict]]:
    """The network-alone runs, name -> (sw_batch_sizes, mmap threshold, environment): inference.json's
    malloc and threads at every batch size, then one thread, glibc's default malloc and raised
    thresholds at inference.json's batch size and at 1.

    Examples:
        >>> list(network_alone_settings({"malloc_mmap_threshold": 1 << 20, "sw_batch_size": 4}, 2, [1, 2, 4, 8]))
        ['mmap threshold 1 MB, torch 2 threads', 'mmap threshold 1 MB, torch 1 thread', 'glibc default malloc, torch 2 threads', 'malloc thresholds raised, torch 2 threads']
    """
    own = settings["malloc_mmap_threshold"]
    own_label = f"mmap threshold {mmap_label(own)}" if own is not None else "glibc default malloc"
    few = sorted({1, int(settings["sw_batch_size"])})
    runs = {f"{own_label}, torch {threads} threads": (batches, own, {})}
    if threads != 1:
        runs[f"{own_label}, torch 1 thread"] = (few, own, ONE_THREAD_ENV)
    if own is not None:
        runs[f"glibc default malloc, torch {threads} threads"] = (few, None, {})
    runs[f"malloc thresholds raised, torch {threads} threads"] = (few, None, MALLOC_ENV)
    return runs


def end_to_end_against_network(image: Path, frames: int, checkpoint: Path, settings: dict, threads: int,
                               product_run: dict, work: Path, batches: list[int]) -> dict:
    """Sections per second of the network alone and of ``segment`` on the same ``frames``-frame
    series in the same run: the network-alone runs of :func:`network_alone_settings`, and
    ``segment`` under each of :func:`end_to_end_options` (``product_run`` is inference.json's own,
    already measured), every one in a fresh process."""
    import nibabel as nib

    z = int(nib.load(image).shape[2])
    network = {}
    for name, (sizes, mmap, env) in network_alone_settings(settings, threads, batches).items():
        network[name] = run_fresh("network_alone", {"image": str(image), "checkpoint": str(checkpoint), "batches": sizes,
                                                    "mmap_threshold": mmap}, env=env)
    runs = {}
    for i, (name, (overrides, env)) in enumerate(end_to_end_options(settings, threads).items()):
        runs[name] = product_run if i == 0 else run_fresh(
            "segment_peak", {"image": str(image), "out": str(work / "out_options"), "checkpoint": str(checkpoint),
                             "overrides": overrides}, env=env)
        runs[name] = {**runs[name], "steady_sections_per_s": steady_rate(runs[name], z)}
    return {"frames": frames, "sections_per_frame": z, "network": network, "segment": runs}


def profile_stages() -> dict[str, list[Callable]]:
    """The pipeline's stages as the functions whose cumulative time under cProfile makes each."""
    from monai.inferers.utils import sliding_window_inference

    from osnet_monai.inference import (
        CroppedFillHoles,
        CroppedRemoveSmallObjects,
        FrozenForInference,
        InvertSectionSpacingd,
        StreamingNiftiWriter,
        TomogramStream,
    )
    from osnet_monai.inference.cli import segment
    from osnet_monai.inference.figures import overlay_sections, render_overlay, save_timecourse
    from osnet_monai.inference.quality import QualityRecord
    from osnet_monai.measurements import NucleusTracker, cell_mask_from_ri, label_cells, label_nuclei, measure_nuclei
    from osnet_monai.networks import OSNet

    # the steps inference.json names (a case handed on to MONAI's counts inside ours); functions of
    # one stage do not call each other, so their times add up
    return {
        "whole run (segment)": [segment],
        "read and preprocess": [TomogramStream._frames],
        "sliding-window inference": [sliding_window_inference],
        "of which the network": [OSNet.forward, FrozenForInference.forward],
        "invert to the input grid": [InvertSectionSpacingd.__call__],
        "fill holes, remove small objects": [CroppedFillHoles.__call__, CroppedRemoveSmallObjects.__call__],
        "label and track nuclei": [label_nuclei, NucleusTracker.__call__],
        "cells (mask from the RI, one region per nucleus)": [cell_mask_from_ri, label_cells],
        "measure nuclei and cells": [measure_nuclei],
        "quality record": [QualityRecord.add_frame],
        "write NIfTI": [StreamingNiftiWriter.write, StreamingNiftiWriter.close],
        "figures": [overlay_sections, render_overlay, save_timecourse],
    }


#: the overrides that put every stage in the evaluator's thread, where cProfile sees it
SERIAL = {"export_workers": 0, "prefetch_frames": 0}


def stage_profile(image: str, out: str, checkpoint: str, overrides: dict | None = None) -> dict[str, float]:
    """Where ``segment``'s time goes: cumulative seconds per stage of :func:`profile_stages` under
    cProfile (stages nest), run serially (:data:`SERIAL`: cProfile sees one thread) unless
    ``overrides`` say otherwise. Run it in a fresh process (:func:`run_fresh` ``"stage_profile"``)
    so nothing imported or warmed earlier is left out."""
    import cProfile
    import inspect
    import pstats

    from osnet_monai.inference.cli import segment

    stages = profile_stages()
    profile = cProfile.Profile()
    profile.runcall(segment, [str(image)], str(out), ckpt_path=str(checkpoint), **{**SERIAL, **(overrides or {})})
    stats = pstats.Stats(profile).stats  # type: ignore[attr-defined]

    def seconds(fn: Callable) -> float:
        code = inspect.unwrap(fn).__code__
        return sum(v[3] for (f, line, name), v in stats.items()
                   if f == code.co_filename and line == code.co_firstlineno and name == code.co_name)

    return {stage: sum(seconds(f) for f in fns) for stage, fns in stages.items()}


def training_step_rate(batch: int, roi: list[int], repeats: int) -> float:
    """Sections per second of OS-Net training steps on the CPU: train.json's network, loss and
    optimizer (forward, loss, backward, optimizer step)."""
    import torch

    parser = bundle_config("train.json")
    parser["device"] = "$torch.device('cpu')"
    net = parser.get_parsed_content("network")
    optimizer = parser.get_parsed_content("optimizer")
    loss_fn = parser.get_parsed_content("loss")
    x, y = torch.randn(batch, 1, *roi), (torch.rand(batch, 1, *roi) > 0.7).float()

    def step():
        optimizer.zero_grad()
        loss_fn(net(x), y).backward()
        optimizer.step()

    return batch / best_time(step, repeats)


def training_step_rate_fresh(batch: int, roi: list[int], repeats: int, threads: int) -> float:
    """:func:`training_step_rate` in a fresh process with ``threads`` threads, malloc thresholds raised."""
    env = {**MALLOC_ENV, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    return float(run_fresh("training_step_rate", {"batch": batch, "roi": list(roi), "repeats": repeats}, env=env))


def training_rates(repeats: int, dataset_dir: Path) -> dict:
    """A training step's sections/s (forward, backward, optimizer at the config's batch size) against the
    data pipeline: the augmentation alone (every section augmented, the worst case) and the config's
    own DataLoader over phantom tomograms (its workers, 30% augmented copies)."""
    import torch

    parser = bundle_config("train.json")
    parser.update({"instrument_augment": True, "dataset_dir": str(dataset_dir)})
    batch, roi = parser["batch_size"], parser["roi_size"]
    threads = sorted({1, torch.get_num_threads()})
    step_rate_threads = {n: training_step_rate_fresh(batch, roi, repeats, n) for n in threads}
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
        "step_sections_per_s_batch8": training_step_rate_fresh(8, roi, repeats, torch.get_num_threads()),
        "augment_sections_per_s": augment_rate, "loader_sections_per_s": loader_rate,
        "generation": generation_rates(),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "default_dataset_sections_per_epoch": default_dataset_epoch_sections(parser),
        "empty_share": parser["empty_share"], "augmented_share": parser["augmented_share"],
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


def default_dataset_epoch_sections(parser=None) -> int:
    """Sections in one training epoch over the whole default data set (the paper's composition), from
    train.json's ``data_cache_dir``, ``empty_share`` and ``augmented_share``; 0 when the default data
    set has not been written."""
    parser = parser or bundle_config("train.json")
    datalist = Path(parser.get_parsed_content("data_cache_dir")) / "datalist.json"
    if not datalist.is_file():
        return 0
    nucleus = sum(e["nucleus_sections"] for e in json.loads(datalist.read_text())["training"])
    return int(round(nucleus * (1 + parser["empty_share"]) * (1 + parser["augmented_share"])))


def complete_saved_results(results: dict, bundle: str | os.PathLike | None = None) -> dict:
    """``results`` as :mod:`osnet_monai.benchmark_report` needs them: results saved before runs
    recorded their inference settings (``settings``) and the training set's composition
    (``empty_share``, ``augmented_share``) get the bundle's current values, read from
    ``inference.json`` and ``train.json``. Returns ``results``, completed in place."""
    if "settings" not in results:
        results["settings"] = inference_settings(bundle)
    training = results.get("training")
    if training is not None and not {"empty_share", "augmented_share"} <= training.keys():
        parser = bundle_config("train.json", bundle)
        training.setdefault("empty_share", parser["empty_share"])
        training.setdefault("augmented_share", parser["augmented_share"])
    return results


# -- fresh processes -------------------------------------------------------------------------------

#: what a fresh process can run: task name -> function of JSON keyword arguments, JSON result
FRESH_TASKS: dict[str, Callable[..., Any]] = {
    "inference_rate": _inference_rate_task,
    "training_step_rate": training_step_rate,
    "segment_peak": segment_peak,
    "stage_profile": stage_profile,
    "network_alone": network_alone,
    "stage_memory": stage_memory,
}


class FreshProcessError(RuntimeError):
    """A fresh process failed; ``last_line`` is the last line of its error output."""

    def __init__(self, task: str, stderr: str) -> None:
        self.last_line = (stderr.strip().splitlines() or ["no output"])[-1]
        super().__init__(f"benchmark task {task!r} failed in a fresh process:\n{stderr[-2000:]}")


def _fresh_command(task: str, kwargs: dict, env: dict | None) -> tuple[list[str], dict]:
    if task not in FRESH_TASKS:
        raise ValueError(f"unknown benchmark task {task!r}; expected one of {sorted(FRESH_TASKS)}")
    # the child imports this same copy of the package, whatever its working directory
    package_root = str(Path(__file__).resolve().parents[1])
    path = os.pathsep.join(p for p in (package_root, os.environ.get("PYTHONPATH")) if p)
    child_env = {**os.environ, "PYTHONPATH": path, **(env or {})}
    return [sys.executable, "-m", "osnet_monai.benchmarking", task, json.dumps(kwargs)], child_env


def _result(task: str, returncode: int, stdout: str, stderr: str) -> Any:
    lines = [line for line in stdout.splitlines() if line.startswith(RESULT_PREFIX)]
    if returncode != 0 or not lines:
        raise FreshProcessError(task, stderr)
    return json.loads(lines[-1][len(RESULT_PREFIX):])


def run_fresh(task: str, kwargs: dict, env: dict | None = None, timeout: float | None = None) -> Any:
    """Runs ``FRESH_TASKS[task](**kwargs)`` in a new Python process (``python -m
    osnet_monai.benchmarking``) with ``env`` added to this process's environment; returns its
    result. Raises :class:`FreshProcessError` when the process fails and
    ``subprocess.TimeoutExpired`` after ``timeout`` seconds."""
    command, child_env = _fresh_command(task, kwargs, env)
    done = subprocess.run(command, capture_output=True, text=True, env=child_env, timeout=timeout)
    return _result(task, done.returncode, done.stdout, done.stderr)


def start_fresh(task: str, kwargs: dict, env: dict | None = None) -> subprocess.Popen:
    """:func:`run_fresh` without waiting: the started process, to collect with :func:`_collect`."""
    command, child_env = _fresh_command(task, kwargs, env)
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=child_env)
    process.task = task  # type: ignore[attr-defined]
    return process


def _collect(process: subprocess.Popen) -> Any:
    stdout, stderr = process.communicate()
    return _result(getattr(process, "task", "?"), process.returncode, stdout, stderr)


def main(argv: list[str] | None = None) -> int:
    """The fresh-process entry point: ``python -m osnet_monai.benchmarking TASK KWARGS_JSON``."""
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2 or argv[0] not in FRESH_TASKS:
        print(f"usage: python -m osnet_monai.benchmarking {{{','.join(FRESH_TASKS)}}} KWARGS_JSON", file=sys.stderr)
        return 2
    result = FRESH_TASKS[argv[0]](**json.loads(argv[1]))
    print(RESULT_PREFIX + json.dumps(result), flush=True)
    return 0


# -- the whole run -------------------------------------------------------------------------------


def run_benchmarks(quick: bool = False, progress: Callable[[str], Any] = print) -> dict:
    """Every measurement of ``docs/benchmarks.md`` in one run on this machine (about 20-25 minutes
    on an idle 2-core CPU; ``quick``: fewer repeats and frames); ``progress`` gets a line per section.
    Returns the results for :func:`osnet_monai.benchmark_report.write_report` (JSON-ready)."""
    import torch

    from osnet_monai.inference.cli import bundle_dir
    from osnet_monai.networks import OSNet

    settings = inference_settings()
    repeats = 2 if quick else 3
    sections = 8 if quick else 16
    results: dict = {"quick": quick, "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "machine": machine(),
                     "torch_threads": torch.get_num_threads(),
                     "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
                     "settings": settings}
    progress(f"machine: {results['machine']}")
    results["matmul_gflops"] = matmul_gflops()
    results["flops_per_section"] = flops_per_section()
    progress(f"matmul {results['matmul_gflops']:.0f} GFLOP/s; {results['flops_per_section'] / 1e9:.1f} GFLOP/section")
    batch = 16
    own_mmap, product_batch = settings["malloc_mmap_threshold"], settings["sw_batch_size"]
    product_mode = "frozen" if settings["optimize_cpu_inference"] else "eager"
    graph = "frozen graph" if product_mode == "frozen" else "eager"

    def rate(batch_: int, env: dict | None = None, mmap_threshold: int | None = None, mode: str = "eager", n: int = sections):
        return inference_rate_fresh(448, batch_, n, repeats, env or {}, mmap_threshold=mmap_threshold, mode=mode)

    inference = {
        "per-section loop (batch 1), eager, glibc default malloc": rate(1, n=sections // 2),
        f"batched ({batch}), eager, glibc default malloc": rate(batch),
    }
    if own_mmap is not None:
        inference[f"batched ({batch}), eager, mmap threshold fixed at {mmap_label(own_mmap)}"] = rate(batch, mmap_threshold=own_mmap)
    inference[f"batched ({batch}), eager, malloc thresholds raised"] = rate(batch, MALLOC_ENV)
    # inference.json's setting on whole sections; its own row (results["product_row"]) is at its window size, below
    inference[product_row(settings).replace(" (inference.json on a CPU)", ", whole sections")] = rate(
        product_batch, mmap_threshold=own_mmap, mode=product_mode)
    if own_mmap is not None:  # else the row above
        inference[f"batched ({product_batch}), {graph}, glibc default malloc"] = rate(product_batch, mode=product_mode)
    inference[f"batched ({product_batch}), {graph}, mmap threshold fixed at {mmap_label(RAISED_MMAP_THRESHOLD)}"] = rate(
        product_batch, mmap_threshold=RAISED_MMAP_THRESHOLD, mode=product_mode
    )
    inference[f"batched ({product_batch}), {graph}, malloc thresholds raised"] = rate(product_batch, MALLOC_ENV, mode=product_mode)
    # at inference.json's window size, what the inferer hands the network
    window = int(settings["roi_size"][0])
    results["window_flops"] = flops_per_section(window)
    windows = {}
    for batch_ in sorted({1, 2, 4, 8, product_batch}):
        name = window_row(settings, batch_) + (" (inference.json on a CPU)" if batch_ == product_batch else "")
        windows[name] = inference_rate_fresh(window, batch_, 4 * sections, repeats, mmap_threshold=own_mmap, mode=product_mode)
    for batch_ in sorted({1, product_batch}):
        if own_mmap is not None:
            windows[window_row({**settings, "malloc_mmap_threshold": None}, batch_)] = inference_rate_fresh(
                window, batch_, 4 * sections, repeats, mode=product_mode)
        windows[window_row(settings, batch_, "malloc thresholds raised")] = inference_rate_fresh(
            window, batch_, 4 * sections, repeats, MALLOC_ENV, mode=product_mode)
    results["windows"] = windows
    results["product_row"] = next(name for name in windows if name.endswith(" (inference.json on a CPU)"))
    progress(json.dumps(windows))
    if not quick:
        for mode, label in (("channels_last", "eager, channels_last"), ("bf16", "eager, bf16 autocast"),
                            ("compile", "torch.compile (after its cold compile)")):
            inference[f"batched ({batch}), {label}, malloc thresholds raised"] = rate(batch, MALLOC_ENV, mode=mode)
    results["inference"] = inference
    progress(json.dumps(results["inference"]))
    results["matmul_gflops"] = max(results["matmul_gflops"], matmul_gflops())  # the yardstick at its best
    cores, threads = os.cpu_count() or 1, torch.get_num_threads()
    results["threads"] = {
        f"1 x {threads}": concurrent_inference_rate(1, threads, 448, product_batch, sections, repeats, settings),
        "1 x 1": concurrent_inference_rate(1, 1, 448, product_batch, sections, repeats, settings),
        f"{cores} x 1": concurrent_inference_rate(cores, 1, 448, product_batch, sections, repeats, settings),
    }
    progress(json.dumps(results["threads"]))
    results["cuda"] = cuda_rates(cudnn_benchmark=settings["cudnn_benchmark"]) if torch.cuda.is_available() else {}
    z = 16 if quick else 32
    results["skip_empty"] = {
        share: (slice_inferer_rate(z, False, share, 1), slice_inferer_rate(z, True, share, 1)) for share in (0.5,)
    }
    progress(json.dumps(results["skip_empty"]))
    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = bundle_dir() / "models" / "model.pt"
        if not checkpoint.is_file():
            checkpoint = Path(tmp) / "model.pt"
            torch.save(OSNet().state_dict(), checkpoint)
        lengths = [1, 3] if quick else [2, 8, 16]
        compared = lengths[1]  # the series of 8 frames (3 when quick)
        results["series"] = series_end_to_end(lengths, Path(tmp), checkpoint, settings)
        progress(json.dumps(results["series"]))
        image = Path(tmp) / f"series_{compared}.nii.gz"
        product_run = next(run for run in results["series"]["lengths"] if run["frames"] == compared)
        results["end_to_end"] = end_to_end_against_network(image, compared, checkpoint, settings, threads, product_run,
                                                           Path(tmp), [1, 2, 4, 8])
        progress(json.dumps(results["end_to_end"]))
        results["profile_frames"] = compared
        results["profile"] = run_fresh("stage_profile", {"image": str(image), "out": str(Path(tmp) / "profiled"),
                                                         "checkpoint": str(checkpoint)})
        progress(json.dumps(results["profile"]))
        results["memory"] = memory_ceiling(Path(tmp), checkpoint, quick)
        progress(json.dumps(results["memory"]))
        results["training"] = training_rates_on_styles(repeats, Path(tmp))
    progress(json.dumps(results["training"]))
    return results


if __name__ == "__main__":
    sys.exit(main())
