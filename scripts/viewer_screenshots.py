"""The README's pictures of the napari widget and of the run report, made as a user makes them.

Writes the demo's phantom series as a TCF file, opens it in napari with the plugin's reader, docks
"Segment nuclei", presses Segment (the shipped model, in the widget's worker thread), and saves the
window; then builds the segmentation folder's report.html and photographs it in headless Chromium.

Needs the napari extra, a display with OpenGL (e.g. ``xvfb-run -a -s "-screen 0 1920x1200x24"``)
and ``chromium``::

    xvfb-run -a -s "-screen 0 1920x1200x24" python scripts/viewer_screenshots.py --out docs

(writes ``docs/napari_widget.png`` and ``docs/report.png``; a few minutes on a CPU).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def napari_screenshot(tcf: Path, png: Path, frame: int) -> Path:
    """Segments ``tcf`` through the docked widget and saves the viewer window; returns the output folder."""
    import napari
    from qtpy.QtWidgets import QApplication

    viewer = napari.Viewer(title="osnet-monai", show=True)
    viewer.window._qt_window.resize(1600, 1000)
    [image] = viewer.open(str(tcf), plugin="osnet-monai")
    _, widget = viewer.window.add_plugin_dock_widget("osnet-monai", "Segment nuclei")
    finished = []
    worker = widget.segment()
    worker.finished.connect(lambda: finished.append(True))  # queued: nothing is delivered before the loop runs
    while not finished:
        QApplication.processEvents()
        time.sleep(0.05)
    nuclei = next(layer for layer in viewer.layers if layer.name.endswith("nuclei"))
    frame = min(frame, image.data.shape[0] - 1)
    z_with = nuclei.data[frame].any(axis=(1, 2)).nonzero()[0]
    viewer.dims.current_step = (frame, int(z_with.mean()) if z_with.size else image.data.shape[1] // 2, 0, 0)
    for _ in range(20):  # let the window settle its size before fitting the field into the canvas
        QApplication.processEvents()
        time.sleep(0.05)
    viewer.reset_view()
    for _ in range(10):
        QApplication.processEvents()
    viewer.screenshot(path=str(png), canvas_only=False, flash=False)
    out = Path(widget._status.value.split("outputs in ", 1)[1])
    viewer.close()
    return out


def report_screenshot(folder: Path, png: Path, height: int) -> None:
    from osnet_monai.inference.report import write_report

    report = write_report(folder)  # from the folder's files (run.json, when the run wrote one, gives the settings)
    browser = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if browser is None:
        raise SystemExit("no chromium on PATH")
    subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", f"--window-size=1200,{height}",
         f"--user-data-dir={folder / '.chromium'}", f"--screenshot={png.resolve()}", report.as_uri()],
        check=True, capture_output=True,
    )
    shutil.rmtree(folder / ".chromium", ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="docs", help="folder for napari_widget.png and report.png (default docs)")
    parser.add_argument("--frames", type=int, default=2, help="time points of the demo series (default 2)")
    parser.add_argument("--work", default=None, help="working folder (default: a temporary one)")
    args = parser.parse_args(argv)
    from osnet_monai.phantoms import generate_dataset

    work = Path(args.work or tempfile.mkdtemp(prefix="osnet-screenshots-"))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    generate_dataset(work / "example", n=1, frames=args.frames, seed=2026, preset="ht2h", tcf=True, validation_fraction=0.0)
    tcf = next((work / "example" / "tcf").glob("*.TCF"))
    segmentation = napari_screenshot(tcf, out / "napari_widget.png", frame=args.frames - 1)
    report_screenshot(segmentation, out / "report.png", height=1700)
    print(f"{out / 'napari_widget.png'}\n{out / 'report.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
