"""Pictures of poses: axes drawn on images, and captioned image grids (PIL only).

Axes follow :mod:`ldlpose.geometry`: the columns of ``R_img`` are the head's left (red), down
(green) and front (blue) unit vectors; their first two rows are image offsets with x right and
y down, so a positive yaw draws the blue front axis toward the image's left and a positive pitch
draws it upward.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

__all__ = ["AXIS_COLOURS", "AXIS_NAMES", "BOX_COLOUR", "draw_faces", "draw_legend", "draw_pose", "image_grid",
           "pose_caption"]

AXIS_COLOURS = ((255, 0, 0), (0, 200, 0), (0, 80, 255))  # left, down, front
AXIS_NAMES = ("left", "down", "front")  # of the head, in the order of AXIS_COLOURS
BOX_COLOUR = (255, 220, 0)  # a detected face's box: yellow, unlike any axis
LABEL_BACKGROUND = (20, 20, 20)  # dark behind white text reads on any photo, and is unlike any axis or box


def draw_pose(image: np.ndarray, angles_deg: Sequence[float], center: Sequence[float] | None = None,
              size: float | None = None, colours: Sequence[tuple[int, int, int]] = AXIS_COLOURS,
              width: int | None = None) -> np.ndarray:
    """A copy of ``image`` (H, W, 3) uint8 with the pose's three axes drawn from ``center``.

    ``center`` (x, y) defaults to the image centre, ``size`` (axis length in pixels) to 40 % of
    the smaller side. The front axis is drawn last so it stays visible.
    """
    import torch

    from ldlpose.geometry import axis_endpoints_2d

    height, width_px = image.shape[:2]
    center = (width_px / 2, height / 2) if center is None else center
    size = 0.4 * min(height, width_px) if size is None else size
    angles = torch.as_tensor(np.asarray(angles_deg, dtype=np.float64).reshape(1, 3))
    ends = axis_endpoints_2d(angles, torch.tensor([center], dtype=torch.float64), size)[0].numpy()
    canvas = Image.fromarray(np.ascontiguousarray(image, dtype=np.uint8))
    draw = ImageDraw.Draw(canvas)
    line = width or max(1, round(min(height, width_px) / 64))
    for (x, y), colour in zip(ends, colours):
        start = (float(center[0]), float(center[1]))
        draw.line([start, (float(x), float(y))], fill=tuple(colour), width=line)
    return np.asarray(canvas)


def draw_faces(image: np.ndarray, faces: Sequence[tuple[Sequence[float], Sequence[float]]], *,
               captions: bool = True, legend: bool = True) -> np.ndarray:
    """A copy of a whole photo with each face's ``(box, angles_deg)`` drawn: the box (x0, y0, x1, y1
    pixels), the pose's axes from its centre, half as long as the box's longer side, and (``captions``)
    its yaw, pitch and roll in degrees beside the box; ``legend`` adds which colour is which axis."""
    canvas = np.ascontiguousarray(image, dtype=np.uint8)
    for box, angles in faces:
        x0, y0, x1, y1 = (float(v) for v in box)
        side = max(x1 - x0, y1 - y0)
        line = max(1, round(side / 64))
        canvas = draw_pose(canvas, angles, center=((x0 + x1) / 2, (y0 + y1) / 2), size=side / 2, width=line)
        picture = Image.fromarray(canvas)
        ImageDraw.Draw(picture).rectangle([x0, y0, x1 - 1, y1 - 1], outline=BOX_COLOUR, width=line)
        canvas = np.asarray(picture)
    picture = Image.fromarray(canvas.copy())
    if captions:
        for number, (box, angles) in enumerate(faces, 1):
            lines = ([f"face {number}"] if len(faces) > 1 else []) + _angle_lines(angles)
            _label_beside(picture, [float(v) for v in box], lines)
    if legend:
        draw_legend(picture, avoid=[[float(v) for v in box] for box, _ in faces])
    return np.asarray(picture)


def _angle_lines(angles_deg: Sequence[float]) -> list[str]:
    return [f"{name} {float(a):+.1f}\N{DEGREE SIGN}" for name, a in zip(("yaw", "pitch", "roll"), angles_deg)]


def _font(image_size: tuple[int, int], fraction: float) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    """Pillow's built-in font at ``fraction`` of the picture's smaller side (at least 11 px, legible)."""
    return ImageFont.load_default(size=max(11, round(min(image_size) * fraction)))


def _label_beside(picture: Image.Image, box: list[float], lines: list[str]) -> None:
    """White ``lines`` on a dark panel right of ``box``, else left of it, kept inside the picture."""
    draw = ImageDraw.Draw(picture)
    font = _font(picture.size, 0.035)
    text = "\n".join(lines)
    left, top, right, bottom = draw.multiline_textbbox((0, 0), text, font=font)
    pad = max(2, round((bottom - top) / (4 * len(lines))))
    w, h = right - left + 2 * pad, bottom - top + 2 * pad
    x0, y0, x1, _ = box
    x = x1 + pad if x1 + pad + w <= picture.width or x0 - pad - w < 0 else x0 - pad - w
    x = min(max(0.0, x), picture.width - w)
    y = min(max(0.0, y0), picture.height - h)
    draw.rectangle([x, y, x + w - 1, y + h - 1], fill=LABEL_BACKGROUND)
    draw.multiline_text((x + pad - left, y + pad - top), text, fill=(255, 255, 255), font=font)


def draw_legend(picture: Image.Image, avoid: Sequence[Sequence[float]] = ()) -> None:
    """Which colour is which head axis, and the angles' unit, in the first corner (lower left, lower
    right, upper left, upper right) that covers none of the boxes in ``avoid``, else the lower left."""
    draw = ImageDraw.Draw(picture)
    font = _font(picture.size, 0.028)
    rows = [f"{name} axis" for name in AXIS_NAMES] + ["yaw/pitch/roll: degrees"]
    boxes = [draw.textbbox((0, 0), row, font=font) for row in rows]
    row_h = round(max(b[3] - b[1] for b in boxes)) + 4  # bboxes are floats for FreeType fonts
    swatch = 2 * row_h
    pad = max(3, row_h // 3)
    w = swatch + pad + round(max(b[2] - b[0] for b in boxes)) + 2 * pad
    h = len(rows) * row_h + 2 * pad
    x, y = _free_corner(picture.size, (w, h), pad, avoid)
    draw.rectangle([x, y, x + w - 1, y + h - 1], fill=LABEL_BACKGROUND)
    for i, (row, bbox) in enumerate(zip(rows, boxes)):
        top = y + pad + i * row_h
        if i < len(AXIS_COLOURS):
            mid = top + row_h // 2
            draw.line([(x + pad, mid), (x + pad + swatch - pad, mid)], fill=AXIS_COLOURS[i], width=max(2, row_h // 5))
        text_x = x + pad + (swatch if i < len(AXIS_COLOURS) else 0)
        draw.text((text_x - bbox[0], top + 2 - bbox[1]), row, fill=(255, 255, 255), font=font)


def pose_caption(angles_deg: Sequence[float]) -> str:
    """A short caption such as ``y=30 p=0 r=-5`` (yaw, pitch, roll in whole degrees)."""
    yaw, pitch, roll = (round(float(a)) for a in angles_deg)
    return f"y={yaw} p={pitch} r={roll}"


def image_grid(images: Sequence[np.ndarray], ncols: int, captions: Sequence[str] | None = None,
               pad: int = 2, background: int = 255) -> np.ndarray:
    """Tile equally sized (H, W, 3) uint8 images row by row, with an optional caption under each."""
    if not images:
        raise ValueError("image_grid needs at least one image")
    if captions is not None and len(captions) != len(images):
        raise ValueError(f"got {len(captions)} captions for {len(images)} images; pass one per image")
    height, width = images[0].shape[:2]
    font = ImageFont.load_default()
    text_h = 0 if captions is None else _text_height(font) + 2
    ncols = max(1, min(ncols, len(images)))
    nrows = -(-len(images) // ncols)
    cell_w, cell_h = width + pad, height + text_h + pad
    grid = Image.new("RGB", (ncols * cell_w + pad, nrows * cell_h + pad), (background,) * 3)
    draw = ImageDraw.Draw(grid)
    for i, image in enumerate(images):
        x, y = pad + (i % ncols) * cell_w, pad + (i // ncols) * cell_h
        grid.paste(Image.fromarray(np.ascontiguousarray(image, dtype=np.uint8)), (x, y))
        if captions is not None:
            draw.text((x + 1, y + height + 1), captions[i], fill=(0, 0, 0), font=font)
    return np.asarray(grid)


def _text_height(font: ImageFont.ImageFont | ImageFont.FreeTypeFont) -> int:
    _left, top, _right, bottom = font.getbbox("Ayp=0")
    return int(bottom - min(top, 0))


def _free_corner(size: tuple[int, int], panel: tuple[int, int], pad: int,
                 avoid: Sequence[Sequence[float]]) -> tuple[int, int]:
    (width, height), (w, h) = size, panel
    corners = [(pad, height - h - pad), (width - w - pad, height - h - pad), (pad, pad), (width - w - pad, pad)]
    for x, y in corners:
        if not any(x < b[2] and b[0] < x + w and y < b[3] and b[1] < y + h for b in avoid):
            return x, y
    return corners[0]
