"""The benchmark's pieces, not its numbers: the report writer renders results into the expected rows,
the harness reads inference.json instead of copying it, and each measurement returns what the report
needs on tiny inputs. No speed is asserted anywhere."""

from __future__ import annotations

import importlib.util
import json

import numpy as np

import pytest

from helpers import BUNDLE_CONFIGS, REPO_ROOT
from osnet_monai import benchmarking
from osnet_monai.benchmark_report import product_row, render_report, window_row, write_report

SETTINGS = {"sw_batch_size": 4, "malloc_mmap_threshold": 1 << 20, "optimize_cpu_inference": True,
            "skip_empty_sections": True, "save_figures": True, "cudnn_benchmark": True}


def tiny_results() -> dict:
    """Results shaped as run_benchmarks returns them, with round numbers."""
    return {
        "quick": True, "date": "2026-01-01 00:00 UTC", "machine": "Test CPU, 2 logical cores, torch 2.x (2 threads), Python 3.11, GPU: none",
        "torch_threads": 2, "gpu": None, "settings": dict(SETTINGS), "product_row": product_row(SETTINGS),
        "matmul_gflops": 100.0, "flops_per_section": 30_000_000_000,
        "inference": {"batched (16), eager, glibc default malloc": 2.0, product_row(SETTINGS): 4.0,
                      "batched (16), torch.compile (after its cold compile), malloc thresholds raised": "failed: no compiler"},
        "threads": {"1 x 2": 4.0}, "cuda": {},
        "skip_empty": {"0.5": [2.0, 3.0]},
        "series": {"frame_shape": [448, 448, 64],
                   "lengths": [{"frames": 1, "seconds": 5.0, "peak_mb": 1000.0, "after_frame": [1000]},
                               {"frames": 3, "seconds": 12.0, "peak_mb": 1010.0, "after_frame": [990, 1005, 1010]}],
                   "malloc": {"mmap threshold 1 MB (inference.json)": {"seconds": 12.0, "after_frame": [990, 1005, 1010]}}},
        "profile_frames": 1, "profile": {"whole run (segment)": 10.0, "figures": 1.0},
        "training": {"batch": 32, "roi": [224, 224], "num_workers": 2, "step_sections_per_s": 2.0,
                     "step_sections_per_s_by_threads": {"1": 1.0, "2": 2.0}, "step_sections_per_s_batch8": 3.0,
                     "augment_sections_per_s": 50.0, "loader_sections_per_s": 200.0, "empty_share": 0.2,
                     "augmented_share": 0.3, "default_dataset_sections_per_epoch": 1000},
    }


def test_report_renders_the_results_into_table_rows(tmp_path):
    text = write_report(tiny_results(), tmp_path / "bench.md").read_text()
    lines = text.splitlines()
    # 4 sections/s x 30 GFLOP = 120 GFLOP/s, 120% of a 100 GFLOP/s matmul, 0.91 x 4 = 3.6x the paper
    assert "| batched (4), frozen graph, mmap threshold 1 MB (inference.json on a CPU) | 4.00 | 0.250 | 120 | 120% | 3.6x |" in lines
    assert "| batched (16), eager, glibc default malloc | 2.00 | 0.500 | 60 | 60% | 1.8x |" in lines
    assert "| batched (16), torch.compile (after its cold compile), malloc thresholds raised | failed: no compiler | | | | |" in lines
    assert any(line.startswith("- inference.json's CPU setting (frozen graph, batch 4, mmap threshold 1 MB): **120 GFLOP/s, 120%")
               for line in lines)
    assert "| 50% | 2.00 | 3.00 | 1.50x |" in lines
    assert "| 3 | 12.0 | 4.0 | 1010 |" in lines
    assert "| mmap threshold 1 MB (inference.json) | 4.0 | 990 | 1005 | 1010 | +5.0 |" in lines
    assert "| figures | 1.0 | 10% |" in lines
    assert "No GPU on this machine." in text and "(2048 x 2048, 2 threads)" in text
    assert "with torch's default 2 threads; 1.0 with 1 thread; 2.0 with 2 threads." in text
    assert "(1000 sections per epoch: nucleus sections, 20% nucleus-free, 30% augmented copies)" in text


