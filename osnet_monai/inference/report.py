"""One HTML page per run (``report.html`` in the output folder): every input with its pictures,
the quality flags, the measurements table and the model and settings used.

Built from the output folder's own files, so it can be rebuilt at any time
(``python -m osnet_monai.inference.report OUT``): ``NAME_measurements.csv``, ``NAME_overlay.png``,
``NAME_timecourse.png``, ``NAME_quality.json`` (:mod:`~osnet_monai.inference.quality`) and
``run.json`` (the settings and refused inputs, written by :class:`RunReport` at the end of a run).
The page is self-contained: pictures are inline data URIs, style and script are inline, and
nothing in it asks for another file or address, so it opens offline and can be mailed as is.
"""

from __future__ import annotations

import argparse
import base64
import csv
import datetime
import html
import json
import logging
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from monai.utils import min_version, optional_import

from osnet_monai.atomic import atomic_output
from osnet_monai.inference.quality import JUMP_FRACTION, MIN_MEAN_PROBABILITY, Flag, quality_flags, read_quality

Events, _ = optional_import("ignite.engine", "0.4.11", min_version, "Events")

__all__ = ["REPORT_NAME", "RUN_SETTINGS_NAME", "RunReport", "write_report", "write_run_settings"]


REPORT_NAME = "report.html"
RUN_SETTINGS_NAME = "run.json"
MEASUREMENTS_SUFFIX = "_measurements.csv"

_STYLE = """
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:1.5em auto;max-width:1200px;color:#222;padding:0 1em}
h1{font-size:1.5em}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:1.8em}
table{border-collapse:collapse;font-size:.85em;margin:.5em 0}th,td{border:1px solid #ddd;padding:.2em .5em;text-align:right}
th{background:#f3f3f3;position:sticky;top:0}td.text,th.text{text-align:left}td{white-space:nowrap}
table.sortable th{cursor:pointer;user-select:none}table.sortable th:after{content:' \\2195';color:#aaa}
.flag{color:#a40}.ok{color:#070}.failed{color:#b00}figure{margin:.5em 0}img{max-width:100%}
.scroll{max-height:32em;overflow:auto}code{font-size:.95em}
"""

# click a column header to sort by it (numbers as numbers); click again to reverse
_SCRIPT = """
document.querySelectorAll('table.sortable').forEach(function(table){
  table.querySelectorAll('th').forEach(function(th, col){
    th.addEventListener('click', function(){
      var body = table.tBodies[0], rows = Array.prototype.slice.call(body.rows);
      var up = th.getAttribute('data-order') !== 'up';
      table.querySelectorAll('th').forEach(function(h){ h.removeAttribute('data-order'); });
      th.setAttribute('data-order', up ? 'up' : 'down');
      function key(row){ var c = row.cells[col], v = c.getAttribute('data-value'); v = v === null ? c.textContent : v;
                         var n = parseFloat(v); return isNaN(n) ? v : n; }
      rows.sort(function(a, b){ var x = key(a), y = key(b);
        if (typeof x !== typeof y) { x = String(x); y = String(y); }
        return (x < y ? -1 : x > y ? 1 : 0) * (up ? 1 : -1); });
      rows.forEach(function(r){ body.appendChild(r); });
    });
  });
});
"""


def _e(value) -> str:
    return html.escape(str(value), quote=True)


