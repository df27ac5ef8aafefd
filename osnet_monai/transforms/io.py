"""Loading tomograms in every supported format as MetaTensors."""

from __future__ import annotations

import os
from collections.abc import Hashable, Mapping, Sequence

import numpy as np
import torch

from monai.config import KeysCollection
from monai.data import MetaTensor
from monai.transforms import MapTransform

__all__ = ["LoadTomogramd"]


class LoadTomogramd(MapTransform):
    """Loads NIfTI, NRRD/MetaImage, TIFF and Tomocube TCF files through :func:`osnet_monai.readers.load_tomogram`.

    MONAI's ``LoadImaged`` knows neither TCF nor the voxel sizes of ImageJ/OME TIFFs, and takes a
    NIfTI's spacing without its units; this transform gives every format one convention: a
    MetaTensor ``(X, Y, Z)`` or ``(X, Y, Z, T)`` with a micrometre affine and
    ``original_channel_dim`` set so ``EnsureChannelFirstd`` puts time into the channel axis.
    Keys in ``ri_keys`` are checked and returned as float32 RI (uint16 RI x 10,000 is scaled);
    other keys (labels) are read as they are. Values that are already arrays pass through, so
    frames streamed by :class:`osnet_monai.inference.TomogramStream` skip the load: in
    ``inference.json`` it reads only when MONAI Label's bundle task hands the preprocessing a path.

    Args:
        keys: keys holding file paths.
        ri_keys: keys holding RI images. Defaults to ``("image",)``.
        default_spacing_um: voxel size (x, y, z) for files without one (plain TIFF).
    """

    def __init__(
        self,
        keys: KeysCollection,
        ri_keys: Sequence[str] = ("image",),
        default_spacing_um: Sequence[float] | None = None,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.ri_keys = tuple(ri_keys)
        self.default_spacing_um = default_spacing_um

    def __call__(self, data: Mapping[Hashable, object]) -> dict[Hashable, object]:
        from osnet_monai.readers import load_tomogram

        d = dict(data)
        for key in self.key_iterator(d):
            if not isinstance(d[key], (str, os.PathLike)):
                continue
            array, meta = load_tomogram(d[key], self.default_spacing_um, check=key in self.ri_keys)
            tensor = torch.from_numpy(np.ascontiguousarray(array))
            affine = torch.as_tensor(meta.pop("affine"), dtype=torch.float64)  # given once: MetaTensor warns on both
            d[key] = MetaTensor(tensor, affine=affine, meta=meta)
        return d