def overlapped_results() -> dict:
    """tiny_results as a run with the window rows and the series against the network alone returns them."""
    results = tiny_results()
    settings = {**SETTINGS, "roi_size": [224, 224], "prefetch_frames": 1, "export_workers": 1}
    own = window_row(settings, 4) + " (inference.json on a CPU)"
    results.update(settings=settings, product_row=own, window_flops=8_000_000_000,
                   windows={window_row(settings, 1): 10.0, own: 5.0})
    runs = {"read ahead 1 frame, export thread, torch 2 threads (inference.json)":
            {"seconds": 30.0, "peak_mb": 1200.0, "done_s": [10.0, 12.0, 14.0], "steady_sections_per_s": 6.4},
            "serial, torch 2 threads": {"seconds": 40.0, "peak_mb": 1100.0, "done_s": [12.0, 16.0, 20.0],
                                        "steady_sections_per_s": 3.2}}
    results["end_to_end"] = {"frames": 3, "sections_per_frame": 64, "segment": runs,
                             "network": {"mmap threshold 1 MB, torch 2 threads": {"1": 9.0, "4": 8.0},
                                         "mmap threshold 1 MB, torch 1 thread": {"1": 5.0}}}
    return results


def test_report_prices_the_series_against_the_network_alone():
    lines = render_report(overlapped_results()).splitlines()
    # 5 windows/s x 8 GFLOP = 40 GFLOP/s, 40% of a 100 GFLOP/s matmul
    assert any(line.startswith("- inference.json's CPU setting (224 x 224 windows, frozen graph, batch 4, mmap threshold 1 MB): "
                               "**40 GFLOP/s, 40% of the matmul rate** (target: at least 80%: NOT met)") for line in lines)
    assert "| 224 x 224 windows, batch 1, frozen graph, mmap threshold 1 MB | 10.00 | 0.100 | 80 | 80% |" in lines
    assert "- Network alone (mmap threshold 1 MB, torch 2 threads, batch 4): **8.00 sections/s**." in lines
    assert any(line.startswith("- End to end, inference.json (read ahead 1 frame, export thread, torch 2 threads): "
                               "**6.40 sections/s, 80% of the network alone** (target: at least 80%: met)") for line in lines)
    assert "| serial, torch 2 threads | 40.0 | 20.00 | 3.20 | 40% | 1100 |" in lines
    assert "| mmap threshold 1 MB, torch 1 thread | 5.00 | - |" in lines
    assert any(line.startswith("- `sw_batch_size`: fastest network alone at batch 1 (9.00 sections/s), **not inference.json's** (4)")
               for line in lines)
    assert any("fastest end to end is read ahead 1 frame, export thread, torch 2 threads, inference.json's" in line for line in lines)


def test_end_to_end_rate_leaves_the_start_out():
    run = {"seconds": 20.0, "done_s": [8.0, 10.0, 12.0, 14.0]}  # 3 frames after the first in 12 s, to the end of the run
    assert benchmarking.steady_rate(run, 64) == 3 * 64 / 12.0


def test_report_names_the_settings_it_was_measured_with():
    results = tiny_results()
    settings = {**SETTINGS, "sw_batch_size": 8, "malloc_mmap_threshold": None, "skip_empty_sections": False}
    results.update(settings=settings, product_row=product_row(settings), cuda={"batch 32, fp32": 100.0}, gpu="Test GPU")
    results["inference"] = {product_row(settings): 4.0}
    text = render_report(results)
    assert "| batched (8), frozen graph, glibc default malloc (inference.json on a CPU) | 4.00 |" in text
    assert "inference.json's defaults (frozen graph, 8 windows per batch, every section through the network, glibc default malloc)" in text
    assert "`inference.json` leaves glibc's mmap threshold alone" in text
    assert "Card: Test GPU." in text and "| batch 32, fp32 | 100.0 |" in text


