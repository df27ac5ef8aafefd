"""The benchmark's pieces, not its numbers: the report writer renders results into the expected rows,
the harness reads inference.json instead of copying it, and each measurement returns what the report
needs on tiny inputs. No speed is asserted anywhere."""

from __future__ import annotations

import importlib.util
import json

import pytest

from conftest import BUNDLE_CONFIGS, REPO_ROOT
from osnet_monai import benchmarking
from osnet_monai.benchmark_report import product_row, render_report, write_report

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
    config = json.loads((BUNDLE_CONFIGS / "inference.json").read_text())
    settings = benchmarking.inference_settings()
    assert settings == {key: config[key] for key in settings}
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
    assert peak.keys() == {"seconds", "peak_mb", "after_frame"}
    assert len(peak["after_frame"]) == 2  # one high-water mark per frame, recorded by a handler, not a patched writer
    assert (tmp_path / "peak" / "cell0_nucleus.nii.gz").is_file()
    profile = benchmarking.stage_profile(str(image), str(tmp_path / "profiled"), str(untrained_checkpoint), overrides)
    assert list(profile) == list(benchmarking.profile_stages())
    assert profile["whole run (segment)"] > 0 and profile["figures"] == 0.0

