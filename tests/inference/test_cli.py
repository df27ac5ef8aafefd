"""Tests for the ``osnet-monai`` command front."""

from __future__ import annotations

import subprocess
import sys

import pytest

from osnet_monai.cli import main


def test_info_prints_every_table1_row(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert "| OS-Net | 2,770,848 | 2,770,848 | yes |" in out
    assert "| Unet64 | 34,517,120 | 8,638,592 | no |" in out


def test_info_with_text_kernel(capsys):
    assert main(["info", "--up-kernel-size", "4"]) == 0
    assert "| OS-Net | 3,075,488 |" in capsys.readouterr().out


def test_unknown_command_exits_nonzero():
    with pytest.raises(SystemExit) as exc:
        main(["frobnicate"])
    assert exc.value.code != 0


def test_console_script_installed():
    out = subprocess.run([sys.executable, "-m", "osnet_monai.cli", "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and "osnet-monai" in out.stdout


def test_segment_command_prints_one_line_per_file_and_no_engine_chatter(tmp_path, untrained_checkpoint):
    """A clean run as a user sees it: the file's own line and the progress bar; no ignite start,
    restore or timing lines, no warnings."""
    from osnet_monai.phantoms import PRESETS, render_field, write_nifti

    field = render_field(PRESETS["hx1"].replace(name="cli_small", field_shape=(96, 80, 24)), seed=0)
    image = write_nifti(tmp_path / "cell.nii.gz", field.image, (0.15, 0.15, 0.3), medium_ri=PRESETS["hx1"].medium_ri)
    done = subprocess.run(
        [sys.executable, "-m", "osnet_monai.cli", "segment", str(image), "-o", str(tmp_path / "out"),
         "--model", str(untrained_checkpoint)],
        capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    lines = [line for line in (done.stdout + done.stderr).replace("\r", "\n").splitlines()
             if line.strip() and "it/s]" not in line and "%|" not in line and "s/it]" not in line]
    assert lines == [f"{image}: wrote cell_nucleus.nii.gz, cell_cell.nii.gz, cell_measurements.csv, cell_overlay.png, cell_quality.json"], lines
