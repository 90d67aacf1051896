"""Turning a stored face crop into a network input, with or without training augmentation.

Training: random square crop (side a random fraction of the shorter side, centre jittered), resize,
horizontal flip with the labels flipped by :func:`ldlpose.geometry.flip_angles` (yaw and roll
negate, spec 4.7: the angles are the only label; matrices and ASG vectors are derived from them by
the methods, so they follow), colour jitter (brightness, contrast, saturation) and Gaussian blur.
Evaluation: the part of the crop that the benchmark's protocol names (:class:`~ldlpose.data.protocols.
InputView`; by default the centred square of the shorter side, HopeNet's resize + centre crop),
nothing random.
Both end in RGB scaled to [0, 1] and normalised with the ImageNet mean and std.

Random numbers come from torch's generator, which the DataLoader seeds per worker, so workers
never repeat each other's augmentations and a seeded run repeats itself. The pixel work is numpy
and Pillow, single-threaded on purpose: torch's intra-op threads on (3, 224, 224) tensors made
items 7x slower in the main process of a busy machine.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image, ImageFilter

from ldlpose import geometry
from ldlpose.data.protocols import VIEWS, InputView
from ldlpose.errors import ConfigError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
_GRAY = (0.299, 0.587, 0.114)  # ITU-R 601 luma, as PIL's convert("L")


@dataclass(frozen=True)
class Augment:
    """Training augmentation. Defaults are mild, HopeNet-like (its resize 240 / crop 224 is a
    scale of 0.93 with a random position); ``Augment(flip_p=0, ...)`` switches parts off."""

    scale: tuple[float, float] = (0.8, 1.0)  # crop side as a fraction of the shorter image side
    shift: float = 0.1  # largest centre offset, as a fraction of the crop side
    flip_p: float = 0.5
    brightness: float = 0.25  # factors drawn from [1 - x, 1 + x]
    contrast: float = 0.25
    saturation: float = 0.25
    blur_p: float = 0.1
    blur_sigma: tuple[float, float] = (0.005, 0.02)  # Gaussian sigma as a fraction of the output size

    def __post_init__(self) -> None:
        lo, hi = self.scale
        if not 0 < lo <= hi <= 1:
            raise ConfigError(f"Augment.scale must satisfy 0 < low <= high <= 1, got {self.scale}")
        for name in ("flip_p", "blur_p", "brightness", "contrast", "saturation", "shift"):
            if not 0 <= getattr(self, name) <= 1:
                raise ConfigError(f"Augment.{name} must lie in [0, 1], got {getattr(self, name)}")


class Preprocess:
    """``(encoded image, angles_deg (3,)) -> (image (3, size, size) float32, angles_deg (3,) float32)``.

    With ``augment=None`` this is the evaluation transform: deterministic, no flip; ``view`` says
    which part of the crop is resized (default: the centred square of the shorter side).
    """

    def __init__(self, size: int = 64, augment: Augment | None = None, view: InputView | None = None):
        if size < 8:
            raise ConfigError(f"image size must be >= 8 pixels, got {size}")
        self.size, self.augment = size, augment
        self.view = view or VIEWS["centre-square"]
        self._mean = np.asarray(IMAGENET_MEAN, dtype=np.float32)
        self._std = np.asarray(IMAGENET_STD, dtype=np.float32)

    def __repr__(self) -> str:
        return f"Preprocess(size={self.size}, augment={self.augment}, view={self.view.name!r})"

    def __call__(self, data: bytes, angles_deg) -> tuple[torch.Tensor, torch.Tensor]:
        angles = torch.as_tensor(np.asarray(angles_deg, dtype=np.float32)).view(1, 3)
        aug = self.augment
        # One draw per item: scale, shift x, shift y, flip, brightness, contrast, saturation, blur, sigma.
        u = torch.rand(9).tolist() if aug is not None else None
        img = self._decode(data, aug.scale[0] if aug else self.view.fraction)
        img = img.resize((self.size, self.size), Image.BILINEAR, box=self._box(img.size, u))
        if aug is not None and u[3] < aug.flip_p:
            img = img.transpose(Image.FLIP_LEFT_RIGHT)
            angles = geometry.flip_angles(angles)
        if aug is not None and u[7] < aug.blur_p:
            lo, hi = aug.blur_sigma
            img = img.filter(ImageFilter.GaussianBlur((lo + (hi - lo) * u[8]) * self.size))
        x = np.asarray(img, dtype=np.float32) * np.float32(1 / 255)  # (H, W, 3) RGB
        if aug is not None:
            x = _jitter(x, *(1 + f * (2 * v - 1) for f, v in
                             zip((aug.brightness, aug.contrast, aug.saturation), u[4:7])))
        x -= self._mean
        x /= self._std
        return torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1))), angles[0]

    def _decode(self, data: bytes, min_scale: float) -> Image.Image:
        img = Image.open(io.BytesIO(data))
        if img.format == "JPEG":
            # Let libjpeg decode at 1/2, 1/4 or 1/8 scale when that still leaves enough pixels
            # for the smallest crop: the main saving when 256-px crops feed a 64-px network.
            ratio = self.size / (min_scale * min(img.size))
            if ratio < 1:
                img.draft("RGB", (math.ceil(img.width * ratio), math.ceil(img.height * ratio)))
        return img.convert("RGB")

    def _box(self, image_size: tuple[int, int], u: list[float] | None) -> tuple[float, float, float, float]:
        w, h = image_size
        if u is None:
            return self.view.box(w, h)
        lo, hi = self.augment.scale
        side = min(w, h) * (lo + (hi - lo) * u[0])
        shift = self.augment.shift * side
        cx = w / 2 + shift * (2 * u[1] - 1)
        cy = h / 2 + shift * (2 * u[2] - 1)
        x0 = min(max(cx - side / 2, 0.0), w - side)
        y0 = min(max(cy - side / 2, 0.0), h - side)
        return x0, y0, min(x0 + side, w), min(y0 + side, h)


def _gray(x: np.ndarray) -> np.ndarray:
    return x[..., 0] * _GRAY[0] + x[..., 1] * _GRAY[1] + x[..., 2] * _GRAY[2]


def _jitter(x: np.ndarray, brightness: float, contrast: float, saturation: float) -> np.ndarray:
    """Brightness, contrast and saturation as torchvision defines them, in place on (H, W, 3) [0, 1].

    Brightness then contrast fold into one affine map: (b x - m_b) c + m_b with m_b = b * mean gray.
    """
    mean_gray = float(_gray(x).mean()) * brightness
    x *= brightness * contrast
    x += mean_gray * (1.0 - contrast)
    gray = _gray(x)
    x *= saturation
    x += (gray * (1.0 - saturation))[..., None]
    return np.clip(x, 0.0, 1.0, out=x)
