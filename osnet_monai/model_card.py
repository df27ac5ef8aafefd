"""The model card: a JSON sidecar of a checkpoint (``model.pt`` -> ``model.json``) that says how to run it.

Fields read by inference (all optional; absent fields keep today's behaviour):

- ``threshold``: decision threshold on the nucleus probability (default 0.5), e.g. chosen on
  validation volumes by ``scripts/calibrate.py``;
- ``context``: 2.5D neighbours k, the network sees sections z-k..z+k as channels (default 0);
- ``in_channels``: the network's input channels, ``2 * context + 1``;
- ``normalisation``: how RI becomes the network's input (``NormalizeRId``: "medium", the paper's
  fixed scale, the default for a checkpoint without a card; or "robust");
- ``ece`` and any other field: recorded for people, not used by inference.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from osnet_monai.atomic import atomic_output
from osnet_monai.transforms.intensity import NORMALISATIONS

__all__ = ["model_card_path", "read_model_card", "write_model_card", "inference_settings", "DEFAULT_THRESHOLD"]

DEFAULT_THRESHOLD = 0.5


def model_card_path(checkpoint_path: str | os.PathLike) -> Path:
    """``dir/model.pt`` -> ``dir/model.json``."""
    return Path(checkpoint_path).with_suffix(".json")


def _check_fields(card: dict, where: Path) -> dict:
    """Known fields with their types; raises ValueError naming ``where``."""
    out = dict(card)

    def bad(key: str, expected: str) -> ValueError:
        return ValueError(f"{where}: malformed model card, {key!r} must be {expected}, got {card[key]!r}.")

    for key in ("threshold", "ece"):
        if card.get(key) is not None:
            value = card[key]
            if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
                raise bad(key, "a number")
            value = float(value)
            if not (math.isfinite(value) and 0.0 <= value <= 1.0):
                raise bad(key, "in [0, 1]")
            out[key] = value
    for key, low in (("context", 0), ("in_channels", 1)):
        if card.get(key) is not None:
            value = card[key]
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
                raise bad(key, f"an integer >= {low}")
            out[key] = int(value)
    if card.get("normalisation") is not None and not isinstance(card["normalisation"], str):
        raise bad("normalisation", "a string")
    return out


def read_model_card(checkpoint_path: str | os.PathLike) -> dict[str, Any]:
    """The card beside ``checkpoint_path``; ``{}`` when there is none.

    Raises:
        ValueError: the card is not a JSON object or a known field has a wrong type (the message names the file).
    """
    path = model_card_path(checkpoint_path)
    if not path.is_file():
        return {}
    try:
        card = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{path}: malformed model card, not valid JSON ({err}).") from err
    if not isinstance(card, dict):
        raise ValueError(f"{path}: malformed model card, expected a JSON object, got {type(card).__name__}.")
    return _check_fields(card, path)


def _json_default(value: Any) -> Any:
    # numpy scalars and arrays from the calibration
    if isinstance(value, (np.generic, np.ndarray)):
        return value.tolist()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def write_model_card(checkpoint_path: str | os.PathLike, replace: bool = False, **fields: Any) -> Path:
    """Adds ``fields`` to the card beside ``checkpoint_path`` (created if absent; other fields kept,
    unless ``replace``: a new model starts a new card), written atomically. Returns the card's path.

    Examples::

        write_model_card("bundle/models/model.pt", threshold=0.45, ece=0.012, context=0, in_channels=1)
    """
    path = model_card_path(checkpoint_path)
    card = {**({} if replace else read_model_card(checkpoint_path)), **fields}
    card = _check_fields(card, path)
    text = json.dumps(card, indent=2, sort_keys=True, default=_json_default) + "\n"
    with atomic_output(path) as tmp:
        tmp.write_text(text)
    return path


def inference_settings(
    checkpoint_path: str | os.PathLike,
    threshold: float | None = None,
    context: int | None = None,
    normalisation: str | None = None,
) -> dict[str, Any]:
    """How to run ``checkpoint_path``: ``{"threshold", "context", "in_channels", "normalisation"}``.

    An explicit ``threshold``, ``context`` or ``normalisation`` wins; else the model card's; else
    0.5, 0 and "medium" (what models without a card were trained with).
    ``in_channels`` is ``2 * context + 1``; a card stating another value is refused, as the
    section stacks fed to the network would not fit it.

    Used by ``bundle/configs/inference.json``::

        "model_settings": "$osnet_monai.model_card.inference_settings(@ckpt_path, @threshold, @context, @normalisation)"
    """
    card = read_model_card(checkpoint_path)
    where = model_card_path(checkpoint_path)
    threshold = card.get("threshold", DEFAULT_THRESHOLD) if threshold is None else float(threshold)
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"threshold must lie in [0, 1], got {threshold}.")
    context = int(card.get("context", 0) if context is None else context)
    if context < 0:
        raise ValueError(f"context must be >= 0, got {context}.")
    in_channels = 2 * context + 1
    if card.get("in_channels") is not None and card["in_channels"] != in_channels:
        raise ValueError(
            f"{where}: in_channels {card['in_channels']} does not fit context {context} "
            f"(2 * context + 1 = {in_channels} sections as channels)."
        )
    normalisation = str(card.get("normalisation", "medium") if normalisation is None else normalisation)
    if normalisation not in NORMALISATIONS:
        raise ValueError(f"{where}: normalisation must be one of {NORMALISATIONS}, got {normalisation!r}.")
    return {"threshold": float(threshold), "context": context, "in_channels": in_channels, "normalisation": normalisation}
