"""In-plane resampling of sections to the model's physical pixel size."""

from __future__ import annotations

import copy
from collections.abc import Hashable, Mapping, Sequence

import numpy as np
import torch

from monai.config import KeysCollection
from monai.data import MetaTensor
from monai.transforms import Spacingd

__all__ = ["SectionSpacingd", "resample_sections", "section_scaling"]


def _linear_positions(q: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Neighbours and weights of linear interpolation at positions ``q`` of an axis of ``n`` samples,
    clamped to the border (``grid_sample``'s ``padding_mode="border"``)."""
    q = np.clip(q, 0, n - 1)
    low = np.floor(q).astype(np.intp)
    return low, np.minimum(low + 1, n - 1), q - low


def resample_sections(values: np.ndarray, scale: Sequence[float], offset: Sequence[float], size_xy: Sequence[int]) -> np.ndarray:
    """Linear interpolation of every x-y section of ``values`` at index ``scale * i + offset`` (per
    axis), clamped to the border, in float64 as MONAI resamples: what ``grid_sample`` computes for an
    x-y scaling, one section at a time, so the temporaries are one section's and not a 3-D sampling
    grid's (``docs/reliability.md``, memory).

    Shapes: ``(C, X, Y, Z)`` -> ``(C, size_xy[0], size_xy[1], Z)`` float32.
    """
    x0, x1, wx = _linear_positions(scale[0] * np.arange(size_xy[0]) + offset[0], values.shape[1])
    y0, y1, wy = _linear_positions(scale[1] * np.arange(size_xy[1]) + offset[1], values.shape[2])
    wx, wy = wx[:, None], wy[None, :]
    out = np.empty((values.shape[0], int(size_xy[0]), int(size_xy[1]), values.shape[3]), dtype=np.float32)
    for c in range(values.shape[0]):
        for z in range(values.shape[3]):
            section = values[c, :, :, z].astype(np.float64)
            along_x = section[x0] * (1 - wx) + section[x1] * wx
            out[c, :, :, z] = along_x[:, y0] * (1 - wy) + along_x[:, y1] * wy
    return out


def section_scaling(target_affine, source_affine) -> tuple[np.ndarray, np.ndarray] | None:
    """(x-y scale, x-y offset) that map a voxel index of the ``target`` grid to the ``source`` grid's
    when the two differ only by an x-y scaling and shift (z kept), else None."""
    xform = np.linalg.solve(np.asarray(source_affine, np.float64), np.asarray(target_affine, np.float64))
    scaling = np.diag(xform[:3, :3])
    if not (np.allclose(xform[:3, :3], np.diag(scaling), atol=1e-9) and np.isclose(scaling[2], 1.0, atol=1e-9)
            and abs(xform[2, 3]) < 1e-9):
        return None
    return scaling[:2], xform[:2, 3]


class SectionSpacingd(Spacingd):
    """Resamples x and y to ``pixel_size_um`` and keeps z: the network sees sections at one scale
    whatever the microscope's voxel size. Invertible through MONAI's ``Invertd``.

    Beyond ``Spacingd(pixdim=(p, p, -1))``: MONAI 1.6's ``Spacingd`` updates every ``<key>_*`` entry
    of a NIfTI's data dict with the image's metadata and fails on a string there; MONAI Label puts
    the image's path under ``image_path``. Such non-dict entries are set aside and put back. And a
    bilinear key is resampled one section at a time (:func:`resample_sections`) with the record
    ``Spacingd`` would write: MONAI's float64 3-D grid needs about six times the volume's memory,
    which a 2048 x 2048 x 200 stack does not have to spare.

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
        d = {k: v for k, v in data.items() if k not in aside}
        by_section = {} if (self.lazy if lazy is None else lazy) else self._by_section(d)
        if by_section:
            d.update(by_section)
        else:  # a key that needs MONAI's path (nearest labels): all keys take it, as before
            d = super().__call__(d, lazy=lazy)
        d.update(aside)
        return d

    def _by_section(self, d: dict) -> dict:
        """Every key resampled section by section, or {} when one of them needs MONAI's path."""
        plans = {}
        for key, mode, padding_mode, align_corners, dtype, scale_extent in self.key_iterator(
            d, self.mode, self.padding_mode, self.align_corners, self.dtype, self.scale_extent
        ):
            image = d[key]
            if (not isinstance(image, MetaTensor) or image.ndim != 4 or image.pending_operations or str(mode) != "bilinear"
                    or str(padding_mode) != "border" or align_corners is not False or scale_extent):
                return {}
            # MONAI's own Spacing on one empty section gives the output grid and the record to write
            proxy = MetaTensor(torch.zeros((*image.shape[:3], 1), dtype=torch.float32), meta=copy.deepcopy(image.meta),
                               applied_operations=list(image.applied_operations))
            grid = self.spacing_transform(data_array=proxy, mode=mode, padding_mode=padding_mode, align_corners=align_corners,
                                          dtype=dtype, scale_extent=scale_extent, lazy=False)
            scaling = section_scaling(grid.affine, image.affine)
            if scaling is None or not grid.applied_operations or grid.applied_operations[-1].get("class") != "SpatialResample":
                return {}
            plans[key] = (grid, scaling)
        done = {}
        for key, (grid, scaling) in plans.items():
            image = d[key]
            record = copy.deepcopy(grid.applied_operations[-1])
            record["orig_size"] = tuple(int(s) for s in image.shape[1:])
            out = resample_sections(image.detach().cpu().numpy(), *scaling, grid.shape[1:3])
            done[key] = MetaTensor(torch.from_numpy(out), meta=grid.meta,
                                   applied_operations=list(grid.applied_operations[:-1]) + [record])
        return done
