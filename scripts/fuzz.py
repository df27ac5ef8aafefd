#!/usr/bin/env python
"""Fuzz every reader and write the counts into docs/reliability.md.

    python scripts/fuzz.py [--examples 10000] [--formats nifti,tiff,tcf,itk] [--seed 0] [--doc docs/reliability.md]

Each case is a valid tomogram file, then (three quarters of them) truncated, bit-flipped or given
one absurd header field (:mod:`osnet_monai.fuzzing`), read as ``segment`` and training read it.
Outcomes: valid, refused with one ``InputError`` line, or escaped (another exception, a warning or
log line around it, a valid file not read, a hang). Exits 1 when anything escaped. The table
between the ``fuzz`` markers of the doc is replaced; the rest of the doc is left alone.
About 20 ms per case on one core: 10,000 per format take about 15 minutes (ITK's import aside).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from pathlib import Path

from osnet_monai.fuzzing import FORMATS, campaign_table, run_campaign

BEGIN, END = "<!-- fuzz:begin (scripts/fuzz.py writes this table) -->", "<!-- fuzz:end -->"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--examples", type=int, default=10_000, help="cases per format (default 10000)")
    ap.add_argument("--formats", default=",".join(FORMATS), help=f"comma-separated, of {', '.join(FORMATS)}")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--doc", default="docs/reliability.md", help="markdown file with the fuzz markers ('' to skip)")
    args = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    campaigns = []
    start = time.perf_counter()
    for fmt in args.formats.split(","):
        t0 = time.perf_counter()
        campaign = run_campaign(fmt, args.examples, seed=args.seed)
        campaigns.append(campaign)
        print(f"{fmt}: {campaign.total} files, {campaign.count('valid')} valid, {campaign.count('refused')} refused, "
              f"{campaign.count('escaped')} escaped ({time.perf_counter() - t0:.0f} s)", flush=True)
        for line in campaign.escapes:
            print(f"  escaped: {line}")
    table = campaign_table(campaigns)
    print(table)
    if args.doc:
        doc = Path(args.doc)
        text = doc.read_text()
        if BEGIN not in text or END not in text:
            sys.exit(f"{doc}: no '{BEGIN}' ... '{END}' markers to write the table between")
        stamp = (f"{args.examples:,} cases per format, seed {args.seed}, "
                 f"{time.perf_counter() - start:.0f} s in one process (`python scripts/fuzz.py "
                 f"--examples {args.examples}`)")
        block = f"{BEGIN}\n{stamp}:\n\n{table}\n{END}"
        doc.write_text(re.sub(re.escape(BEGIN) + r".*?" + re.escape(END), lambda _: block, text, flags=re.S))
        print(f"wrote {doc}")
    return 1 if any(c.count("escaped") for c in campaigns) else 0


if __name__ == "__main__":
    sys.exit(main())
