"""The extended training set's assembly: which sources, which seeds, which list each lands in."""

from __future__ import annotations

import importlib.util
import json

from helpers import REPO_ROOT


def load_script():
    spec = importlib.util.spec_from_file_location("extended_dataset", REPO_ROOT / "scripts" / "extended_dataset.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _write_datalist(folder, names, split="training"):
    folder.mkdir(parents=True, exist_ok=True)
    items = [{"image": f"images/{n}.nii.gz", "label": f"labels/{n}.nii.gz", "cell_id": n} for n in names]
    content = {"training": items, "validation": []} if split == "training" else {"training": items[:1], "validation": items[1:]}
    (folder / "datalist.json").write_text(json.dumps(content))
    return folder / "datalist.json"


def test_validation_fields_have_fixed_seeds_and_land_in_validation(tmp_path, monkeypatch):
    script = load_script()
    default = tmp_path / "default"
    monkeypatch.setattr(script, "ensure_default_dataset", lambda _: _write_datalist(default, ["d-0", "d-1"], "both"))
    calls = []

    def fake_generate(folder, n, seed, preset, **kwargs):
        calls.append((folder.name, n, seed))
        _write_datalist(folder, [f"{preset}-s{seed}-{i:04d}" for i in range(n)])

    monkeypatch.setattr(script, "generate_dataset", fake_generate)
    out = tmp_path / "out"
    args = [str(out), "--default-dataset", str(default), "--per-style", "2", "--per-preset", "0", "--first-seed", "500"]
    assert script.main(args + ["--val-per-style", "1"]) == 0
    datalist = json.loads((out / "datalist.json").read_text())
    styles = list(script.STYLES)
    assert [c for c in calls if not c[0].startswith("validation")] == [(s, 2, 500 + script.SOURCES.index(s)) for s in script.SOURCES if s in styles]
    assert [c for c in calls if c[0].startswith("validation")] == [(f"validation-{s}", 1, 39001 + i) for i, s in enumerate(styles)]
    assert len(datalist["training"]) == 1 + 2 * len(styles)
    assert [item["cell_id"] for item in datalist["validation"]] == ["d-1"] + [f"{s}-s{39001 + i}-0000" for i, s in enumerate(styles)]
    # without --val-per-style no validation field is drawn
    calls.clear()
    assert script.main([str(tmp_path / "out2"), *args[1:], "--first-seed", "700", "--val-per-style", "0"]) == 0
    assert all(not name.startswith("validation") for name, _, _ in calls)
