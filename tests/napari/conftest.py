"""Qt for the plugin's tests: a virtual X display (Xvfb) when one can be started, else Qt's
offscreen platform, and napari's own viewer fixture.

napari's pytest plugin is off for the suite (pyproject ``-p no:napari``: its autouse fixtures
import Qt into every test); its ``make_napari_viewer`` fixture is taken here for these tests only
(tests/conftest.py declares the two options it reads).
Without a display the viewer's canvas has no OpenGL, so tests that draw need :data:`HAS_DISPLAY`;
the reader and the widget run on napari's ``ViewerModel`` everywhere (CI has no display).
"""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess


def _start_xvfb() -> bool:
    """Starts a private Xvfb for this process (killed at exit) and points Qt at it; not when Qt is
    told to draw offscreen (``QT_QPA_PLATFORM=offscreen``: how CI without Xvfb runs these tests)."""
    if os.environ.get("QT_QPA_PLATFORM") == "offscreen":
        return False
    if os.environ.get("DISPLAY") or not shutil.which("Xvfb"):
        return bool(os.environ.get("DISPLAY"))
    read, write = os.pipe()
    server = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write), "-screen", "0", "1600x1000x24", "-nolisten", "tcp"],
        pass_fds=(write,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    os.close(write)
    with os.fdopen(read) as pipe:
        number = pipe.readline().strip()  # Xvfb writes its display number once it accepts clients
    if not number:
        server.terminate()
        return False
    atexit.register(server.terminate)
    os.environ["DISPLAY"] = f":{number}"
    return True


HAS_DISPLAY = _start_xvfb()
if HAS_DISPLAY:
    os.environ.setdefault("QT_QPA_PLATFORM", "xcb")
else:
    os.environ["QT_QPA_PLATFORM"] = "offscreen"

try:  # the fixtures and the report hook make_napari_viewer relies on
    from napari.utils._testsupport import make_napari_viewer, mock_app_model, pytest_runtest_makereport  # noqa: F401
except ImportError:  # napari is an extra; the tests skip with the reason
    pass