def _png(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img alt="{_e(path.name)}" src="data:image/png;base64,{data}">'


def _cell(value: str) -> str:
    """A table cell: numbers right-aligned, shown to 4 significant digits, sorted by their full value."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return f'<td class="text">{_e(value)}</td>'
    shown = value if float(number).is_integer() and "." not in value else f"{number:.4g}"
    return f'<td data-value="{_e(value)}">{_e(shown)}</td>'


def _table(header: Sequence[str], rows: Sequence[Sequence], sortable: bool = False, text_columns: Sequence[int] = ()) -> str:
    """A table; columns in ``text_columns`` are left-aligned text, the others numbers where they parse."""
    cls = ' class="sortable"' if sortable else ""
    head = "".join(f'<th class="text">{_e(h)}</th>' if k in text_columns else f"<th>{_e(h)}</th>" for k, h in enumerate(header))
    body = "".join(
        "<tr>" + "".join(f'<td class="text">{_e(v)}</td>' if k in text_columns else _cell(str(v)) for k, v in enumerate(row)) + "</tr>"
        for row in rows
    )
    return f"<table{cls}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _flatten(settings: Mapping, prefix: str = "") -> list[tuple[str, str]]:
    items = []
    for key, value in settings.items():
        if isinstance(value, Mapping):
            items += _flatten(value, f"{prefix}{key}.")
        else:
            items.append((f"{prefix}{key}", json.dumps(value) if not isinstance(value, str) else value))
    return items


def _read_rows(path: Path) -> tuple[list[str], list[dict]]:
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        return list(reader.fieldnames or []), list(reader)


def _inputs(folder: Path) -> list[str]:
    """Output names of the inputs written to ``folder`` (each has its measurements CSV)."""
    return sorted(p.name[: -len(MEASUREMENTS_SUFFIX)] for p in folder.glob(f"*{MEASUREMENTS_SUFFIX}") if not p.name.startswith("."))


def _outputs_of(folder: Path, name: str) -> list[str]:
    return sorted(p.name for p in folder.glob(f"{name}_*") if not p.name.startswith(".")) + sorted(
        p.name for p in folder.glob(f"{name}.ome.zarr")
    )


def _section(folder: Path, name: str, flags: Sequence[Flag], record) -> str:
    parts = [f'<h2 id="input-{_e(name)}">{_e(name)}</h2>']
    if record is not None:
        parts.append(f"<p>Input <code>{_e(record.path)}</code>, {record.n_frames} frame{'s' * (record.n_frames > 1)}, "
                     f"voxel {' x '.join(f'{s:.3g}' for s in record.spacing_um)} um.</p>")
    parts.append(f"<p>Outputs: {', '.join(f'<code>{_e(o)}</code>' for o in _outputs_of(folder, name))}</p>")
    if flags:
        parts.append("<ul>" + "".join(f'<li class="flag">{_e(f.kind)}: {_e(f.message)}</li>' for f in flags) + "</ul>")
    else:
        parts.append('<p class="ok">No quality flag.</p>')
    for suffix, caption in (("_overlay.png", "Sections with the nucleus contour"), ("_timecourse.png", "Time course per tracked nucleus")):
        picture = folder / f"{name}{suffix}"
        if picture.is_file():
            parts.append(f"<figure>{_png(picture)}<figcaption>{caption}</figcaption></figure>")
    return "\n".join(parts)


def write_report(
    output_dir: str | os.PathLike,
    settings: Mapping | None = None,
    failures: Mapping[str, str] | None = None,
    jump_fraction: float = JUMP_FRACTION,
    min_mean_probability: float = MIN_MEAN_PROBABILITY,
) -> Path:
    """Writes ``output_dir/report.html`` from the folder's outputs; returns its path.

    Args:
        output_dir: a segmentation output folder.
        settings: the run's settings; default: ``run.json``'s (written by :class:`RunReport`).
        failures: refused inputs, path -> message; default: ``run.json``'s.
        jump_fraction, min_mean_probability: thresholds of the flags (:func:`quality_flags`).
    """
    folder = Path(output_dir)
    run = json.loads((folder / RUN_SETTINGS_NAME).read_text()) if (folder / RUN_SETTINGS_NAME).is_file() else {}
    settings = run.get("settings", {}) if settings is None else settings
    failures = run.get("failures", {}) if failures is None else failures
    names = _inputs(folder)
    sections, all_flags, summary, measured = [], [], [], []
    columns: list[str] = []
    for name in names:
        header, rows = _read_rows(folder / f"{name}{MEASUREMENTS_SUFFIX}")
        quality = folder / f"{name}_quality.json"
        record = read_quality(quality) if quality.is_file() else None
        flags = quality_flags(name, rows, record, jump_fraction, min_mean_probability)
        all_flags += flags
        frames = record.n_frames if record is not None else len({r["frame"] for r in rows})
        nuclei = len({r["nucleus_id"] for r in rows})
        summary.append((f'<a href="#input-{_e(name)}">{_e(name)}</a>', frames, nuclei, len(flags)))
        columns += [c for c in header if c not in columns]  # 2D and 3D inputs have their own columns
        measured.append((name, rows))
        sections.append(_section(folder, name, flags, record))
    table_rows = [[name] + [r.get(c, "") for c in columns] for name, rows in measured for r in rows]

    created = run.get("created") or datetime.datetime.now().astimezone().isoformat(timespec="seconds")
    page = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        # no request may leave the page: nothing but inline data and inline style/script
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; img-src data:; "
        "style-src 'unsafe-inline'; script-src 'unsafe-inline'\">",
        f"<title>osnet-monai report: {_e(folder.resolve().name)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>Nucleus segmentation: {len(names)} input{'s' * (len(names) != 1)}</h1>",
        f"<p>Folder <code>{_e(folder.resolve())}</code>, {_e(created)}.</p>",
    ]
    summary_table = "<table><thead><tr><th class=\"text\">input</th><th>frames</th><th>nuclei</th><th>flags</th></tr></thead><tbody>" + "".join(
        f'<tr><td class="text">{link}</td><td>{n_frames}</td><td>{n}</td><td class="{"flag" if k else "ok"}">{k}</td></tr>'
        for link, n_frames, n, k in summary
    ) + "</tbody></table>"
    page += ["<h2>Inputs</h2>", summary_table]
    if failures:
        page += ['<h2>Refused inputs</h2><ul>'] + [f'<li class="failed">{_e(m)}</li>' for m in failures.values()] + ["</ul>"]
    page.append("<h2>Quality flags</h2>")
    page.append(
        f"<p>Thresholds: volume (area) change between frames &gt; {jump_fraction:.0%}, mean nucleus probability &lt; "
        f"{min_mean_probability:.2f}; nuclei touching the x-y field edge; tomograms or frames without cell or nucleus.</p>"
    )
    if all_flags:
        page.append(_table(["input", "kind", "frame", "nucleus", "what"],
                           [[f.name, f.kind, "" if f.frame is None else f.frame, "" if f.nucleus_id is None else f.nucleus_id, f.message]
                            for f in all_flags], sortable=True, text_columns=(0, 1, 4)))
    else:
        page.append('<p class="ok">None.</p>')
    if table_rows:
        page += [f"<h2>Measurements</h2><p>{len(table_rows)} rows (one per nucleus per frame); click a column to sort.</p>",
                 '<div class="scroll">', _table(["input", *columns], table_rows, sortable=True, text_columns=(0,)), "</div>"]
    page += sections
    if settings:
        page += ["<h2>Model and settings</h2>", _table(["setting", "value"], _flatten(settings), text_columns=(0, 1))]
    page += [f"<script>{_SCRIPT}</script>", "</body></html>"]
    path = folder / REPORT_NAME
    with atomic_output(path) as tmp:
        tmp.write_text("\n".join(page), encoding="utf-8")
    return path


def write_run_settings(output_dir: str | os.PathLike, settings: Mapping, inputs: Sequence[str], failures: Mapping[str, str]) -> Path:
    """``output_dir/run.json``: the settings, the inputs and the refused ones, and when."""
    from osnet_monai import __version__

    record = {
        "created": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "osnet_monai": __version__,
        "settings": dict(settings),
        "inputs": list(inputs),
        "failures": dict(failures),
    }
    path = Path(output_dir) / RUN_SETTINGS_NAME
    with atomic_output(path) as tmp:
        tmp.write_text(json.dumps(record, indent=1, default=str) + "\n")
    return path


class RunReport:
    """Evaluator handler: when the run completes, writes ``run.json`` and ``report.html`` in ``output_dir``.

    Attach after :class:`~osnet_monai.inference.TomogramWriter` (the bundle's ``handlers`` list order),
    so the last file is complete when the page is built.

    Args:
        output_dir: the run's output folder.
        settings: what the page shows under "Model and settings" (e.g. checkpoint, model card
            settings, TTA); the checkpoint's model card is added when ``settings`` names a ``checkpoint``.
        stream: the :class:`~osnet_monai.inference.TomogramStream` (inputs and refused files).
        enabled: False attaches nothing.
    """

    def __init__(self, output_dir: str | os.PathLike, settings: Mapping | None = None, stream=None, enabled: bool = True) -> None:
        self.output_dir = Path(output_dir)
        self.settings = dict(settings or {})
        self.stream = stream
        self.enabled = enabled

    def attach(self, engine) -> None:
        if self.enabled:
            engine.add_event_handler(Events.COMPLETED, self)

    def __call__(self, engine=None) -> Path | None:
        from osnet_monai.model_card import read_model_card

        settings = dict(self.settings)
        if settings.get("checkpoint"):
            settings["model card"] = read_model_card(settings["checkpoint"])
        inputs = list(getattr(self.stream, "inputs", []))
        failures = dict(getattr(self.stream, "failures", {}))
        try:
            self.output_dir.mkdir(parents=True, exist_ok=True)
            write_run_settings(self.output_dir, settings, inputs, failures)
            return write_report(self.output_dir)
        except OSError as err:  # a full disk or a read-only folder: one line, and the run's exit status says it
            message = f"{self.output_dir / REPORT_NAME}: report not written ({type(err).__name__}: {err.strerror or err})"
            logging.getLogger(__name__).error(message)
            if self.stream is not None:
                self.stream.failures[str(self.output_dir / REPORT_NAME)] = message
            return None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m osnet_monai.inference.report", description="(Re)build report.html of a segmentation output folder.")
    parser.add_argument("output_dir")
    parser.add_argument("--jump-fraction", type=float, default=JUMP_FRACTION, help=f"volume change flagged (default {JUMP_FRACTION})")
    parser.add_argument("--min-probability", type=float, default=MIN_MEAN_PROBABILITY,
                        help=f"mean nucleus probability flagged under (default {MIN_MEAN_PROBABILITY})")
    args = parser.parse_args(argv)
    if not Path(args.output_dir).is_dir():
        print(f"{args.output_dir}: not a folder", file=sys.stderr)
        return 2
    print(write_report(args.output_dir, jump_fraction=args.jump_fraction, min_mean_probability=args.min_probability))
    return 0


if __name__ == "__main__":
    sys.exit(main())
