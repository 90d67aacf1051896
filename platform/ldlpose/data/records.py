"""One prepared row, and the problems that keep a source file from becoming one.

Readers run in worker processes, so this module needs only numpy and Pillow. A reader builds a
row with :func:`make_row` or reports a :class:`Problem`; a :class:`BadSample` raised while reading
one file becomes a problem for that file and never stops the preparation.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

WRAP_LIMIT_DEG = 180.0
"""Rows with an angle beyond this are kept and flagged (AFLW2000 has 9 3DDFA fits that wrap past it);
every benchmark's angle filter leaves them out of its scores."""

JPEG_QUALITY = 95
IMAGE_FORMATS = ("jpeg", "png")

PROBLEM_KINDS = ("image", "annotation", "angle", "landmarks", "crop", "error")
"""image: unreadable or corrupt picture; annotation: missing/unreadable .mat, pose or calibration file;
angle: not a finite number; landmarks: no usable landmark; crop: empty box; error: anything else."""


@dataclass(frozen=True)
class Problem:
    """A source file (``key``) that produced no row, and why."""

    key: str
    kind: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"key": self.key, "kind": self.kind, "message": self.message}


class BadSample(Exception):
    """Raised inside a reader for one unusable file; ``kind`` is one of :data:`PROBLEM_KINDS`."""

    def __init__(self, kind: str, message: str):
        assert kind in PROBLEM_KINDS, kind
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class ImageOptions:
    """How readers store the cropped face: encoding, and an optional cap on the longer side."""

    format: str = "jpeg"
    max_side: int = 0  # 0 keeps the crop's own resolution

    def as_dict(self) -> dict:
        quality = JPEG_QUALITY if self.format == "jpeg" else None
        return {"format": self.format, "jpeg_quality": quality, "max_side": self.max_side, "color": "RGB"}


def check_angles(yaw: float, pitch: float, roll: float) -> tuple[float, float, float]:
    """The angles as floats, or :class:`BadSample` ("angle") when one is not a finite number.

    Large angles are data, not errors: they are stored, and :func:`beyond_wrap` flags them.
    """
    values = (float(yaw), float(pitch), float(roll))
    for name, value in zip(("yaw", "pitch", "roll"), values):
        if not math.isfinite(value):
            raise BadSample("angle", f"{name} = {value} is not a finite number of degrees "
                                     f"(yaw/pitch/roll = {values})")
    return values


def beyond_wrap(angles_deg) -> bool:
    """Does any of yaw, pitch, roll lie beyond +-180 degrees (a fit whose angles wrapped)?"""
    return any(abs(a) > WRAP_LIMIT_DEG for a in angles_deg)


def open_rgb(path_or_bytes) -> Image.Image:
    """Decode a picture fully (so truncated files fail here) as RGB, or raise BadSample("image")."""
    try:
        source = io.BytesIO(path_or_bytes) if isinstance(path_or_bytes, bytes) else path_or_bytes
        with Image.open(source) as img:
            img.load()
            return img.convert("RGB")
    except Exception as err:  # Pillow raises OSError, SyntaxError, ValueError... for bad files
        raise BadSample("image", f"cannot decode image: {err}") from err


def encode(img: Image.Image, options: ImageOptions) -> bytes:
    """RGB bytes in the chosen format, downscaled first if ``options.max_side`` asks for it."""
    size = _encoded_size(img, options)
    if size != img.size:
        img = img.resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0)
    buf = io.BytesIO()
    if options.format == "jpeg":
        img.save(buf, format="JPEG", quality=JPEG_QUALITY)
    else:
        img.save(buf, format="PNG", compress_level=1)  # shards are for reading back quickly
    return buf.getvalue()


def crop(img: Image.Image, box: tuple[float, float, float, float]) -> tuple[Image.Image, tuple[int, int, int, int]]:
    """The part of ``img`` inside ``box`` (clipped to the picture, rounded to pixels) and that box."""
    x0, y0 = max(0, math.floor(box[0])), max(0, math.floor(box[1]))
    x1, y1 = min(img.width, math.ceil(box[2])), min(img.height, math.ceil(box[3]))
    if x1 - x0 < 2 or y1 - y0 < 2:
        raise BadSample("crop", f"crop box {tuple(round(v, 1) for v in box)} leaves no face inside "
                                f"the {img.width}x{img.height} image")
    return img.crop((x0, y0, x1, y1)), (x0, y0, x1, y1)


