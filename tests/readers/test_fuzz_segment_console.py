"""The console of ``osnet-monai segment`` over good and broken files: every line names a file.

What a user reads after a night's run: one line per file (written, or refused and why), the
progress bar, and the summary of refused files; no third-party warning or log line naming no file.
Each broken file is one the fuzzer found printing around its line, refused silently as the wrong
thing, or crashing the whole run (ITK on ``NDims = 1e+300``).
"""

from __future__ import annotations

import gzip
import os
import re
import struct
import subprocess
import sys

import numpy as np
import pytest

from osnet_monai.fuzzing import Mutation, Spec, write_case

GOOD_SHAPE = (64, 56, 8)


def _good_files(folder):
    from osnet_monai.phantoms import PRESETS, render_field, write_nifti

    field = render_field(PRESETS["hx1"].replace(name="console", field_shape=GOOD_SHAPE), seed=0)
    nifti = write_nifti(folder / "good_nifti.nii.gz", field.image, (0.15, 0.15, 0.3), medium_ri=1.337)
    raw = bytearray(gzip.decompress(nifti.read_bytes()))
    struct.pack_into("<f", raw, 88, -0.3)  # pixdim[3] < 0: nibabel prints its fix to stderr itself
    nifti.write_bytes(gzip.compress(bytes(raw)))
    return [nifti]  # a good TCF costs a segmentation more; its silence is fuzzed in test_fuzz_readers


def _bad_files(folder):
    cases = {
        "truncated_stack": (Spec("tiff", ".tif", (16, 12, 24, 1), "uint16"), Mutation("truncate", fraction=0.5)),
        "corrupt_tag": (Spec("tiff", ".tif", (8, 6, 4, 1)), Mutation("field", name="StripOffsets", value=1e9)),
        "unwritten_frame": (Spec("tcf", ".TCF", (8, 6, 4, 2)), Mutation("field", name="unwritten", value=4096)),
        "itk_crash": (Spec("itk", ".mha", (8, 6, 4, 1)), Mutation("field", name="dimension", value=1e300)),
    }
    paths = []
    for name, (spec, mutation) in cases.items():
        (folder / name).mkdir()
        path = write_case(spec, mutation, folder / name)
        paths.append(path.rename(folder / f"{name}{spec.suffix}"))
    hot = np.full((8, 6, 4), 1.337, np.float32)
    hot[0, 0] = 3e38  # numpy overflow warnings
    from osnet_monai.phantoms import write_nifti

    paths.append(write_nifti(folder / "overflow.nii.gz", hot, (0.2, 0.2, 0.5)))
    return paths


@pytest.mark.slow
def test_every_console_line_names_a_file(tmp_path, untrained_checkpoint):
    inputs = tmp_path / "in"
    inputs.mkdir()
    good, bad = _good_files(inputs), _bad_files(inputs)
    done = subprocess.run(
        [sys.executable, "-m", "osnet_monai.cli", "segment", str(inputs), "-o", str(tmp_path / "out"),
         "--model", str(untrained_checkpoint)],
        capture_output=True, text=True, timeout=900, env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert done.returncode == 1, done.stderr[-3000:]  # refused files: a non-zero exit, after all were tried
    lines = [line.strip() for line in (done.stdout + done.stderr).replace("\r", "\n").splitlines() if line.strip()]
    progress = re.compile(r"\d+%\||it/s\]|s/it\]")
    summary = f"{len(bad)} of {len(good) + len(bad)} input(s) failed:"
    named = {str(p) for p in good + bad}
    stray = [ln for ln in lines if not progress.search(ln) and ln != summary and ln.split(": ", 1)[0] not in named]
    assert not stray, stray
    for path in good:
        assert any(ln.startswith(f"{path}: wrote ") for ln in lines), lines
    for path in bad:
        assert sum(ln.startswith(f"{path}: ") for ln in lines) >= 1, (path, lines)
        assert not (tmp_path / "out" / f"{path.name.split('.')[0]}_nucleus.nii.gz").exists()
