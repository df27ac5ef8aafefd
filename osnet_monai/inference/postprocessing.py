"""Inference's postprocessing steps, computed where the work is: MONAI's ``Invertd``, ``FillHolesd``
and ``RemoveSmallObjectsd`` with the same results at a fraction of the cost.

On a 448 x 448 x 64 frame MONAI's versions spend most of their time on voxels that cannot change:
``Invertd`` builds a float64 3-D sampling grid for what is an x-y scaling (``SectionSpacingd``),
``FillHoles`` floods the whole background by repeated dilation, and ``RemoveSmallObjects`` sorts
every voxel to find that the mask has two values. Here the inverse is two 1-D interpolations per
section, and holes and small objects are found by one labelling pass inside the foreground's
bounding box (``docs/benchmarks.md`` prices each stage). Each class falls back to MONAI's for the
cases it does not cover, and the tests hold it to MONAI's output.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping, Sequence

import numpy as np
import torch
from scipy import ndimage

from monai.config import KeysCollection
from monai.data import MetaTensor
from monai.transforms import FillHoles, FillHolesd, Invertd, MapTransform, RemoveSmallObjects, RemoveSmallObjectsd
from monai.utils import convert_data_type, convert_to_dst_type, ensure_tuple_rep
from osnet_monai.measurements import label_nuclei
from osnet_monai.readers import spacing_from_affine
from osnet_monai.transforms.spatial import resample_sections, section_scaling

__all__ = [
    "AliasItemsd",
    "CroppedFillHoles",
    "CroppedFillHolesd",
    "CroppedRemoveSmallObjects",
    "CroppedRemoveSmallObjectsd",
    "InvertSectionSpacingd",
    "LabelNucleid",
    "foreground_box",
    "input_ndim",
    "is_section_2d",
    "voxel_spacing",
]


def foreground_box(mask: np.ndarray, margin: int = 0) -> tuple[slice, ...] | None:
    """The bounding box of ``mask``'s true voxels grown by ``margin`` (clipped to the array), or None
    when there are none.

    Examples:
        >>> m = np.zeros((6, 5), bool); m[2:4, 1] = True
        >>> foreground_box(m), foreground_box(m, margin=1)
        ((slice(2, 4, None), slice(1, 2, None)), (slice(1, 5, None), slice(0, 3, None)))
    """
    box = []
    for axis in range(mask.ndim):
        hit = np.flatnonzero(mask.any(axis=tuple(a for a in range(mask.ndim) if a != axis)))
        if hit.size == 0:
            return None
        box.append(slice(max(int(hit[0]) - margin, 0), min(int(hit[-1]) + 1 + margin, mask.shape[axis])))
    return tuple(box)


def _fill_label(channel: np.ndarray, label: int, structure: np.ndarray) -> None:
    """Sets the holes of ``label`` in ``channel`` (spatial array, changed in place) to ``label``.

    A hole is a component of the other voxels that does not reach the array's border. Outside the
    label's bounding box every voxel reaches it (straight out along an axis where it lies beyond
    the box), so components are labelled in the box grown by one voxel: those touching its faces
    are open, the others are holes, exactly MONAI's flood from the border.
    """
    box = foreground_box(channel == label, margin=1)
    if box is None:
        return
    background = channel[box] != label
    components, n = ndimage.label(background, structure)
    open_ = np.zeros(n + 1, dtype=bool)
    open_[0] = True  # the label's own voxels
    for axis in range(components.ndim):
        open_[components.take(0, axis)] = True
        open_[components.take(-1, axis)] = True
    channel[box][~open_[components]] = label


class CroppedFillHoles(FillHoles):
    """MONAI's :class:`~monai.transforms.FillHoles` by labelling inside each label's bounding box:
    the same voxels, several times faster on a sparse mask. One-hot input goes to MONAI's.

    Shapes: ``(1, X, Y[, Z]) -> (1, X, Y[, Z])``. Args: those of ``FillHoles``.
    """

    def __call__(self, img):
        if img.shape[0] != 1:
            return super().__call__(img)
        img_np, *_ = convert_data_type(img, np.ndarray)
        out = np.array(img_np, copy=True)  # MONAI's fill writes into the input; this leaves it alone
        channel = out[0]
        structure = ndimage.generate_binary_structure(channel.ndim, self.connectivity or channel.ndim)
        labels = set(self.applied_labels) if self.applied_labels is not None else {int(v) for v in np.unique(channel)}
        labels.discard(0)
        for label in labels:
            _fill_label(channel, label, structure)
        return convert_to_dst_type(out, img)[0]


class CroppedFillHolesd(FillHolesd):
    """Dictionary version of :class:`CroppedFillHoles`, arguments of MONAI's ``FillHolesd``."""

    def __init__(
        self,
        keys: KeysCollection,
        applied_labels: Iterable[int] | int | None = None,
        connectivity: int | None = None,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, applied_labels, connectivity, allow_missing_keys)
        self.converter = CroppedFillHoles(applied_labels=applied_labels, connectivity=connectivity)


