"""Turning a stored face crop into a network input, with or without training augmentation.

Training: random square crop (side a random fraction of the shorter side, centre jittered), resize,
horizontal flip with the labels flipped by :func:`ldlpose.geometry.flip_angles` (yaw and roll
negate, docs/methods.md#flip: the angles are the only label; matrices and ASG vectors are derived from them by
the methods, so they follow), Gaussian blur and colour jitter (brightness, contrast, saturation).
Evaluation: the part of the crop that the benchmark's protocol names (:class:`~ldlpose.data.protocols.
InputView`; by default the centred square of the shorter side, HopeNet's resize + centre crop),
nothing random, resized by Pillow exactly as the reference test scripts do: the one evaluation input
path of :mod:`ldlpose.data.inputs`, which ``ldlpose evaluate`` feeds every kind of model through.
Both end in RGB scaled to [0, 1] and normalised with the ImageNet mean and std.

Training augmentation runs in two stages so that the expensive part can be batched and moved:

1. :meth:`Preprocess.stage`, per item: draw the item's random numbers, decode, crop + resize +
   flip in uint8 (a (3, S, S) tensor). A DataLoader worker does this.
2. :meth:`Preprocess.finish`, per batch of uint8 images and their draws: blur, jitter and
   normalise to float32. It is plain tensor arithmetic, so it runs on the CPU (in the loader's
   collate) or on the GPU after the uint8 batch (4x smaller than float) has been copied there.
   :meth:`Preprocess.crop` is a tensor function too, so a GPU can also decode
   (``torchvision.io.decode_jpeg(device="cuda")``) and crop; ``ldlpose.data.pipeline`` picks.

Random numbers come from torch's generator, which the DataLoader seeds per worker, so workers
never repeat each other's augmentations and a seeded run repeats itself; both stages read only the
item's draws, so where stage 2 runs does not change which augmentation an item gets.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ldlpose import geometry
from ldlpose.data.inputs import IMAGENET_MEAN, IMAGENET_STD, normalise, open_rgb, view_crop
from ldlpose.data.protocols import VIEWS, InputView
from ldlpose.errors import ConfigError

__all__ = ["DRAWS", "IMAGENET_MEAN", "IMAGENET_STD", "Augment", "Preprocess", "decode_rgb", "gaussian_blur"]
_GRAY = (0.299, 0.587, 0.114)  # ITU-R 601 luma, as PIL's convert("L") and torchvision's rgb_to_grayscale

# One draw per item, in this order (a (DRAWS,) float tensor of U[0, 1) numbers):
SCALE, SHIFT_X, SHIFT_Y, FLIP, BRIGHTNESS, CONTRAST, SATURATION, BLUR, SIGMA = range(9)
DRAWS = 9
# Images finished per step on the CPU: one chunk's float copy stays in cache (8 x 600 kB at 224 px);
# whole 64-image batches ran 1.5x slower per image, memory-bound.
CPU_CHUNK = 8


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

    def box(self, width: int, height: int, draws) -> tuple[int, int, int]:
        """The random square ``(x0, y0, side)`` in whole pixels, inside a ``width x height`` image."""
        lo, hi = self.scale
        side = min(width, height) * (lo + (hi - lo) * float(draws[SCALE]))
        shift = self.shift * side
        side_px = max(1, min(round(side), width, height))
        x0 = round(width / 2 + shift * (2 * float(draws[SHIFT_X]) - 1) - side_px / 2)
        y0 = round(height / 2 + shift * (2 * float(draws[SHIFT_Y]) - 1) - side_px / 2)
        return min(max(x0, 0), width - side_px), min(max(y0, 0), height - side_px), side_px

    def flips(self, draws) -> bool:
        return float(draws[FLIP]) < self.flip_p


class Preprocess:
    """``(encoded image, angles_deg (3,)) -> (image (3, size, size) float32, angles_deg (3,) float32)``.

    With ``augment=None`` this is the evaluation transform: deterministic, no flip; ``view`` says
    which part of the crop is resized (default: the centred square of the shorter side); ``draft``
    lets a JPEG decode at reduced scale (validation; a benchmark's transform has ``draft=False``,
    :mod:`ldlpose.data.inputs`). With an :class:`Augment` a call is :meth:`stage` then
    :meth:`finish` on a batch of one.
    """

    def __init__(self, size: int = 64, augment: Augment | None = None, view: InputView | None = None, *,
                 draft: bool = True):
        if size < 8:
            raise ConfigError(f"image size must be >= 8 pixels, got {size}")
        self.size, self.augment, self.draft = size, augment, draft
        self.view = view or VIEWS["centre-square"]

    def __repr__(self) -> str:
        return f"Preprocess(size={self.size}, augment={self.augment}, view={self.view.name!r}, draft={self.draft})"

    def __call__(self, data: bytes, angles_deg) -> tuple[torch.Tensor, torch.Tensor]:
        if self.augment is None:
            return self._evaluate(data, angles_deg)
        image, angles, draws = self.stage(data, angles_deg)
        return self.finish(image[None], draws[None])[0], angles

    # -- training, stage 1: one item -------------------------------------------------------------

    def stage(self, data: bytes, angles_deg, draws: torch.Tensor | None = None, *, decode: bool = True):
        """``(image, angles_deg, draws)``: the uint8 (3, S, S) crop (or, with ``decode=False``,
        the encoded bytes as a uint8 tensor), the angles flipped when the image is, and the draws
        (given, or drawn from torch's generator)."""
        draws = torch.rand(DRAWS) if draws is None else draws
        angles = torch.as_tensor(np.asarray(angles_deg, dtype=np.float32)).view(1, 3)
        if self._flips(draws):
            angles = geometry.flip_angles(angles)
        if not decode:
            return torch.frombuffer(bytearray(data), dtype=torch.uint8), angles[0], draws
        return self.crop(decode_rgb(data, self._draft_ratio), draws), angles[0], draws

    def crop(self, image: torch.Tensor, draws: torch.Tensor) -> torch.Tensor:
        """The random square of a uint8 (3, H, W) image (the view's box without augmentation),
        resized to S x S (bilinear, antialiased, as Pillow) and flipped if drawn; any device."""
        from torchvision.transforms.v2 import functional as tvf

        height, width = image.shape[-2:]
        if self.augment is None:
            x0, y0, x1, y1 = (round(v) for v in self.view.box(width, height))
        else:
            x0, y0, side = self.augment.box(width, height, draws)
            x1, y1 = x0 + side, y0 + side
        out = tvf.resize(image[:, y0:y1, x0:x1], [self.size, self.size], antialias=True)
        return out.flip(-1) if self._flips(draws) else out

    def _flips(self, draws) -> bool:
        return self.augment is not None and self.augment.flips(draws)

    def _draft_ratio(self, width: int, height: int) -> float:
        """Output over input pixels for the smallest crop: below 1/2, libjpeg can decode at reduced scale."""
        smallest = self.augment.scale[0] if self.augment is not None else self.view.fraction
        return self.size / (smallest * min(width, height))

    # -- training, stage 2: a batch --------------------------------------------------------------

    def finish(self, images: torch.Tensor, draws: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
        """uint8 (B, 3, S, S) images and their (B, DRAWS) draws -> normalised float32 (B, 3, S, S)
        (into ``out`` if given), on the images' device: blur where drawn, jitter, clip to [0, 1],
        ImageNet-normalise. Give the draws on the CPU: which images blur is decided there."""
        host = draws.cpu()
        draws = draws.to(images.device, torch.float32)
        if out is None:
            out = torch.empty(images.shape, dtype=torch.float32, device=images.device)
        step = CPU_CHUNK if images.device.type == "cpu" else max(len(images), 1)
        for start in range(0, len(images), step):
            part = slice(start, start + step)
            out[part].copy_(images[part])
            self._blur(out[part], host[part])
            _jitter_normalise(out[part], *self._factors(draws[part]))
        return out

    def _factors(self, draws: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        a = self.augment or Augment(brightness=0.0, contrast=0.0, saturation=0.0)
        columns = ((a.brightness, BRIGHTNESS), (a.contrast, CONTRAST), (a.saturation, SATURATION))
        brightness, contrast, saturation = ((1 + f * (2 * draws[:, j] - 1)).view(-1, 1, 1, 1) for f, j in columns)
        return brightness, contrast, saturation

    def _blur(self, x: torch.Tensor, draws: torch.Tensor) -> None:
        if self.augment is None:
            return
        chosen = torch.nonzero(draws[:, BLUR] < self.augment.blur_p).flatten()
        if len(chosen):
            lo, hi = self.augment.blur_sigma
            sigma_px = (lo + (hi - lo) * draws[chosen, SIGMA]) * self.size
            chosen = chosen.to(x.device)
            x[chosen] = gaussian_blur(x[chosen], sigma_px)

    # -- evaluation ------------------------------------------------------------------------------

    def _evaluate(self, data: bytes, angles_deg) -> tuple[torch.Tensor, torch.Tensor]:
        angles = torch.as_tensor(np.asarray(angles_deg, dtype=np.float32)).view(3)
        image = torch.from_numpy(view_crop(data, self.view, self.size, draft=self.draft)).permute(2, 0, 1)
        return normalise(image.float().div_(255.0)), angles


def decode_rgb(data: bytes, ratio=None) -> torch.Tensor:
    """An encoded image as a uint8 (3, H, W) RGB tensor.

    torchvision's decoder (libjpeg-turbo or libpng) writes the tensor directly: 0.6 ms for a 256-px
    JPEG here against 1.0 ms through Pillow and numpy. When ``ratio(width, height)`` (output over
    input pixels) is at most 1/2, Pillow decodes the JPEG at 1/2, 1/4 or 1/8 scale instead
    (libjpeg's DCT scaling), the main saving when 256-px crops feed a 64-px network.
    """
    import torchvision.io as tvio

    size = _jpeg_size(data) if ratio is not None else None
    if size is not None and ratio(*size) <= 0.5:
        return torch.from_numpy(np.array(open_rgb(data, ratio))).permute(2, 0, 1)
    encoded = torch.frombuffer(bytearray(data), dtype=torch.uint8)
    return tvio.decode_image(encoded, mode=tvio.ImageReadMode.RGB)


def _jpeg_size(data) -> tuple[int, int] | None:
    """``(width, height)`` from a JPEG's frame header, or None if ``data`` is no JPEG; reading it
    here costs microseconds where ``Image.open`` took a quarter of a millisecond."""
    data = memoryview(data).cast("B")
    if bytes(data[:2]) != b"\xff\xd8":
        return None
    at = 2
    while at + 9 <= len(data):
        marker, length = data[at + 1], int.from_bytes(data[at + 2:at + 4], "big")
        if data[at] != 0xFF:
            return None
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):  # SOFn: precision, height, width
            return int.from_bytes(data[at + 7:at + 9], "big"), int.from_bytes(data[at + 5:at + 7], "big")
        at += 2 + length
    return None


def gaussian_blur(x: torch.Tensor, sigma_px: torch.Tensor, *, batched: bool | None = None) -> torch.Tensor:
    """Float (n, 3, H, W) images, image i blurred by a Gaussian of ``sigma_px[i]``, edges reflected.

    Two 1-D passes, truncated at 3 sigma of the largest. On the CPU: shifted multiply-adds per
    image (scalar weights; 3x faster than a grouped ``conv2d``, 7x faster than torchvision's 2-D
    kernel). On a GPU (``batched``): one grouped ``conv2d`` per pass for all images, one kernel each.
    """
    radius = max(1, min(math.ceil(3 * float(sigma_px.max())), x.shape[-1] - 1, x.shape[-2] - 1))
    taps = torch.arange(-radius, radius + 1, dtype=torch.float64)
    kernels = torch.exp(-0.5 * (taps / sigma_px.double().cpu()[:, None]) ** 2)
    kernels /= kernels.sum(1, keepdim=True)  # (n, taps)
    if batched if batched is not None else x.is_cuda:
        return _blur_conv(x, kernels.to(x.device, x.dtype), radius)
    out = torch.empty_like(x)
    for i, kernel in enumerate(kernels.tolist()):
        out[i] = _blur_shifts(x[i], kernel, radius)
    return out


def _blur_shifts(x: torch.Tensor, kernel: list[float], radius: int) -> torch.Tensor:
    for dim, pad in ((-1, (radius, radius, 0, 0)), (-2, (0, 0, radius, radius))):
        padded = torch.nn.functional.pad(x[None], pad, mode="reflect")[0]
        size = x.shape[dim]
        x = padded.narrow(dim, 0, size) * kernel[0]
        for j in range(1, len(kernel)):
            x.add_(padded.narrow(dim, j, size), alpha=kernel[j])
    return x


def _blur_conv(x: torch.Tensor, kernels: torch.Tensor, radius: int) -> torch.Tensor:
    n, c, h, w = x.shape
    weight = kernels.repeat_interleave(c, 0)[:, None, None, :]  # (n c, 1, 1, taps): one filter per plane
    y = torch.nn.functional.pad(x, (radius, radius, radius, radius), mode="reflect").view(1, n * c, h + 2 * radius, -1)
    y = torch.nn.functional.conv2d(y, weight, groups=n * c)
    y = torch.nn.functional.conv2d(y, weight.transpose(2, 3), groups=n * c)
    return y.view(n, c, h, w)


def _jitter_normalise(x: torch.Tensor, brightness, contrast, saturation) -> None:
    """Brightness, contrast and saturation as torchvision defines them, then ImageNet normalisation,
    in place on float (n, 3, H, W) images with values in [0, 255]; factors are (n, 1, 1, 1).

    All three are affine in the pixel and its gray value g, and g of an affine image is the same
    affine map of g, so they fold into ``A_c x_c + C_c g + D_c`` per channel, clipped to [0, 1]
    once (torchvision clips after each of the three: the same wherever nothing saturates). With the
    normalisation folded in too, that is three passes over the pixels instead of about ten.
    """
    mean = torch.tensor(IMAGENET_MEAN, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=x.device).view(1, 3, 1, 1)
    gray = x[:, 0:1] * _GRAY[0]
    gray.add_(x[:, 1:2], alpha=_GRAY[1]).add_(x[:, 2:3], alpha=_GRAY[2])
    mean_gray = gray.mean((2, 3), keepdim=True) / 255
    gain = brightness * contrast  # brightness b then contrast c: b c x + (1 - c) b m
    offset = (1 - contrast) * brightness * mean_gray
    x.mul_(gain * saturation / (255 * std)).addcmul_(gray, gain * (1 - saturation) / (255 * std))
    x.add_((offset - mean) / std)
    for c, (m, s) in enumerate(zip(IMAGENET_MEAN, IMAGENET_STD)):  # scalar bounds: 20x faster than tensors
        x[:, c].clamp_(-m / s, (1 - m) / s)
