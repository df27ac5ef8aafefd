"""
The elastic deformation of the OS-Net paper: Simard et al. (2003), with the paper's (alpha, sigma) pairs.

Simard's recipe, per spatial axis: draw uniform(-1, 1) noise at every pixel, smooth it with a
Gaussian of standard deviation ``sigma`` pixels, multiply by ``alpha`` pixels; the result is the
displacement along that axis. The image is then resampled at ``x + displacement(x)``.

Because the Gaussian averages many independent noise values, the field is much smaller than
``alpha``. For white noise of variance 1/3 (that of U(-1, 1)) the smoothed variance is
``1/3 * sum(k^2)`` with ``k`` the normalised discrete kernel, about ``1 / (4 pi sigma^2)`` in 2D
for ``sigma >~ 1``. The expected RMS displacement per axis is therefore about
``alpha / (sigma * sqrt(12 pi))``. With the exact discrete kernel (the continuum formula
underestimates sigma = 0.5), the paper's pairs (1, 1), (5, 2), (1, 0.5), (1, 3) give 0.163, 0.407,
0.370 and 0.054 pixel RMS per axis (0.23, 0.58, 0.52, 0.077 pixel RMS displacement length), which
is what 448 x 448 fields measure (tests/transforms/test_elastic.py). The paper's augmentation is a sub-pixel
jitter, not the large rubber-sheet warp that alpha = 34, sigma = 4 gives in Simard's MNIST work.

Why not ``monai.transforms.Rand2DElasticd``: MONAI draws *normal* offsets on a coarse grid of
control points ``spacing`` pixels apart, scales them by a ``magnitude`` drawn from
``magnitude_range`` and upsamples with bicubic interpolation. Its ``spacing`` plays the role of the
correlation length (roughly 2-3 ``sigma``) and its ``magnitude`` is the per-axis RMS displacement
directly (about ``alpha * sqrt(sum(k^2) / 3)`` here), but the two fields have different spectra
and amplitude distributions, and the paper's ``sigma = 0.5`` (nearly white, per-pixel noise) has
no control-point counterpart. So ``(alpha, sigma)`` cannot be passed to MONAI's transform; this
one implements the paper's definition directly.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage

from monai.config import KeysCollection
from monai.config.type_definitions import NdarrayOrTensor
from monai.transforms import MapTransform, RandomizableTransform
from monai.utils import TransformBackends, convert_to_dst_type, ensure_tuple_rep

__all__ = ["paper_elastic_displacement", "apply_displacement", "RandPaperElasticd", "PAPER_ELASTIC_PARAMS"]

#: the (alpha, sigma) pairs of the paper, in pixels
PAPER_ELASTIC_PARAMS: tuple[tuple[float, float], ...] = ((1.0, 1.0), (5.0, 2.0), (1.0, 0.5), (1.0, 3.0))

# padding names follow torch.grid_sample / MONAI's GridSamplePadMode; scipy equivalents for map_coordinates.
# grid_sample(align_corners=True) reflects about the edge pixel centres, which is scipy's "mirror".
_PAD_TORCH = {"reflection": "reflection", "reflect": "reflection", "border": "border", "zeros": "zeros"}
_PAD_SCIPY = {"reflection": "mirror", "border": "nearest", "zeros": "grid-constant"}
_ORDER = {"bilinear": 1, "nearest": 0}


def paper_elastic_displacement(
    shape: Sequence[int],
    alpha: float,
    sigma: float,
    rng: np.random.RandomState | np.random.Generator | None = None,
    filter_mode: str = "constant",
) -> np.ndarray:
    """
    Simard et al. (2003) displacement field: per axis, alpha * gaussian_filter(U(-1, 1), sigma).

    Args:
        shape: spatial shape, (H, W) or (D, H, W).
        alpha: scale of the field, in pixels.
        sigma: standard deviation of the Gaussian smoothing, in pixels.
        rng: random source (``np.random.RandomState`` such as a transform's ``self.R``, or a
            ``np.random.Generator``); a fresh default generator if None.
        filter_mode: boundary mode of ``scipy.ndimage.gaussian_filter``. ``"constant"`` (zero
            padding, the widely used reference implementation) tapers the field within about
            ``2 sigma`` of the border; the interior statistics do not depend on it.

    Returns:
        float32 array of shape ``(len(shape), *shape)``; component ``i`` displaces along spatial axis ``i``
        (for 2D: 0 = rows/H, 1 = columns/W), in pixels.

    Examples:
        >>> d = paper_elastic_displacement((448, 448), alpha=1.0, sigma=1.0, rng=np.random.default_rng(0))
        >>> d.shape, bool(np.sqrt((d**2).mean()) < 0.5)
        ((2, 448, 448), True)
    """
    shape = tuple(int(s) for s in shape)
    if sigma < 0 or alpha < 0:
        raise ValueError(f"alpha and sigma must be non-negative, got alpha={alpha}, sigma={sigma}.")
    if rng is None:
        rng = np.random.default_rng()
    fields = []
    for _ in shape:  # one independent field per axis, drawn in axis order so seeds are reproducible
        noise = rng.uniform(-1.0, 1.0, size=shape)
        fields.append(ndimage.gaussian_filter(noise, sigma, mode=filter_mode, cval=0.0) * alpha)
    return np.stack(fields).astype(np.float32, copy=False)


def _warp_torch(img: torch.Tensor, disp: torch.Tensor, mode: str, padding_mode: str) -> torch.Tensor:
    spatial = img.shape[1:]
    axes = [torch.arange(n, dtype=disp.dtype, device=disp.device) for n in spatial]
    base = torch.stack(torch.meshgrid(*axes, indexing="ij"))
    coords = base + disp
    # pixel coordinates -> [-1, 1] with align_corners=True (-1 and 1 are the edge pixel centres)
    scale = torch.tensor([2.0 / max(n - 1, 1) for n in spatial], dtype=disp.dtype, device=disp.device)
    scale = scale.reshape(-1, *([1] * len(spatial)))
    norm = coords * scale - 1.0
    # grid_sample wants the last dim ordered (x, y[, z]): reverse of the array axes
    grid = torch.flip(norm, dims=[0]).permute(*range(1, len(spatial) + 1), 0).unsqueeze(0)
    out = F.grid_sample(img.unsqueeze(0), grid, mode=mode, padding_mode=_PAD_TORCH[padding_mode], align_corners=True)
    return out[0]


def _warp_scipy(img: np.ndarray, disp: np.ndarray, mode: str, padding_mode: str) -> np.ndarray:
    coords = np.indices(img.shape[1:], dtype=np.float32) + disp
    order, pad = _ORDER[mode], _PAD_SCIPY[_PAD_TORCH[padding_mode]]
    return np.stack([ndimage.map_coordinates(ch, coords, order=order, mode=pad, cval=0.0) for ch in img])


def apply_displacement(
    img: NdarrayOrTensor,
    displacement: np.ndarray,
    mode: str = "bilinear",
    padding_mode: str = "reflection",
    backend: str = "torch",
) -> NdarrayOrTensor:
    """
    Resample a channel-first image at ``grid + displacement`` (pull-back: out[x] = img[x + d(x)]).

    Args:
        img: (C, H, W) or (C, D, H, W) tensor, MetaTensor or array; type, dtype and meta are kept.
        displacement: (ndim, *spatial) in pixels, as from :py:func:`paper_elastic_displacement`.
        mode: ``"bilinear"`` (images) or ``"nearest"`` (labels: values stay in the input's label set).
        padding_mode: ``"reflection"`` (alias ``"reflect"``), ``"border"`` or ``"zeros"``.
        backend: ``"torch"`` (``grid_sample``) or ``"scipy"`` (``map_coordinates``); same result.

    Returns:
        the resampled image, same type, dtype and shape as ``img``.
    """
    if mode not in _ORDER:
        raise ValueError(f"mode must be one of {sorted(_ORDER)}, got {mode!r}.")
    if padding_mode not in _PAD_TORCH:
        raise ValueError(f"padding_mode must be one of {sorted(_PAD_TORCH)}, got {padding_mode!r}.")
    if tuple(img.shape[1:]) != tuple(displacement.shape[1:]) or displacement.shape[0] != img.ndim - 1:
        raise ValueError(f"displacement {displacement.shape} does not fit a channel-first image {tuple(img.shape)}.")
    if img.ndim not in (3, 4):
        raise ValueError(f"expected a channel-first 2D or 3D image, got shape {tuple(img.shape)}.")
    dtype = img.dtype
    if backend == "torch":
        src = img.as_subclass(torch.Tensor) if isinstance(img, torch.Tensor) else torch.as_tensor(img)
        src_f = src if src.dtype in (torch.float32, torch.float64) else src.float()
        disp_t = torch.as_tensor(displacement, dtype=src_f.dtype, device=src_f.device)
        out: NdarrayOrTensor = _warp_torch(src_f, disp_t, mode, padding_mode)
    elif backend == "scipy":
        arr = img.detach().cpu().numpy() if isinstance(img, torch.Tensor) else np.asarray(img)
        arr_f = arr if arr.dtype in (np.float32, np.float64) else arr.astype(np.float32)
        out = _warp_scipy(arr_f, displacement, mode, padding_mode)
    else:
        raise ValueError(f"backend must be 'torch' or 'scipy', got {backend!r}.")
    is_float = torch.is_floating_point(img) if isinstance(img, torch.Tensor) else np.issubdtype(dtype, np.floating)
    if not is_float:
        # integer/bool input: bilinear values are rounded back onto the integer grid
        out = out.round() if isinstance(out, torch.Tensor) else np.round(out)
    result, *_ = convert_to_dst_type(out, img, dtype=dtype)
    return result


class RandPaperElasticd(RandomizableTransform, MapTransform):
    """
    Dictionary transform: the OS-Net paper's elastic deformation (Simard et al. 2003).

    On each call, with probability ``prob``, one ``(alpha, sigma)`` pair is chosen uniformly from
    ``params``, one displacement field is drawn with :py:func:`paper_elastic_displacement`, and every
    key is resampled along that same field (images bilinear, labels nearest, reflection padding).
    All randomness is drawn in :py:meth:`randomize` from ``self.R``, so ``set_random_state`` makes
    it reproducible. See the module docstring for the size of the displacements and for why
    ``monai.transforms.Rand2DElasticd`` cannot express these parameters.

    Args:
        keys: keys of the channel-first (C, H, W) (or (C, D, H, W)) items to deform; all must share
            the spatial shape.
        params: ``(alpha, sigma)`` pairs in pixels; default the paper's four pairs.
        prob: probability of deforming at all.
        mode: ``"bilinear"`` or ``"nearest"``, one per key or one for all; default bilinear for the
            first key (image) and nearest for the second (label).
        padding_mode: ``"reflection"``, ``"border"`` or ``"zeros"``, one per key or one for all.
        allow_missing_keys: don't raise if a key is missing.
        backend: ``"torch"`` (``grid_sample``, default) or ``"scipy"`` (``map_coordinates``). Measured on
            a 2-core CPU, image + label, one torch thread (as in DataLoader workers): 0.36 vs 1.6 ms at
            224 x 224 and 1.3 vs 6.3 ms at 448 x 448. Drawing the field (noise + two Gaussian filters,
            about 1.3 / 6 ms) costs more than either. With 2 torch threads on a loaded machine
            ``grid_sample`` can stall on thread contention; prefer 1 thread or ``"scipy"`` there.

    Examples:
        .. code-block:: python

            aug = RandPaperElasticd(keys=("image", "label"), prob=0.3).set_random_state(0)
            out = aug({"image": torch.rand(1, 448, 448), "label": (torch.rand(1, 448, 448) > 0.5).float()})
    """

    backend = [TransformBackends.TORCH, TransformBackends.NUMPY]

    def __init__(
        self,
        keys: KeysCollection,
        params: Sequence[tuple[float, float]] = PAPER_ELASTIC_PARAMS,
        prob: float = 1.0,
        mode: Sequence[str] | str = ("bilinear", "nearest"),
        padding_mode: Sequence[str] | str = "reflection",
        allow_missing_keys: bool = False,
        backend: str = "torch",
    ) -> None:
        MapTransform.__init__(self, keys, allow_missing_keys)
        RandomizableTransform.__init__(self, prob)
        self.params = tuple((float(a), float(s)) for a, s in params)
        if not self.params:
            raise ValueError("params must hold at least one (alpha, sigma) pair.")
        modes = (mode,) if isinstance(mode, str) else tuple(mode)
        if len(modes) == len(self.keys):
            self.mode = modes
        elif len(modes) == 1:
            self.mode = modes * len(self.keys)
        elif len(self.keys) == 1:  # the default (image, label) pair given a single key: the image mode
            self.mode = modes[:1]
        else:
            raise ValueError(f"give one mode or one per key ({len(self.keys)}), got {modes}.")
        self.padding_mode = ensure_tuple_rep(padding_mode, len(self.keys))
        for m in self.mode:
            if m not in _ORDER:
                raise ValueError(f"mode must be 'bilinear' or 'nearest', got {m!r}.")
        if backend not in ("torch", "scipy"):
            raise ValueError(f"backend must be 'torch' or 'scipy', got {backend!r}.")
        # not `self.backend`: MONAI reserves that name for the list of supported data types
        self.resampler = backend
        self.alpha_sigma: tuple[float, float] = self.params[0]
        self.displacement: np.ndarray | None = None

    def randomize(self, spatial_size: Sequence[int]) -> None:  # type: ignore[override]
        """Draw whether to deform, which (alpha, sigma) pair, and the displacement field."""
        super().randomize(None)
        if not self._do_transform:
            self.displacement = None
            return
        self.alpha_sigma = self.params[self.R.randint(len(self.params))]
        alpha, sigma = self.alpha_sigma
        self.displacement = paper_elastic_displacement(spatial_size, alpha, sigma, rng=self.R)

    def __call__(self, data: Mapping[Hashable, NdarrayOrTensor]) -> dict[Hashable, NdarrayOrTensor]:
        """
        Args:
            data: dictionary with channel-first items under ``keys``.

        Returns:
            a copy of ``data`` whose ``keys`` items are deformed by the same field.
        """
        d = dict(data)
        first_key: Hashable = self.first_key(d)
        if first_key == ():
            return d
        spatial_size = tuple(d[first_key].shape[1:])
        for key in self.key_iterator(d):
            if tuple(d[key].shape[1:]) != spatial_size:
                raise ValueError(f"all keys must share the spatial shape {spatial_size}, {key!r} has {d[key].shape}.")
        self.randomize(spatial_size)
        if not self._do_transform or self.displacement is None:
            return d
        for key, mode, pad in self.key_iterator(d, self.mode, self.padding_mode):
            d[key] = apply_displacement(d[key], self.displacement, mode=mode, padding_mode=pad, backend=self.resampler)
        return d