class CroppedRemoveSmallObjects(RemoveSmallObjects):
    """MONAI's :class:`~monai.transforms.RemoveSmallObjects` for a one-channel binary mask, labelled
    inside its bounding box, without MONAI's sort of the whole volume. Other input (label images,
    several channels, ``independent_channels=False``) goes to MONAI's.

    Objects smaller than ``min_size`` go, as MONAI documents; MONAI 1.6 with scikit-image 0.26 also
    drops objects of exactly ``min_size`` voxels (scikit-image now passes ``min_size`` on as its
    inclusive ``max_size``): an object of exactly ``ceil(min_size / voxel volume)`` voxels, at the
    minimum, stays here and went there.

    Shapes: ``(1, X, Y[, Z]) -> (1, X, Y[, Z])``. Args: those of ``RemoveSmallObjects``.
    """

    def __call__(self, img):
        img_np, *_ = convert_data_type(img, np.ndarray)
        pixdim = self.pixdim
        if self.by_measure and not isinstance(img, MetaTensor) and pixdim is None:
            return super().__call__(img)  # MONAI warns and assumes an identity affine
        if img_np.shape[0] != 1 or not self.independent_channels or img_np.size == 0:
            return super().__call__(img)
        low, high = img_np.min(), img_np.max()
        if low == high:  # one value: MONAI returns the input as it is
            return img
        if high > 1:
            return super().__call__(img)  # a label image: MONAI measures each label
        min_size = self.min_size
        if self.by_measure:
            spacing = img.pixdim if isinstance(img, MetaTensor) else ensure_tuple_rep(pixdim, img_np.ndim - 1)
            # pixdim is a tensor: numpy's array() on it warns (its __array__ takes no copy keyword)
            voxel = float(np.prod([float(s) for s in spacing]))
            min_size = np.ceil(min_size / (voxel if voxel != 0 else 1))
        keep = img_np[0] != 0
        box = foreground_box(keep)
        structure = ndimage.generate_binary_structure(keep.ndim, self.connectivity)
        components, _ = ndimage.label(keep[box], structure)
        small = np.bincount(components.ravel()) < min_size
        small[0] = False
        keep[box][small[components]] = False
        return convert_to_dst_type(keep[None], img)[0]


class CroppedRemoveSmallObjectsd(RemoveSmallObjectsd):
    """Dictionary version of :class:`CroppedRemoveSmallObjects`, arguments of MONAI's ``RemoveSmallObjectsd``."""

    def __init__(
        self,
        keys: KeysCollection,
        min_size: int = 64,
        connectivity: int = 1,
        independent_channels: bool = True,
        by_measure: bool = False,
        pixdim: Sequence[float] | float | np.ndarray | None = None,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, min_size, connectivity, independent_channels, by_measure, pixdim, allow_missing_keys)
        self.converter = CroppedRemoveSmallObjects(min_size, connectivity, independent_channels, by_measure, pixdim)


