"""The photograph around a facegen face: light, picture edges, and the camera's faults.

Real test crops are photographs: lit from anywhere, colour cast, sometimes greyscale, blurred,
noisy, JPEG-compressed, and where AFLW2000's test crop leaves the picture, black. Each effect is
drawn per sample from the sample's own generator, so a sample stays reproducible.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np

__all__ = ["Photo", "develop", "sample_photo"]


@dataclass(frozen=True)
class Photo:
    light: tuple[float, float, float]  # toward the light, camera frame (z away from the camera)
    ambient: float
    diffuse: float
    tint: tuple[float, float, float]  # the light's colour
    noise_seed: int  # background and pixel noise
    picture: tuple[float, float, float, float]  # the picture's extent in crop fractions: black outside
    gain: tuple[float, float, float]  # colour cast after exposure
    gamma: float
    grey: bool
    blur: float  # Gaussian radius, fraction of the image size
    jpeg: int | None  # quality
    noise: float


EVERYWHERE = (-1e9, -1e9, 1e9, 1e9)


def edge_inside(rng: np.random.Generator, points: np.ndarray) -> tuple[float, float, float, float]:
    """A picture whose edge on one side falls between the crop's border and a little inside the face."""
    side = int(rng.choice(4, p=[0.3, 0.15, 0.3, 0.25]))  # left, top, right, bottom
    low, high = points.min(axis=0), points.max(axis=0)
    room = (low[0], low[1], 1 - high[0], 1 - high[1])[side]
    cut = float(rng.uniform(0.0, max(room, 0.0) + 0.08))
    rect = list(EVERYWHERE)
    rect[side] = cut if side < 2 else 1 - cut
    return (rect[0], rect[1], rect[2], rect[3])


def sample_photo(rng: np.random.Generator, picture: tuple[float, float, float, float]) -> Photo:
    """Random photograph settings; ``picture`` is the picture's extent as fractions of the crop."""
    light = np.array([rng.uniform(-1, 1), rng.uniform(-1, 0.7), -rng.uniform(0.2, 1.5)])
    warm = rng.uniform(-0.15, 0.15)
    return Photo(
        light=tuple(light / np.linalg.norm(light)), ambient=rng.uniform(0.2, 0.6), diffuse=rng.uniform(0.35, 0.9),
        tint=tuple(np.array([1 + warm, 1.0, 1 - warm]) * (1 + rng.uniform(-0.05, 0.05, 3))),
        noise_seed=int(rng.integers(2**31)), picture=picture,
        gain=tuple(rng.uniform(0.7, 1.25) * (1 + rng.uniform(-0.1, 0.1, 3))), gamma=rng.uniform(0.75, 1.35),
        grey=bool(rng.random() < 0.08), blur=float(rng.choice([0.0, rng.uniform(0.004, 0.015)], p=[0.75, 0.25])),
        jpeg=int(rng.integers(25, 95)) if rng.random() < 0.6 else None, noise=rng.uniform(0.0, 0.04),
    )


def develop(image: np.ndarray, photo: Photo) -> np.ndarray:
    """Apply exposure, colour cast, greyscale, blur, noise, JPEG and the picture edge to a uint8 image."""
    from PIL import Image, ImageFilter

    size = image.shape[0]
    x = (image.astype(np.float32) / 255) ** photo.gamma * np.asarray(photo.gain, np.float32)
    if photo.grey:
        x = np.repeat(x @ np.array([[0.299], [0.587], [0.114]], np.float32), 3, axis=-1)
    rng = np.random.default_rng(photo.noise_seed + 1)
    x = x + rng.normal(0.0, photo.noise, x.shape).astype(np.float32)
    img = Image.fromarray(np.clip(x * 255 + 0.5, 0, 255).astype(np.uint8))
    if photo.blur > 0:
        img = img.filter(ImageFilter.GaussianBlur(photo.blur * size))
    if photo.jpeg is not None:
        buffer = io.BytesIO()
        img.save(buffer, format="JPEG", quality=photo.jpeg)
        img = Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")
    out = np.asarray(img).copy()
    x0, y0, x1, y1 = (round(min(max(v, 0.0), 1.0) * size) for v in photo.picture)
    out[:y0], out[y1:], out[:, :x0], out[:, x1:] = 0, 0, 0, 0
    return out
