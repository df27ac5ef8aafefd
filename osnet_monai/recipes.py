"""Training recipes as ``bundle/configs/train.json`` overrides, every setting stated, so a sweep or
a reproduction means the same recipe whatever train.json's defaults are.

- :data:`PAPER`: the paper's recipe (fixed contrast scale around the medium, the paper's
  augmentation, BCE, Adam betas (0.5, 0.999), constant learning rate, no EMA).
- :data:`OURS`: the recipe v0.3.0 was trained with: robust per-field normalisation, instrument
  augmentation, Dice + BCE, betas (0.9, 0.999), warm-up and cosine decay, EMA weights.
- :data:`OURS_MEDIUM`: OURS with the paper's normalisation; train.json's defaults since 0.5.0, as it
  held up best leave-one-style-out (``docs/generalisation.md``).
"""

from __future__ import annotations

__all__ = ["OURS", "OURS_MEDIUM", "PAPER"]

PAPER = {"normalisation": "medium", "instrument_augment": False, "dice_weight": 0.0, "betas": [0.5, 0.999],
         "ema_decay": 0.0, "warmup_epochs": 0, "lr_cycles": 0.0}
OURS = {"normalisation": "robust", "instrument_augment": True, "dice_weight": 1.0, "betas": [0.9, 0.999],
        "ema_decay": 0.995, "warmup_epochs": 1, "lr_cycles": 0.5}
OURS_MEDIUM = {**OURS, "normalisation": "medium"}