class AliasItemsd(MapTransform):
    """The item under ``keys`` also under ``names``, not copied (MONAI's ``CopyItemsd`` clones it).

    For inference's probability: the transforms after it (``AsDiscreted`` and on) return new
    tensors and do not write into their input, so the alias keeps the probability while ``pred``
    becomes the mask; a copy would cost a whole volume of float32 (``docs/reliability.md``, memory).
    """

    def __init__(self, keys: KeysCollection, names: KeysCollection, allow_missing_keys: bool = False) -> None:
        super().__init__(keys, allow_missing_keys)
        self.names = ensure_tuple_rep(names, len(self.keys))

    def __call__(self, data: Mapping[Hashable, torch.Tensor]) -> dict[Hashable, torch.Tensor]:
        d = dict(data)
        for key, name in self.key_iterator(d, self.names):
            d[name] = d[key]
        return d


class InvertSectionSpacingd(MapTransform):
    """MONAI's :class:`~monai.transforms.Invertd` of inference's preprocessing, whose one resampling
    is :class:`osnet_monai.transforms.SectionSpacingd` (x and y scaled, z kept): done as linear
    interpolation along x and then y in each section, in float64 as MONAI resamples, instead of a
    float64 3-D sampling grid for the whole volume. The result equals ``Invertd``'s to float32
    rounding and carries the input's affine. Anything else (other recorded transforms, another
    mode, nearest interpolation) is passed to ``Invertd``.

    Shapes: ``key`` ``(C, X', Y', Z)`` on the network's grid -> ``(C, X, Y, Z)`` on the input's.

    Args:
        keys, transform, orig_keys, nearest_interp, to_tensor, allow_missing_keys: those of ``Invertd``.
    """

    def __init__(
        self,
        keys: KeysCollection,
        transform,
        orig_keys: KeysCollection | None = None,
        nearest_interp: bool = True,
        to_tensor: bool = True,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.orig_keys = ensure_tuple_rep(orig_keys, len(self.keys)) if orig_keys is not None else self.keys
        self.nearest_interp = nearest_interp
        self.invertd = Invertd(keys, transform, orig_keys=orig_keys, nearest_interp=nearest_interp, to_tensor=to_tensor,
                               allow_missing_keys=allow_missing_keys)

    def __call__(self, data: Mapping[Hashable, torch.Tensor]) -> dict[Hashable, torch.Tensor]:
        d = dict(data)
        plans = {key: self._plan(d[key], d.get(orig)) for key, orig in self.key_iterator(d, self.orig_keys)}
        if self.nearest_interp or any(plan is None for plan in plans.values()):
            return self.invertd(data)
        for key, orig in self.key_iterator(d, self.orig_keys):
            d[key] = self._resample(d[key], d[orig], *plans[key])
        return d

    @staticmethod
    def _plan(pred, image) -> tuple[np.ndarray, np.ndarray, tuple[int, ...]] | None:
        """(x-y scale, x-y offset, input grid size) of the one x-y resampling recorded on ``image``,
        or None when it is not that."""
        if not isinstance(image, MetaTensor) or len(image.applied_operations) != 1:
            return None
        op = image.applied_operations[0]
        info = op.get("extra_info") or {}
        if (op.get("class") != "SpatialResample" or op.get("lazy") or info.get("mode") != "bilinear"
                or info.get("padding_mode") != "border" or info.get("align_corners") is not False):
            return None
        size = tuple(int(s) for s in op["orig_size"])
        shape = tuple(pred.shape[1:])
        if len(size) != 3 or len(shape) != 3 or shape != tuple(image.shape[1:]) or size[2] != shape[2]:
            return None
        # output voxel p (input grid) sits at network-grid index inv(A_net) @ A_in @ p
        plan = section_scaling(info["src_affine"], image.affine)
        return None if plan is None else (*plan, size)

    @staticmethod
    def _resample(pred, image: MetaTensor, scale: np.ndarray, offset: np.ndarray, size: tuple[int, ...]) -> MetaTensor:
        values = pred.detach().cpu().numpy() if isinstance(pred, torch.Tensor) else np.asarray(pred)
        out = resample_sections(values, scale, offset, size[:2])
        meta = {k: v for k, v in image.meta.items() if k != "affine"}
        return MetaTensor(torch.from_numpy(out), affine=torch.as_tensor(image.applied_operations[0]["extra_info"]["src_affine"]),
                          meta=meta)


def voxel_spacing(affine) -> tuple[float, float, float]:
    """The voxel size (um) along x, y and z of a 4 x 4 affine: the lengths of its first three columns."""
    return tuple(float(s) for s in spacing_from_affine(convert_data_type(affine, np.ndarray)[0])[:3])  # type: ignore[return-value]


def input_ndim(*tensors) -> int | None:
    """Dimensions of the input file as stored (the reader's meta ``input_ndim``), from the first of
    ``tensors`` whose meta records it."""
    for tensor in tensors:
        meta = getattr(tensor, "meta", None) or {}
        if meta.get("input_ndim") is not None:
            # batched meta may hold it as a tensor
            return int(np.asarray(convert_data_type(meta["input_ndim"], np.ndarray)[0]).reshape(-1)[0])
    return None


def is_section_2d(frame_shape: Sequence[int], *tensors) -> bool:
    """Whether a frame ``(X, Y, Z)`` is a 2D input file's one section (the reader added its z axis)."""
    return input_ndim(*tensors) == 2 and len(frame_shape) == 3 and frame_shape[2] == 1


class LabelNucleid(MapTransform):
    """The nucleus mask to one id per nucleus, as ``osnet-monai segment`` writes ``NAME_nucleus.nii.gz``
    for a single 3D tomogram: :func:`~osnet_monai.measurements.label_nuclei` (touching nuclei split
    at their neck, nuclei under ``min_volume_um3`` removed, ids 1..n in raster order; a 2D section
    keeps every part, as its z spacing is a placeholder). The last step of inference.json's
    postprocessing, so MONAI Label's ``/infer`` and ``monai.bundle run`` give the CLI's ids; the
    writer then only turns them into track ids (the first frame's track ids are these).

    Shapes: ``key`` ``(1, X, Y, Z)`` binary mask on the input's grid (a MetaTensor, whose affine gives
    the voxel size) -> ``(1, X, Y, Z)`` int32 ids, same meta.

    Args:
        keys: keys of the masks.
        min_volume_um3: nuclei smaller than this (um^3) are dropped.
    """

    def __init__(self, keys: KeysCollection, min_volume_um3: float, allow_missing_keys: bool = False) -> None:
        super().__init__(keys, allow_missing_keys)
        if min_volume_um3 < 0:
            raise ValueError(f"min_volume_um3 must be >= 0, got {min_volume_um3}.")
        self.min_volume_um3 = float(min_volume_um3)

    def __call__(self, data: Mapping[Hashable, torch.Tensor]) -> dict[Hashable, torch.Tensor]:
        d = dict(data)
        for key in self.key_iterator(d):
            pred = d[key]
            if not isinstance(pred, MetaTensor):
                raise TypeError(f"LabelNucleid needs a MetaTensor under {key!r} (its affine gives the voxel size).")
            mask = convert_data_type(pred, np.ndarray)[0]
            if mask.ndim != 4 or mask.shape[0] != 1:
                raise ValueError(f"LabelNucleid expects a (1, X, Y, Z) mask under {key!r}, got shape {tuple(mask.shape)}.")
            min_volume = 0.0 if is_section_2d(mask.shape[1:], pred, d.get("image")) else self.min_volume_um3
            ids = label_nuclei(mask[0] > 0.5, min_volume, voxel_spacing(pred.affine))
            d[key] = MetaTensor(torch.from_numpy(ids[None]), meta=pred.meta, applied_operations=pred.applied_operations)
        return d
