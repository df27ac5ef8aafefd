"""The run report: quality flags, a self-contained page, and the page in a real headless browser."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from osnet_monai.inference.figures import save_overlay, save_timecourse
from osnet_monai.inference.quality import QualityRecord, quality_flags, read_quality
from osnet_monai.inference.report import REPORT_NAME, RunReport, write_report
from osnet_monai.measurements import measure_nuclei, measurements_to_csv

SPACING = (0.2, 0.2, 0.5)
MEDIUM = 1.337


def _cell_with_nuclei(shape=(60, 50, 8), nuclei=((30, 25, 6),), radius_z=2):
    """RI (X, Y, Z) of one cell and its labels: a box nucleus of half-width ``r`` at (cx, cy) per entry."""
    ri = np.full(shape, MEDIUM, np.float32)
    ri[5:-5, 5:-5, 1:-1] = 1.36
    labels = np.zeros(shape, np.int32)
    for i, (cx, cy, r) in enumerate(nuclei, start=1):
        labels[max(cx - r, 0):cx + r, max(cy - r, 0):cy + r, 4 - radius_z:4 + radius_z] = i
        ri[labels == i] = 1.355
    return ri, labels


def _write_outputs(folder: Path, name: str, frames, probs) -> list[dict]:
    """What the writer leaves for one input: measurements CSV, overlay and time course PNGs, quality record."""
    record = QualityRecord(f"/data/{name}.TCF", name, len(frames), SPACING)
    rows = []
    for t, ((ri, labels), prob) in enumerate(zip(frames, probs)):
        rows += [{"frame": t, "time_s": 60.0 * t, **row} for row in measure_nuclei(labels, ri, SPACING, MEDIUM)]
        record.add_frame(t, labels, prob, ri, MEDIUM)
    measurements_to_csv(rows, folder / f"{name}_measurements.csv")
    save_overlay(*frames[0], SPACING, folder / f"{name}_overlay.png", name)
    if len(frames) > 1:
        save_timecourse(rows, folder / f"{name}_timecourse.png", name)
    record.save(folder / f"{name}_quality.json")
    return rows


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory) -> Path:
    """Two inputs: a 3-frame series with every kind of flag, and a field of medium only."""
    folder = tmp_path_factory.mktemp("run")
    frame0 = _cell_with_nuclei(nuclei=((30, 25, 6), (3, 25, 4)))  # nucleus 2 touches x = 0
    frame1 = _cell_with_nuclei(nuclei=((30, 25, 8), (3, 25, 4)))  # nucleus 1 grows 16/12 squared: +78 %
    frame2 = (frame1[0], np.zeros_like(frame1[1]))  # the cell is still there, no nucleus
    probs = []
    for _, labels in (frame0, frame1, frame2):
        prob = np.where(labels == 1, 0.95, 0.02)
        probs.append(np.where(labels == 2, 0.6, prob))  # nucleus 2: unsure
    _write_outputs(folder, "series", [frame0, frame1, frame2], probs)
    empty = np.full((40, 40, 6), MEDIUM, np.float32)
    _write_outputs(folder, "empty", [(empty, np.zeros(empty.shape, np.int32))], [np.zeros(empty.shape)])
    return folder


def test_flags_name_every_problem(run_folder):
    import csv

    rows = list(csv.DictReader(open(run_folder / "series_measurements.csv")))
    flags = quality_flags("series", rows, read_quality(run_folder / "series_quality.json"))
    by_kind = {}
    for flag in flags:
        by_kind.setdefault(flag.kind, []).append(flag)
    assert sorted(by_kind) == ["field edge", "low probability", "no nucleus", "volume jump"]
    assert [(f.nucleus_id, f.frame) for f in by_kind["field edge"]] == [(2, 0)]
    assert "frames 0, 1" in by_kind["field edge"][0].message
    assert [(f.nucleus_id, f.frame) for f in by_kind["low probability"]] == [(2, 0)]
    assert "0.60 < 0.75" in by_kind["low probability"][0].message
    assert [(f.nucleus_id, f.frame) for f in by_kind["volume jump"]] == [(1, 1)]
    assert [f.frame for f in by_kind["no nucleus"]] == [2]
    # thresholds are the caller's: a looser jump limit and a lower probability bar clear those flags
    relaxed = quality_flags("series", rows, read_quality(run_folder / "series_quality.json"), jump_fraction=1.0, min_mean_probability=0.5)
    assert {f.kind for f in relaxed} == {"field edge", "no nucleus"}
    empty = quality_flags("empty", [], read_quality(run_folder / "empty_quality.json"))
    assert [(f.kind, f.frame) for f in empty] == [("no cell", None)]


class _Page(HTMLParser):
    """Every tag with its attributes, and the text of table cells and list items."""

    def __init__(self):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        if data.strip():
            self.text.append(data.strip())


@pytest.fixture(scope="module")
def report(run_folder) -> Path:
    settings = {"checkpoint": "bundle/models/model.pt", "model": {"threshold": 0.59, "normalisation": "robust"}, "tta": False}
    return write_report(run_folder, settings=settings, failures={"/data/bad.nii.gz": "/data/bad.nii.gz: not a valid NIfTI file"})


def test_report_is_self_contained(report):
    page = _Page()
    page.feed(report.read_text(encoding="utf-8"))
    images = [attrs["src"] for tag, attrs in page.tags if tag == "img"]
    assert len(images) == 3  # the series' overlay and time course, the empty field's overlay
    for src in images:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    for tag, attrs in page.tags:
        for key in ("src", "href", "action", "data", "poster"):
            value = attrs.get(key)
            assert value is None or value.startswith(("data:", "#")), (tag, key, value)  # nothing to fetch
        assert tag not in ("link", "iframe", "object", "embed")
    assert not any(tag == "script" and "src" in attrs for tag, attrs in page.tags)


def test_report_shows_inputs_flags_measurements_and_settings(report, run_folder):
    text = report.read_text(encoding="utf-8")
    page = _Page()
    page.feed(text)
    assert "no cell in the tomogram (RI nowhere above the medium)" in page.text
    assert "nucleus 2 touches the field edge in frames 0, 1" in page.text
    assert "/data/bad.nii.gz: not a valid NIfTI file" in page.text  # refused inputs are listed
    assert "0.59" in page.text and "model.threshold" in page.text
    n_rows = sum(1 for line in open(run_folder / "series_measurements.csv")) - 1
    measurement_rows = text.split("<h2>Measurements</h2>")[1].split("</table>")[0].count("<tr>") - 1
    assert measurement_rows == n_rows  # every row of every CSV; the empty field has none


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


def _headless(browser: str, page: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--enable-logging=stderr", "--v=0",
         "--user-data-dir=" + str(page.parent / ".chromium"), *args, page.as_uri()],
        capture_output=True, text=True, timeout=120,
    )


@pytest.mark.skipif(_chromium() is None, reason="no Chromium: install the distribution's chromium package to run the browser check")
def test_report_in_headless_chromium(report, tmp_path):
    """Loads the page as is: no console error, no blocked request; then clicks a column header."""
    browser = _chromium()
    done = _headless(browser, report, "--dump-dom")
    assert done.returncode == 0, done.stderr[-2000:]
    console = [line for line in done.stderr.splitlines() if "CONSOLE" in line or "Refused" in line or "Uncaught" in line]
    assert console == [], console
    assert "Measurements" in done.stdout

    # the sortable table, driven as a user would: a click on "volume_um3" (twice: down)
    probe = tmp_path / "probe.html"
    probe.write_text(report.read_text(encoding="utf-8").replace("</body>", """<script>
