"""Compact training log from a bundle run's console output: one row per validated epoch, with the
change of the key metric (the worst style's validation Dice) from the epoch before.

    python scripts/training_log.py bundle/logs/shipped_train_console.log > docs/training_log.md
"""

from __future__ import annotations

import re
import sys
from datetime import datetime

STAMP = r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)"
VAL = re.compile(STAMP + r",\d+ - INFO - Epoch\[(\d+)\] Metrics -- (val_[^\r\n]*)")
TRAIN = re.compile(STAMP + r",\d+ - INFO - Epoch\[(\d+)\] Metrics -- train_mean_dice: ([0-9.]+)")
START = re.compile(STAMP + r",\d+ - INFO - --- input summary")


def parse(text: str) -> tuple[datetime | None, list[dict]]:
    start = START.search(text)
    t0 = datetime.strptime(start.group(1), "%Y-%m-%d %H:%M:%S") if start else None
    rows: dict[int, dict] = {}
    for stamp, epoch, metrics in VAL.findall(text):
        values = dict(re.findall(r"(val_\w+): ([0-9.]+)", metrics))
        rows.setdefault(int(epoch), {}).update({k: float(v) for k, v in values.items()}, time=stamp)
    for stamp, epoch, dice in TRAIN.findall(text):
        rows.setdefault(int(epoch), {})["train_mean_dice"] = float(dice)
    return t0, [{"epoch": e, **rows[e]} for e in sorted(rows)]


def main(path: str) -> int:
    t0, rows = parse(open(path, encoding="utf-8", errors="replace").read())
    nan = float("nan")
    print("| epoch | elapsed (min) | train Dice | val worst-style Dice | change | val Dice | val Jaccard | val F0.5 | val PR-AUC |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    previous = None
    for r in rows:
        # runs without MONAI's input summary (logging_file off) have no start stamp
        elapsed = f"{(datetime.strptime(r['time'], '%Y-%m-%d %H:%M:%S') - t0).total_seconds() / 60:.0f}" if t0 and "time" in r else "-"
        worst = r.get("val_worst_style_dice", nan)
        change = f"{worst - previous:+.4f}" if previous is not None and worst == worst else ""
        previous = worst if worst == worst else previous
        print(
            f"| {r['epoch']} | {elapsed} | {r.get('train_mean_dice', nan):.4f} | {worst:.4f} | {change} | "
            f"{r.get('val_mean_dice', nan):.4f} | {r.get('val_jaccard', nan):.4f} | {r.get('val_f05', nan):.4f} | "
            f"{r.get('val_pr_auc', nan):.4f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
