"""Speed and memory of osnet-monai, measured side by side in one run; writes docs/benchmarks.md.

    python scripts/benchmark.py            # full run (about 10-15 minutes on a 2-core CPU)
    python scripts/benchmark.py --quick    # fewer repeats and frames, for a smoke check
    python scripts/benchmark.py --report-only docs/benchmarks.json   # rewrite the report only
    python scripts/benchmark.py --only-memory   # rerun the memory ceiling section, keep the rest

Every number comes from this run on this machine: the fp32 matmul rate is the yardstick for the
network's achieved GFLOP/s. The measuring is :mod:`osnet_monai.benchmarking` (settings that need a
fresh process, such as glibc malloc thresholds, run there as ``python -m osnet_monai.benchmarking``),
the writing :mod:`osnet_monai.benchmark_report`; the raw numbers go to the report's ``.json`` beside it.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from osnet_monai import benchmarking
from osnet_monai.benchmark_report import write_report

REPO = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats and frames")
    parser.add_argument("--out", default=str(REPO / "docs" / "benchmarks.md"))
    parser.add_argument("--report-only", metavar="JSON", help="rewrite the report from a run's saved results")
    parser.add_argument("--only-training", action="store_true",
                        help="rerun only the training section, keep the other saved results")
    parser.add_argument("--only-memory", action="store_true",
                        help="rerun only the memory ceiling section (large stack, long series), keep the other saved results")
    args = parser.parse_args(argv)
    if args.report_only:
        write_report(benchmarking.complete_saved_results(json.loads(Path(args.report_only).read_text())), args.out)
        return 0
    saved = Path(args.out).with_suffix(".json")  # the raw numbers, so the report can be rewritten without a rerun
    if args.only_memory:
        from osnet_monai.inference.cli import bundle_dir

        results = benchmarking.complete_saved_results(json.loads(saved.read_text()))
        with tempfile.TemporaryDirectory() as tmp:
            results["memory"] = benchmarking.memory_ceiling(Path(tmp), bundle_dir() / "models" / "model.pt", args.quick)
        print(json.dumps(results["memory"]), flush=True)
        saved.write_text(json.dumps(results, indent=1) + "\n")
        write_report(results, args.out)
        print(f"wrote {args.out} (memory section rerun on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})")
        return 0
    if args.only_training:
        results = benchmarking.complete_saved_results(json.loads(saved.read_text()))
        with tempfile.TemporaryDirectory() as tmp:
            results["training"] = benchmarking.training_rates_on_styles(2 if args.quick else 3, Path(tmp))
        print(json.dumps(results["training"]), flush=True)
        saved.write_text(json.dumps(results, indent=1) + "\n")
        write_report(results, args.out)
        print(f"wrote {args.out} (training section rerun on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})")
        return 0
    results = benchmarking.run_benchmarks(args.quick, progress=lambda line: print(line, flush=True))
    saved.write_text(json.dumps(results, indent=1) + "\n")
    write_report(results, args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