var table = document.querySelectorAll('table.sortable')[1], col = Array.prototype.map.call(table.tHead.rows[0].cells, function(c){ return c.textContent; }).indexOf('volume_um3');
table.tHead.rows[0].cells[col].click(); table.tHead.rows[0].cells[col].click();
document.title = 'sorted:' + Array.prototype.map.call(table.tBodies[0].rows, function(r){ return r.cells[col].getAttribute('data-value'); }).join(',');
</script></body>"""), encoding="utf-8")
    done = _headless(browser, probe, "--dump-dom")
    title = done.stdout.split("<title>")[1].split("</title>")[0]
    volumes = [float(v) for v in title.removeprefix("sorted:").split(",")]
    assert len(volumes) > 2 and volumes == sorted(volumes, reverse=True)


def test_run_report_handler_records_settings_model_card_and_refusals(tmp_path):
    from osnet_monai.inference import TomogramStream

    bad = tmp_path / "bad.nii.gz"
    bad.write_bytes(b"not a nifti")
    stream = TomogramStream([str(bad)])
    assert list(stream) == [] and str(bad) in stream.failures  # the stream refuses it, as in a run
    checkpoint = Path(__file__).resolve().parents[2] / "bundle" / "models" / "model.pt"
    out = tmp_path / "out"
    path = RunReport(out, settings={"checkpoint": str(checkpoint), "tta": True}, stream=stream)()
    run = json.loads((out / "run.json").read_text())
    assert run["inputs"] == [str(bad)] and list(run["failures"]) == [str(bad)]
    assert run["settings"]["model card"]["threshold"] == json.loads(checkpoint.with_suffix(".json").read_text())["threshold"]
    assert path == out / REPORT_NAME and stream.failures[str(bad)] in path.read_text()
