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