def crop_exact(img: Image.Image, box: Sequence[float]) -> tuple[Image.Image, tuple[int, int, int, int]]:
    """``img.crop(box)`` as PIL computes it: integer box, parts outside the picture black (HopeNet)."""
    x0, y0, x1, y1 = (int(v) for v in box)
    if x1 - x0 < 2 or y1 - y0 < 2:
        raise BadSample("crop", f"crop box {(x0, y0, x1, y1)} is under 2 pixels wide or high")
    return img.crop((x0, y0, x1, y1)), (x0, y0, x1, y1)


def make_row(
    img: Image.Image,
    angles_deg: tuple[float, float, float],
    *,
    subject: str,
    source: str,
    key: str,
    box: tuple[float, float, float, float],
    options: ImageOptions,
    face_box: tuple[float, float, float, float] | None = None,
) -> dict:
    """One shard row; ``img`` is the stored crop, ``box`` where it lies in the original picture."""
    yaw, pitch, roll = check_angles(*angles_deg)
    face = face_box if face_box is not None else (math.nan,) * 4
    data = encode(img, options)
    width, height = _encoded_size(img, options)
    return {
        "image": data,
        "yaw": yaw,
        "pitch": pitch,
        "roll": roll,
        "subject": str(subject),
        "source": source,
        "key": key,
        "box_x0": float(box[0]), "box_y0": float(box[1]), "box_x1": float(box[2]), "box_y1": float(box[3]),
        "face_x0": float(face[0]), "face_y0": float(face[1]),
        "face_x1": float(face[2]), "face_y1": float(face[3]),
        "width": int(width),
        "height": int(height),
    }


def _encoded_size(img: Image.Image, options: ImageOptions) -> tuple[int, int]:
    if not options.max_side or max(img.size) <= options.max_side:
        return img.size
    scale = options.max_side / max(img.size)
    return max(1, round(img.width * scale)), max(1, round(img.height * scale))


def landmark_points(points_xy: np.ndarray, rule: str) -> np.ndarray:
    """The 2 x M landmarks a crop recipe uses from 2 x N ``pt2d`` (row 0 x, row 1 y).

    ``rule`` "all": every point, as HopeNet's and 6DRepNet's loaders (AFLW2000 stores a missing point
    as x = -1, y = 452, and those loaders keep it). "positive": points with x > 0 and y > 0.
    "fsanet": FSA-Net's ``TYY_create_db_type1.py``: the points with x > 0, or those with y > 0 when
    fewer points have y > 0 than x > 0 (one mask, never both).
    """
    pts = np.asarray(points_xy, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[0] != 2:
        raise BadSample("landmarks", f"pt2d must be 2 x N (rows x, y), got shape {pts.shape}")
    finite = np.isfinite(pts).all(axis=0)
    if rule == "all":
        keep = finite
    elif rule == "positive":
        keep = finite & (pts[0] > 0) & (pts[1] > 0)
    else:
        assert rule == "fsanet", rule
        by_x, by_y = pts[0] > 0, pts[1] > 0
        keep = finite & (by_y if by_x.sum() > by_y.sum() else by_x)
    if keep.sum() < 2:
        raise BadSample("landmarks", f"{int(keep.sum())} of {pts.shape[1]} landmarks are usable under rule "
                                     f"{rule!r}; a box needs 2 (x = {pts[0].tolist()[:6]}...)")
    return pts[:, keep]


def landmark_box(points_xy: np.ndarray, rule: str = "positive") -> tuple[float, float, float, float]:
    """Tight box (x0, y0, x1, y1) of the landmarks that ``rule`` keeps (:func:`landmark_points`)."""
    x, y = landmark_points(points_xy, rule)
    return float(x.min()), float(y.min()), float(x.max()), float(y.max())
