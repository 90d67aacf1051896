"""The photograph around a facegen face: light, picture edges, and the camera's faults.

Real test crops are photographs: lit from anywhere, colour cast, sometimes greyscale, blurred,
noisy, JPEG-compressed, and where AFLW2000's test crop leaves the picture, black. Each effect is
drawn per sample from the sample's own generator, so a sample stays reproducible.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np

__all__ = ["Photo", "develop", "natural_background", "sample_photo"]


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
    natural: bool = True  # natural_background behind the head; False: synthhead's coloured shapes


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


def sample_photo(rng: np.random.Generator, picture: tuple[float, float, float, float], natural: bool = True) -> Photo:
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
        natural=natural,
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


def _pink(rng: np.random.Generator, size: int, exponent: float) -> np.ndarray:
    """(size, size) noise whose amplitude falls as 1/f**exponent, scaled to mean 0 and std 1."""
    fy, fx = np.fft.fftfreq(size)[:, None], np.fft.rfftfreq(size)[None, :]
    f = np.hypot(fx, fy)
    f[0, 0] = 1.0
    spectrum = (rng.normal(size=f.shape) + 1j * rng.normal(size=f.shape)) / f ** exponent
    spectrum[0, 0] = 0.0
    field = np.fft.irfft2(spectrum, s=(size, size))
    return (field - field.mean()) / (field.std() + 1e-9)


def _muted(rng: np.random.Generator) -> np.ndarray:
    """A colour of walls, rooms and foliage: any hue, low saturation, any brightness."""
    grey = rng.uniform(0.05, 0.95)
    return np.clip(grey + rng.normal(0.0, rng.uniform(0.02, 0.12), 3), 0, 1)


def natural_background(rng: np.random.Generator, size: int) -> np.ndarray:
    """(size, size, 3) floats in [0, 1]: what is behind a face in a photograph.

    Natural scenes have a 1/f amplitude spectrum (exponent about 1; larger when out of focus) and
    muted colours: a plain wall (25 %), a textured scene (55 %), or a scene with the straight
    edges of doors, windows and furniture (20 %). Brightness reaches from night to overexposed white.
    """
    y, x = (np.mgrid[0:size, 0:size] + 0.5) / size
    base, other = _muted(rng), _muted(rng)
    angle = rng.uniform(0, 2 * np.pi)
    ramp = (np.cos(angle) * (x - 0.5) + np.sin(angle) * (y - 0.5))[..., None]
    bg = base + rng.uniform(0.0, 0.6) * ramp * (other - base)
    kind = rng.choice(3, p=[0.25, 0.55, 0.2])
    if kind >= 1:
        light = _pink(rng, size, rng.uniform(1.0, 2.0))[..., None] * rng.uniform(0.03, 0.12)
        hue = _pink(rng, size, rng.uniform(1.2, 2.0))[..., None] * (other - base) * rng.uniform(0.15, 0.5)
        bg = bg + light + hue
    if kind == 2:
        for _ in range(rng.integers(1, 5)):
            x0, y0 = rng.uniform(-0.2, 1.0, 2)
            w, h = rng.uniform(0.1, 0.8, 2)
            inside = ((x > x0) & (x < x0 + w) & (y > y0) & (y < y0 + h))[..., None]
            bg = np.where(inside, bg * 0.4 + 0.6 * _muted(rng), bg)
    return np.clip(bg, 0, 1)
