"""Training-time looks of other instruments that MONAI's intensity transforms do not cover.

Interference fringes, a background tilt and signal-dependent, spatially correlated noise, drawn on
normalised x-y sections ``(C, X, Y)``. The instrument augmentation in ``train.json`` combines them
with MONAI's own contrast, gamma, offset, blur and white-noise transforms.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping

import numpy as np
import torch
import torch.nn.functional as F

from monai.config import KeysCollection
from monai.transforms import MapTransform, RandomizableTransform

__all__ = ["RandFringesd", "RandCorrelatedNoised"]


def _grid(shape: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.arange(shape[0], dtype=torch.float32)[:, None]
    y = torch.arange(shape[1], dtype=torch.float32)[None, :]
    return x, y


class _RandPerImaged(RandomizableTransform, MapTransform):
    """The skeleton both transforms share: with probability ``prob`` draw one set of parameters
    (:meth:`draw`), then apply it to every key (:meth:`apply`), so image and companions match."""

    def __init__(self, keys: KeysCollection, prob: float, allow_missing_keys: bool = False) -> None:
        MapTransform.__init__(self, keys, allow_missing_keys)
        RandomizableTransform.__init__(self, prob)

    def draw(self) -> dict:
        raise NotImplementedError

    def apply(self, img: torch.Tensor, params: dict) -> torch.Tensor:
        raise NotImplementedError

    def __call__(self, data: Mapping[Hashable, torch.Tensor]) -> dict[Hashable, torch.Tensor]:
        d = dict(data)
        self.randomize(None)
        if not self._do_transform:
            return d
        params = self.draw()
        for key in self.key_iterator(d):
            d[key] = self.apply(d[key], params)
        return d


class RandFringesd(_RandPerImaged):
    """Adds straight interference fringes of any orientation and a linear background tilt.

    Args:
        keys: image keys, ``(C, X, Y)`` tensors.
        prob: probability of adding fringes (the tilt is drawn with the same probability).
        period_px: (min, max) fringe period in pixels; 5-51 px is 1-10 um at the training's 0.196 um.
        amplitude: (min, max) fringe amplitude in normalised contrast units (cytoplasm ~ 1).
        tilt: largest background change across the section, normalised units.
    """

    def __init__(
        self,
        keys: KeysCollection,
        prob: float = 0.3,
        period_px: tuple[float, float] = (5.0, 51.0),
        amplitude: tuple[float, float] = (0.05, 0.5),
        tilt: float = 0.3,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, prob, allow_missing_keys)
        self.period_px = period_px
        self.amplitude = amplitude
        self.tilt = tilt

    def draw(self) -> dict:
        r = self.R
        period = float(np.exp(r.uniform(np.log(self.period_px[0]), np.log(self.period_px[1]))))
        theta, phase = r.uniform(0, np.pi), r.uniform(0, 2 * np.pi)
        amp = r.uniform(*self.amplitude)
        tilt_angle, tilt = r.uniform(0, 2 * np.pi), r.uniform(-self.tilt, self.tilt)
        return {"period": period, "theta": theta, "phase": phase, "amp": amp, "tilt_angle": tilt_angle, "tilt": tilt}

    def apply(self, img: torch.Tensor, params: dict) -> torch.Tensor:
        x, y = _grid(tuple(img.shape[-2:]))
        u = x * float(np.cos(params["theta"])) + y * float(np.sin(params["theta"]))
        size = float(max(img.shape[-2:]))
        ramp = (x * float(np.cos(params["tilt_angle"])) + y * float(np.sin(params["tilt_angle"]))) / size - 0.5
        pattern = params["amp"] * torch.cos(2 * np.pi * u / params["period"] + params["phase"]) + params["tilt"] * ramp
        return img + pattern.to(img.dtype)


class RandCorrelatedNoised(_RandPerImaged):
    """Adds noise that is spatially correlated and grows with the signal, as reconstructions show.

    ``out = img + s * (1 + k |img|) * smooth(n)`` with white noise ``n`` smoothed by a Gaussian of
    sigma U(0.5, ``max_sigma_px``) pixels, rescaled to unit SD; ``s`` is U(0, ``std``), ``k`` U(0,
    ``signal_gain``).
    """

    def __init__(
        self,
        keys: KeysCollection,
        prob: float = 0.3,
        std: float = 0.3,
        max_sigma_px: float = 3.0,
        signal_gain: float = 1.0,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, prob, allow_missing_keys)
        self.std = std
        self.max_sigma_px = max_sigma_px
        self.signal_gain = signal_gain

    def draw(self) -> dict:
        r = self.R
        sigma = r.uniform(0.5, self.max_sigma_px)
        std, gain = r.uniform(0, self.std), r.uniform(0, self.signal_gain)
        return {"sigma": sigma, "std": std, "gain": gain, "seed": int(r.randint(0, 2**31 - 1))}

    def apply(self, img: torch.Tensor, params: dict) -> torch.Tensor:
        sigma = params["sigma"]
        gen = torch.Generator().manual_seed(params["seed"])
        noise = torch.randn(tuple(img.shape), generator=gen, dtype=torch.float32)
        radius = int(np.ceil(3 * sigma))
        t = torch.arange(-radius, radius + 1, dtype=torch.float32)
        k = torch.exp(-(t**2) / (2 * sigma**2))
        k = k / k.sum()
        flat = noise.reshape(-1, 1, *img.shape[-2:])
        flat = F.conv2d(F.pad(flat, (radius, radius, 0, 0), mode="reflect"), k.view(1, 1, 1, -1))
        flat = F.conv2d(F.pad(flat, (0, 0, radius, radius), mode="reflect"), k.view(1, 1, -1, 1))
        noise = flat.reshape(img.shape)
        noise = noise / noise.std().clamp_min(1e-6)
        img_t = torch.as_tensor(img)
        return img + (params["std"] * (1 + params["gain"] * img_t.abs()) * noise).to(img_t.dtype)