def test_report_of_results_saved_before_settings_were_recorded_reads_the_machine_line():
    results = tiny_results()
    for key in ("torch_threads", "gpu", "product_row"):
        del results[key]
    results["machine"] = results["machine"].replace("(2 threads)", "(6 threads)").replace("GPU: none", "GPU: Old Card")
    results["cuda"] = {"batch 32, fp32": 1.0}
    text = render_report(results)
    assert "(2048 x 2048, 6 threads)" in text and "Card: Old Card." in text


def test_report_only_reproduces_the_saved_report(tmp_path):
    """``scripts/benchmark.py --report-only`` on docs/benchmarks.json gives docs/benchmarks.md, byte for byte."""
    spec = importlib.util.spec_from_file_location("benchmark_script", REPO_ROOT / "scripts" / "benchmark.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    out = tmp_path / "benchmarks.md"
    assert script.main(["--report-only", str(REPO_ROOT / "docs" / "benchmarks.json"), "--out", str(out)]) == 0
    assert out.read_bytes() == (REPO_ROOT / "docs" / "benchmarks.md").read_bytes()


def test_settings_are_read_from_inference_json():
    config = benchmarking.bundle_config("inference.json")
    settings = benchmarking.inference_settings()
    assert settings == {key: config.get_parsed_content(key) for key in settings}
    assert isinstance(settings["sw_batch_size"], int) and settings["malloc_mmap_threshold"] == config["malloc_mmap_threshold"]
    malloc = benchmarking.series_malloc_settings(settings)
    first = next(iter(malloc))
    assert malloc[first] == ({}, {}) and first.endswith("(inference.json)")
    saved = tiny_results()  # as saved before runs recorded their settings
    del saved["settings"], saved["training"]["empty_share"], saved["training"]["augmented_share"]
    completed = benchmarking.complete_saved_results(saved)
    train = json.loads((BUNDLE_CONFIGS / "train.json").read_text())
    assert completed["settings"] == settings
    assert (completed["training"]["empty_share"], completed["training"]["augmented_share"]) == (
        train["empty_share"], train["augmented_share"])
    assert benchmarking.series_malloc_settings({"malloc_mmap_threshold": None}).keys() == {
        "glibc default (inference.json)", "mmap threshold 64 MB", "malloc thresholds raised"}


@pytest.mark.slow
def test_fresh_process_returns_the_task_result_and_reports_failures():
    rate = benchmarking.run_fresh("inference_rate", {"size": 32, "batch": 2, "sections": 2, "repeats": 1, "mode": "frozen",
                                                     "mmap_threshold": 1 << 20})
    assert isinstance(rate, float) and rate > 0
    with pytest.raises(benchmarking.FreshProcessError, match="unexpected keyword"):
        benchmarking.run_fresh("training_step_rate", {"no_such_argument": 1})
    with pytest.raises(ValueError, match="unknown benchmark task"):
        benchmarking.run_fresh("no_such_task", {})
    assert benchmarking.main(["no_such_task", "{}"]) == 2


def test_training_step_uses_train_json_and_returns_a_rate():
    assert benchmarking.training_step_rate(2, [32, 32], 1) > 0


@pytest.mark.slow
def test_segment_peak_and_stage_profile_on_a_small_series(ellipsoid_dataset, untrained_checkpoint, tmp_path):
    image = ellipsoid_dataset / "images" / "cell0.nii.gz"  # 2 frames
    overrides = {"save_figures": False}
    peak = benchmarking.segment_peak(str(image), str(tmp_path / "peak"), str(untrained_checkpoint), overrides)
    assert peak.keys() == {"seconds", "peak_mb", "after_frame", "done_s"}
    # one high-water mark and time per frame, recorded as the writer exports it, not by a patched writer
    assert len(peak["after_frame"]) == len(peak["done_s"]) == 2 and peak["done_s"][0] < peak["done_s"][1] < peak["seconds"]
    alone = benchmarking.network_alone(str(image), str(untrained_checkpoint), [1, 2])
    assert alone.keys() == {"1", "2"} and all(rate > 0 for rate in alone.values())
    assert (tmp_path / "peak" / "cell0_nucleus.nii.gz").is_file()
    profile = benchmarking.stage_profile(str(image), str(tmp_path / "profiled"), str(untrained_checkpoint), overrides)
    assert list(profile) == list(benchmarking.profile_stages())
    assert profile["whole run (segment)"] > 0 and profile["figures"] == 0.0


def test_stage_memory_walks_every_stage_of_the_pipeline(ellipsoid_dataset, untrained_checkpoint):
    image = ellipsoid_dataset / "images" / "cell0.nii.gz"
    rows = benchmarking.stage_memory(str(image), str(untrained_checkpoint))
    names = [row[0] for row in rows]
    assert names[0] == "read the frame" and "network (inferer)" in names and "LabelNucleid" in names
    assert names[-3:] == ["cell instances", "measurements", "overlay figure"]
    assert all(before > 0 and peak >= before and after > 0 for _, before, peak, after in rows)


def test_capped_run_stops_a_process_above_its_cap(ellipsoid_dataset, untrained_checkpoint, tmp_path):
    image = ellipsoid_dataset / "images" / "cell0.nii.gz"
    result = benchmarking.run_fresh_capped("segment_peak", {"image": str(image), "out": str(tmp_path / "out"),
                                                            "checkpoint": str(untrained_checkpoint)}, cap_mb=50.0)
    assert result == {"stopped_above_mb": 50.0}  # a Python process with torch is resident far above 50 MB



@pytest.mark.parametrize("peak_mb, verdict", [(6000.0, "met"), (9000.0, "NOT met")])
def test_report_states_the_memory_ceiling(tmp_path, peak_mb, verdict):
    results = tiny_results()
    results["memory"] = {"stack_shape": [2048, 2048, 200], "ceiling_mb": 8192,
                         "stack": {"seconds": 300.0, "peak_mb": peak_mb, "after_frame": [int(peak_mb)]},
                         "series_frames": 3, "series": {"seconds": 30.0, "peak_mb": 1010.0, "after_frame": [990, 1005, 1010]}}
    results["memory"].update(stages_shape=[1024, 1024, 100], stages=[["cell mask", 1000, 1800, 1100]])
    text = write_report(results, tmp_path / "bench.md").read_text()
    assert f"**peak {peak_mb / 1024:.1f} GB**" in text and f"(target: within 8 GB: {verdict})" in text
    assert "| 990 | 1005 | 1010 | +5.0 |" in text.splitlines()
    assert "| cell mask | 2.00 | 2.75 |" in text.splitlines()  # 800 MB over a 400 MB stack


def test_report_states_a_run_stopped_at_the_cap(tmp_path):
    results = tiny_results()
    results["memory"] = {"stack_shape": [2048, 2048, 200], "ceiling_mb": 8192, "stack": {"stopped_above_mb": 16384.0},
                         "series_frames": 3, "series": {"seconds": 30.0, "peak_mb": 1010.0, "after_frame": [990, 1005, 1010]}}
    text = write_report(results, tmp_path / "bench.md").read_text()
    assert "**stopped above 16.0 GB** (5.1 times the stack; target: within 8 GB: NOT met)" in text


def test_large_stack_holds_the_cells_in_the_medium(tmp_path):
    import nibabel as nib

    from osnet_monai.benchmarking import write_large_stack

    path = write_large_stack((520, 520, 70), tmp_path)
    image = nib.load(path)
    assert path.suffix == ".nii" and image.shape == (520, 520, 70)
    data = np.asarray(image.dataobj)
    assert data.dtype == np.float32 and float(np.median(data)) == pytest.approx(1.3364, abs=2e-3)
    assert float(data.max()) > 1.35  # a cell
