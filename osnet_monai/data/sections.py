"""x-y sections of 3D and 4D tomograms as a cached training set, with the paper's epoch composition."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from monai.utils import ensure_tuple

__all__ = ["SectionDataset", "neighbour_index", "stack_neighbours"]


def neighbour_index(n: int, context: int) -> torch.Tensor:
    """``(n, 2k+1)`` section indices ``z-k .. z+k`` for every z, clamped to ``[0, n)``: edge sections
    repeat the nearest existing one, as a volume padded by replication would."""
    offsets = torch.arange(-context, context + 1)
    return (torch.arange(n)[:, None] + offsets[None]).clamp_(0, n - 1)


def stack_neighbours(x: torch.Tensor, context: int, dim: int = -1) -> torch.Tensor:
    """Each section along ``dim`` with its ``context`` neighbours on either side as channels.

    Shapes: ``(B, C, *spatial)`` -> ``(B, C * (2k+1), *spatial)``; channel ``c * (2k+1) + j`` holds
    input channel c at section ``z + j - k``. ``context`` 0 returns ``x`` itself. The one rule for
    training (:class:`SectionDataset`) and inference (:class:`osnet_monai.inference.ContextSliceInferer`).
    """
    if context <= 0:
        return x
    dim = dim % x.dim()
    if dim < 2:
        raise ValueError(f"dim must be a spatial dimension of (B, C, *spatial), got {dim}.")
    index = neighbour_index(x.shape[dim], context).to(x.device)  # (Z, 2k+1)
    stacked = torch.index_select(x, dim, index.T.reshape(-1))  # along dim: offset-major, (2k+1) * Z
    stacked = stacked.unflatten(dim, (2 * context + 1, x.shape[dim]))  # (B, C, ..., 2k+1, Z, ...)
    stacked = stacked.movedim(dim, 2)  # (B, C, 2k+1, *spatial)
    return stacked.flatten(1, 2)


class SectionDataset(Dataset):
    """Every x-y section of a list of tomograms, cached in memory, plus augmented copies.

    MONAI's datasets cache one item per input; here one tomogram expands into many sections, and
    an epoch follows the paper: all selected sections once, plus ``augmented_share`` of them
    drawn at random and passed through ``augmentation``. The deterministic ``volume_transform``
    (load, normalise, resample) runs once per tomogram at construction.

    ``volume_transform`` must return channel-first volumes ``(C, X, Y, Z)``: C = 1 for a 3D stack,
    C = T for a 4D series (``EnsureChannelFirstd`` puts NIfTI's time axis there), so each frame's
    sections are separate examples. Items are ``{"image": (1, X, Y), "label": (1, X, Y), "name": str}``;
    with ``context`` k the image is ``(2k+1, X, Y)``: sections z-k..z+k of the same frame (2.5D
    input, edges replicate the nearest section), the label still the centre section's.

    Args:
        data: items such as ``{"image": path, "label": path, "cell_id": ...}``.
        volume_transform: deterministic per-tomogram transform (cached).
        transform: per-section transform applied to every item (e.g. crop or pad to the training size).
        augmentation: random transform applied to the augmented copies, before ``transform``.
        augmented_share: augmented copies per epoch, as a share of the sections (the paper: 0.3).
        empty_share: nucleus-free sections to keep, as a share of the nucleus sections (the paper
            trained on nucleus sections only: 0). Chosen among sections that show cell (some pixel
            above ``cell_threshold``), at random with ``seed``.
        min_nucleus_pixels: a section counts as a nucleus section from this many label pixels.
        cell_threshold: normalised contrast that counts as cell for ``empty_share``.
        keys: image and label keys.
        seed: seed for the choice of nucleus-free sections.
        context: neighbouring sections on each side given as extra channels (2.5D). Defaults to 0.
        whole_volumes: keep every section of every frame, in order, whatever its content
            (``empty_share`` and ``min_nucleus_pixels`` then do not apply): a per-volume metric then
            scores 3D Dice, false alarms above and below the nucleus included, as a whole stack is segmented.
    """

    def __init__(
        self,
        data: Sequence[dict],
        volume_transform: Callable[[dict], dict],
        transform: Callable[[dict], dict] | None = None,
        augmentation: Callable[[dict], dict] | None = None,
        augmented_share: float = 0.0,
        empty_share: float = 0.0,
        min_nucleus_pixels: int = 1,
        cell_threshold: float = 0.3,
        keys: Sequence[str] = ("image", "label"),
        seed: int = 0,
        context: int = 0,
        whole_volumes: bool = False,
    ) -> None:
        if context < 0:
            raise ValueError(f"context must be >= 0, got {context}.")
        if augmented_share < 0 or empty_share < 0:
            raise ValueError(f"augmented_share and empty_share must be >= 0, got {augmented_share}, {empty_share}.")
        if augmented_share > 0 and augmentation is None:
            raise ValueError("augmented_share > 0 needs an augmentation transform.")
        self.data = list(data)
        self.transform = transform
        self.augmentation = augmentation
        self.context = int(context)
        self.image_key, self.label_key = ensure_tuple(keys)[:2]
        rng = np.random.default_rng(seed)
        self.sections: list[dict[str, Any]] = []
        self.n_empty = 0
        for item in self.data:
            nucleus, empty = self._split(volume_transform(dict(item)), min_nucleus_pixels, cell_threshold, whole_volumes)
            if whole_volumes:
                self.sections.extend(nucleus)
                continue
            n_keep = min(len(empty), int(round(empty_share * len(nucleus))))
            chosen = [empty[i] for i in sorted(rng.choice(len(empty), n_keep, replace=False))] if n_keep else []
            self.sections.extend(nucleus + chosen)
            self.n_empty += len(chosen)
        self.n_augmented = int(round(augmented_share * len(self.sections)))

    def _split(self, volume: dict, min_nucleus_pixels: int, cell_threshold: float, whole: bool = False) -> tuple[list, list]:
        """Cuts a ``(C, X, Y, Z)`` volume pair into sections: (nucleus sections, nucleus-free sections with
        cell); ``whole``: (every section in order, [])."""
        image = torch.as_tensor(volume[self.image_key]).float()
        label = torch.as_tensor(volume[self.label_key])
        if image.dim() != 4 or image.shape != label.shape:
            raise ValueError(
                f"{volume.get('name', 'volume')}: expected image and label (C, X, Y, Z) of one shape, "
                f"got {tuple(image.shape)} and {tuple(label.shape)}."
            )
        name = str(volume.get("cell_id") or volume.get("name") or len(self.sections))
        label = (label > 0).to(torch.uint8)
        pixels = label.sum(dim=(1, 2))  # (C, Z)
        has_cell = (image > cell_threshold).any(dim=1).any(dim=1)
        neighbours = neighbour_index(image.shape[-1], self.context)  # (Z, 2k+1); k = 0: z itself
        nucleus, empty = [], []
        for t in range(image.shape[0]):
            for z in range(image.shape[-1]):
                section = {
                    # (2k+1, X, Y): frame t's sections z-k..z+k, never another frame's
                    self.image_key: image[t, ..., neighbours[z]].movedim(-1, 0).contiguous(),
                    self.label_key: label[t : t + 1, ..., z].clone(),
                    "name": f"{name}_t{t:03d}_z{z:03d}",
                    "cell_id": name,
                }
                if whole or pixels[t, z] >= min_nucleus_pixels:
                    nucleus.append(section)
                elif has_cell[t, z]:
                    empty.append(section)
        return nucleus, empty

    def __len__(self) -> int:
        return len(self.sections) + self.n_augmented

    def __getitem__(self, index: int) -> dict:
        if index < 0 or index >= len(self):
            raise IndexError(f"index {index} out of range for {len(self)} items.")
        if index < len(self.sections):
            item = dict(self.sections[index])
        else:
            # torch's RNG: seeded by set_determinism, and per worker and epoch by the DataLoader
            source = int(torch.randint(len(self.sections), (1,)).item())
            item = self.augmentation(dict(self.sections[source]))  # type: ignore[misc]
        return self.transform(item) if self.transform is not None else item
