"""In-plane resampling of sections to the model's physical pixel size."""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence

from monai.config import KeysCollection
from monai.transforms import Spacingd

__all__ = ["SectionSpacingd"]


class SectionSpacingd(Spacingd):
    """Resamples x and y to ``pixel_size_um`` and keeps z: the network sees sections at one scale
    whatever the microscope's voxel size. Invertible through MONAI's ``Invertd``.

    Beyond ``Spacingd(pixdim=(p, p, -1))``: MONAI 1.6's ``Spacingd`` updates every ``<key>_*`` entry
    of a NIfTI's data dict with the image's metadata and fails on a string there; MONAI Label puts
    the image's path under ``image_path``. Such non-dict entries are set aside and put back.

    Args:
        keys: keys of channel-first ``(C, X, Y, Z)`` MetaTensors.
        pixel_size_um: x-y pixel size after resampling, in micrometres.
        mode: interpolation per key, e.g. ``("bilinear", "nearest")`` for image and label.
    """

    def __init__(
        self,
        keys: KeysCollection,
        pixel_size_um: float,
        mode: str | Sequence[str] = "bilinear",
        allow_missing_keys: bool = False,
        **kwargs,
    ) -> None:
        if pixel_size_um <= 0:
            raise ValueError(f"pixel_size_um must be positive, got {pixel_size_um}.")
        super().__init__(keys, pixdim=(pixel_size_um, pixel_size_um, -1), mode=mode, allow_missing_keys=allow_missing_keys, **kwargs)

    def __call__(self, data: Mapping[Hashable, object], lazy: bool | None = None) -> dict[Hashable, object]:
        aside = {
            k: v
            for k, v in data.items()
            if isinstance(k, str) and not isinstance(v, dict) and any(k.startswith(f"{key}_") for key in self.keys)
        }
        d = super().__call__({k: v for k, v in data.items() if k not in aside}, lazy=lazy)
        d.update(aside)
        return d
