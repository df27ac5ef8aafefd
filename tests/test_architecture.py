"""The layers of docs/architecture.md hold: imports inside the package only point down."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "osnet_monai"

#: a module or subpackage may import those of a lower or equal rank, never a higher one
RANKS = {
    "__init__": 0, "atomic": 0, "readers": 0, "recipes": 0,
    "phantoms": 1, "fuzzing": 1,
    "transforms": 2, "networks": 2, "measurements": 2, "data": 2, "fl_labels": 2,
    "model_card": 3, "metrics": 3, "calibration": 3,
    "handlers": 4,
    "inference": 5,
    "evaluation": 6, "benchmarking": 6, "benchmark_report": 6,
    "cli": 7, "napari": 7,
}


def _imports() -> dict[str, set[str]]:
    """Top-level part of the package -> the other top-level parts it imports (absolute imports)."""
    edges: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        source = parts[0]
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level
                     else [a.name for a in node.names] if isinstance(node, ast.Import) else [])
            for name in names:
                if name == "osnet_monai" or name.startswith("osnet_monai."):
                    target = name.split(".")[1] if "." in name else "__init__"
                    if target != source:
                        edges.setdefault(source, set()).add(target)
    return edges


def test_every_part_of_the_package_has_a_rank():
    parts = {p.stem if p.is_file() else p.name for p in PACKAGE.iterdir()
             if (p.suffix == ".py" or (p.is_dir() and (p / "__init__.py").is_file()))}
    assert parts <= set(RANKS), f"give these a rank in RANKS and docs/architecture.md: {sorted(parts - set(RANKS))}"


@pytest.mark.parametrize("source, targets", sorted(_imports().items()))
def test_imports_point_down(source, targets):
    upward = sorted(t for t in targets if RANKS.get(t, 99) > RANKS.get(source, -1))
    assert not upward, f"osnet_monai.{source} imports higher layers {upward}"


def test_no_import_cycles_between_parts():
    edges = _imports()
    cycles = sorted((a, b) for a, targets in edges.items() for b in targets if a in edges.get(b, set()) and a < b)
    assert not cycles, f"parts importing each other: {cycles}"
