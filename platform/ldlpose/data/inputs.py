"""A stored crop as a network input: the one evaluation input path, for every kind of model.

Two steps, the same for the test scores logged during training and for ``ldlpose evaluate``:

1. :func:`view_crop`: the part of the crop that the benchmark's protocol names
   (:class:`~ldlpose.data.protocols.InputView`), resized by Pillow (bilinear) to S x S, as uint8
   RGB: what the reference test scripts do. :func:`benchmark_batches` yields these in batches, the
   input of any predictor (:class:`ldlpose.inference.Predictor`).
2. :func:`to_unit` then :func:`normalise`: [0, 1], then the ImageNet mean and std, in float32, the
   arithmetic of :class:`ldlpose.inference.predictor.PosePredictor`. The training loop's loaders
   (:class:`~ldlpose.data.augment.Preprocess` without augmentation) apply both steps per item, so
   a checkpoint's network sees the same tensors through either path.

Training and validation inputs may decode a JPEG at reduced scale where that still leaves enough
pixels (``draft``; libjpeg's DCT scaling, much faster for 256-px crops feeding a 64-px network),
which changes the pixels slightly; a benchmark is never read that way, so its logged scores are
``ldlpose evaluate``'s.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ldlpose.data.protocols import InputView

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "benchmark_batches", "normalise", "open_rgb", "to_unit", "view_crop"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
BATCH = 64


def open_rgb(data: bytes, ratio: Callable[[int, int], float] | None = None) -> Image.Image:
    """Encoded bytes as an RGB Pillow image; with ``ratio(width, height)`` (output over input pixels)
    below 1, a JPEG is decoded at 1/2, 1/4 or 1/8 scale where that still leaves enough pixels."""
    with Image.open(io.BytesIO(data)) as img:
        if ratio is not None and img.format == "JPEG":
            r = ratio(*img.size)
            if r < 1:
                img.draft("RGB", (math.ceil(img.width * r), math.ceil(img.height * r)))
        return img.convert("RGB")


def view_crop(data: bytes, view: InputView, size: int, *, draft: bool = False) -> np.ndarray:
    """(size, size, 3) uint8 RGB: the part of an encoded crop that ``view`` names, resized bilinearly.
    ``draft`` (training and validation only) lets a JPEG decode at reduced scale (module docstring)."""
    ratio = (lambda w, h: size / (view.fraction * min(w, h))) if draft else None
    img = open_rgb(data, ratio)
    return np.array(img.resize((size, size), Image.Resampling.BILINEAR, box=view.box(*img.size)))  # writable


def to_unit(images: np.ndarray) -> torch.Tensor:
    """(N, S, S, 3) uint8 RGB -> float32 (N, 3, S, S) in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float().div_(255.0)


_MEAN = torch.tensor(IMAGENET_MEAN, dtype=torch.float32).view(3, 1, 1)
_STD = torch.tensor(IMAGENET_STD, dtype=torch.float32).view(3, 1, 1)


def normalise(unit: torch.Tensor) -> torch.Tensor:
    """Float32 (..., 3, S, S) in [0, 1] -> ImageNet-normalised, as the predictor does inside its graph."""
    return (unit - _MEAN) / _STD


def benchmark_batches(folder: Path, rows: np.ndarray, view: InputView, size: int,
                      batch: int = BATCH) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(images (n, S, S, 3) uint8 RGB, row indices) for ``rows`` of a prepared folder, cropped by ``view``."""
    import pyarrow as pa

    from ldlpose.data.shards import read_table

    column = read_table(folder, columns=["image"]).column("image")
    for start in range(0, len(rows), batch):
        chunk = rows[start:start + batch]
        images = np.empty((len(chunk), size, size, 3), dtype=np.uint8)
        for i, data in enumerate(column.take(pa.array(chunk, type=pa.int64()))):
            images[i] = view_crop(data.as_py(), view, size)
        yield images, chunk
