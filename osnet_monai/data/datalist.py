"""Finding a data set on disk, the embedded default, and grouped cross-validation folds."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from osnet_monai.readers import file_stem, is_supported  # the readers' registry: the one list of formats

__all__ = ["file_stem", "find_dataset", "resolve_datalist", "grouped_folds", "fold_split"]


def _absolute(items: Sequence[dict], root: Path) -> list[dict]:
    out = []
    for item in items:
        item = dict(item)
        for key in ("image", "label"):
            if key in item and not os.path.isabs(item[key]):
                item[key] = str(root / item[key])
        item.setdefault("cell_id", file_stem(item["image"]))
        out.append(item)
    return out


def find_dataset(dataset_dir: str | os.PathLike) -> dict | None:
    """The data set in ``dataset_dir``, or None when it holds none.

    Reads ``datalist.json`` when present (MONAI datalist; relative paths are relative to it), else
    pairs ``images/NAME.ext`` with ``labels/NAME.ext`` by name and puts them all in ``training``.
    Returns ``{"training": [...], "validation": [...]}`` with absolute paths and a ``cell_id`` per item.
    """
    root = Path(dataset_dir).expanduser().resolve()
    datalist = root / "datalist.json"
    if datalist.is_file():
        try:
            content = json.loads(datalist.read_text())
        except json.JSONDecodeError as err:
            raise ValueError(f"{datalist}: not valid JSON ({err}).") from err
        if not content.get("training"):
            raise ValueError(f"{datalist}: has no 'training' list.")
        return {
            "training": _absolute(content["training"], root),
            "validation": _absolute(content.get("validation", []), root),
        }
    images = root / "images"
    if not images.is_dir():
        return None
    labels = {file_stem(p): p for p in (root / "labels").glob("*") if is_supported(p)}
    pairs = [
        {"image": str(p), "label": str(labels[file_stem(p)]), "cell_id": file_stem(p)}
        for p in sorted(images.glob("*"))
        if is_supported(p) and file_stem(p) in labels
    ]
    return {"training": pairs, "validation": []} if pairs else None


def resolve_datalist(dataset_dir: str | os.PathLike, cache_dir: str | os.PathLike | None = None) -> dict:
    """The data set in ``dataset_dir``; when it holds none, the embedded default synthetic data set,
    generated once with the phantom engine into ``cache_dir``."""
    found = find_dataset(dataset_dir) if dataset_dir and Path(dataset_dir).exists() else None
    if found is not None:
        return found
    if cache_dir is None:
        raise FileNotFoundError(f"{dataset_dir}: no datalist.json and no images/ with matching labels/.")
    from osnet_monai.phantoms import ensure_default_dataset

    return find_dataset(Path(ensure_default_dataset(cache_dir)).parent)  # type: ignore[return-value]


def grouped_folds(items: Sequence[dict], n_folds: int = 4, seed: int = 0, group_key: str = "cell_id") -> list[int]:
    """A fold index per item such that all items of a group (one cell) share a fold.

    Groups are shuffled with ``seed`` and assigned, largest first, to the fold with the fewest
    items, so folds come out nearly equal in size as in the paper.
    """
    if n_folds < 2:
        raise ValueError(f"n_folds must be >= 2, got {n_folds}.")
    groups: dict[str, list[int]] = {}
    for index, item in enumerate(items):
        groups.setdefault(str(item.get(group_key, index)), []).append(index)
    if len(groups) < n_folds:
        raise ValueError(f"{len(groups)} groups cannot fill {n_folds} folds: need at least one cell per fold.")
    names = list(groups)
    np.random.default_rng(seed).shuffle(names)
    names.sort(key=lambda g: -len(groups[g]))  # stable: equal sizes keep the shuffled order
    sizes = [0] * n_folds
    folds = [0] * len(items)
    for name in names:
        target = int(np.argmin(sizes))
        for index in groups[name]:
            folds[index] = target
        sizes[target] += len(groups[name])
    return folds


def fold_split(datalist: dict, fold: int = -1, n_folds: int = 4, seed: int = 0) -> tuple[list[dict], list[dict]]:
    """(training, validation) items. ``fold < 0`` keeps the datalist's own split; ``fold = k`` pools
    training and validation and holds out grouped fold k."""
    if fold < 0:
        return list(datalist["training"]), list(datalist.get("validation", []))
    if fold >= n_folds:
        raise ValueError(f"fold must be in [0, {n_folds}), got {fold}.")
    items = list(datalist["training"]) + list(datalist.get("validation", []))
    folds = grouped_folds(items, n_folds, seed)
    return [i for i, f in zip(items, folds) if f != fold], [i for i, f in zip(items, folds) if f == fold]
