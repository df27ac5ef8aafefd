"""The built wheel runs ``osnet-monai demo`` on its own: no checkout, no ``--bundle``, no ``$OSNET_BUNDLE``."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]

# Print where the package and its bundle come from, then run the demo as the console script would
CHILD = """
import sys
import osnet_monai
from osnet_monai.inference.cli import bundle_dir
print("PACKAGE", osnet_monai.__file__)
print("BUNDLE", bundle_dir())
sys.argv = ["osnet-monai", "demo", "--frames", "1", "--device", "cpu"]
from osnet_monai.cli import main
sys.exit(main())
"""


def _run(*args: str, cwd: Path, env: dict | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{args[:4]} exited {done.returncode}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


@pytest.mark.slow
def test_wheel_runs_the_demo_without_a_checkout(tmp_path):
    # sdist first, then the wheel from it, as `python -m build` does: proves the sdist carries the bundle
    # and keeps setuptools' build/ out of the checkout. Offline: the venv's setuptools, no isolation.
    dist = tmp_path / "dist"
    build_sdist = "import sys; from setuptools import build_meta; build_meta.build_sdist(sys.argv[1])"
    _run(sys.executable, "-c", build_sdist, str(dist), cwd=REPO_ROOT)
    sdist = next(dist.glob("osnet_monai-*.tar.gz"))
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input"]
    _run(*pip, "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-w", str(dist), str(sdist), cwd=tmp_path)
    wheel = next(dist.glob("osnet_monai-*.whl"))

    names = set(zipfile.ZipFile(wheel).namelist())
    # pyproject lists the packages by hand: a new subpackage left off it would be missing here
    sources = {p.relative_to(REPO_ROOT).as_posix() for p in (REPO_ROOT / "osnet_monai").rglob("*.py")}
    missing = sorted(sources - names)
    assert not missing, f"modules missing from the wheel (list their package in pyproject's packages): {missing}"
    shipped = {n.removeprefix("osnet_monai/bundle_data/") for n in names if n.startswith("osnet_monai/bundle_data/")}
    needed = {"configs/inference.json", "configs/metadata.json", "models/model.pt", "models/model.json"}
    assert needed <= shipped
    clutter = [
        n for n in shipped if n.split("/")[0] in {"cache", "eval", "logs"} or n.endswith((".ts", ".onnx", "checkpoint_last.pt"))
    ]
    assert not clutter

    site = tmp_path / "site"
    _run(*pip, "install", "--no-deps", "--no-index", "--target", str(site), str(wheel), cwd=tmp_path)

    # An empty folder, the wheel's copy first on the path; the venv still supplies the dependencies
    work = tmp_path / "work"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in {"OSNET_BUNDLE", "PYTHONPATH"}}
    env["PYTHONPATH"] = str(site)
    done = _run(sys.executable, "-c", CHILD, cwd=work, env=env)
    where = dict(line.split(" ", 1) for line in done.stdout.splitlines() if line.startswith(("PACKAGE ", "BUNDLE ")))
    assert Path(where["PACKAGE"]).resolve().is_relative_to(site.resolve()), where
    assert Path(where["BUNDLE"]).resolve() == (site / "osnet_monai" / "bundle_data").resolve(), where

    segmentation = work / "osnet-demo" / "segmentation"
    for suffix in ("_nucleus.nii.gz", "_measurements.csv"):
        assert list(segmentation.glob(f"*{suffix}")), f"no *{suffix} in {sorted(os.listdir(segmentation))}"
    assert "Dice against the phantom's truth" in done.stdout
