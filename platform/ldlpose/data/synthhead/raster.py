"""The renderer: orthographic ray casting of a union of ellipsoids, per pixel, with numpy.

A pixel's ray (along +z) meets an ellipsoid where a quadratic in depth has a root; the nearest hit
wins. Orthographic projection is the weak perspective of 300W-LP's 3DMM fits, and keeps the drawn
axes exact. Shading is ambient + Lambert + a little specular, with a texture fixed to the head's
surface; the background is random shapes, gradients and smooth noise.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ldlpose import geometry
from ldlpose.data.synthhead.head import HEAD_PARTS, Ellipsoid, Identity, Part

__all__ = ["Scene", "head_matrix", "render_scene"]

_F = np.diag([1.0, 1.0, -1.0])  # camera frame (z away from the camera) <-> R_img frame (z out)


@dataclass(frozen=True)
class Scene:
    """Everything one image depends on apart from its size.

    ``center`` (x, y) is where the head centre (eye level, mid-skull) projects and ``scale`` the
    pixels per head unit, both as fractions of the image size. ``light`` points toward the light
    in the camera frame. ``noise_seed`` draws the background and pixel noise; ``None`` gives a
    plain grey background and no noise.
    """

    angles_deg: np.ndarray
    identity: Identity
    center: tuple[float, float] = (0.5, 0.5)
    scale: float = 0.3
    light: tuple[float, float, float] = (0.0, -0.29, -0.96)
    ambient: float = 0.4
    diffuse: float = 0.7
    tint: tuple[float, float, float] = (1.0, 1.0, 1.0)
    extras: tuple[Ellipsoid, ...] = ()  # occluders and accessories
    noise_seed: int | None = None
    background: np.ndarray | None = None  # (size, size, 3) floats in [0, 1]; None: drawn from noise_seed


def head_matrix(angles_deg: np.ndarray) -> np.ndarray:
    """(N, 3, 3) rotations ``M = F R_img F`` taking head-frame points to the camera frame."""
    angles = torch.as_tensor(np.asarray(angles_deg, dtype=np.float64).reshape(-1, 3))
    return _F @ geometry.image_matrix(angles).numpy() @ _F


@dataclass(frozen=True)
class _Shapes:
    """The scene's ellipsoids in camera pixels: centres (K, 3), quadrics Q (K, 3, 3) with
    (p - c)^T Q (p - c) = 1 on the surface, projected half extents (K, 2) and per-part values."""

    centers: np.ndarray
    quadrics: np.ndarray
    extents: np.ndarray
    parts: list[Ellipsoid]


def _part_rotation(rot_deg: tuple[float, float]) -> np.ndarray:
    ax, az = np.deg2rad(rot_deg)
    rx = np.array([[1, 0, 0], [0, np.cos(ax), -np.sin(ax)], [0, np.sin(ax), np.cos(ax)]])
    rz = np.array([[np.cos(az), -np.sin(az), 0], [np.sin(az), np.cos(az), 0], [0, 0, 1]])
    return rz @ rx


def _world_shapes(parts: list[Ellipsoid], rotation: np.ndarray, origin: np.ndarray, scale: float) -> _Shapes:
    centers, quadrics, extents = [], [], []
    for part in parts:
        turn = rotation if part.attached else np.eye(3)
        a = scale * turn @ _part_rotation(part.rot) @ np.diag(part.axes)  # unit sphere -> ellipsoid
        centers.append(origin + scale * turn @ np.asarray(part.center))
        quadrics.append(np.linalg.inv(a @ a.T))
        extents.append(np.linalg.norm(a[:2], axis=1))
    return _Shapes(np.array(centers), np.array(quadrics), np.array(extents), parts)


def _raycast(shapes: _Shapes, coords: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Nearest hit depth (n, n) and ellipsoid index (-1 for none) of the ray through each pixel.

    Rays run along +z. Each ellipsoid is only tested inside its projected bounding box.
    """
    n = coords.size
    depth = np.full((n, n), np.inf, np.float32)
    slot = np.full((n, n), -1, np.int16)
    for k, (c, q, ext) in enumerate(zip(shapes.centers, shapes.quadrics.astype(np.float32), shapes.extents)):
        x0, x1 = np.searchsorted(coords, [c[0] - ext[0], c[0] + ext[0]])
        y0, y1 = np.searchsorted(coords, [c[1] - ext[1], c[1] + ext[1]])
        if x0 >= x1 or y0 >= y1:
            continue
        dx = (coords[x0:x1] - np.float32(c[0]))[None, :]
        dy = (coords[y0:y1] - np.float32(c[1]))[:, None]
        half_b = q[0, 2] * dx + q[1, 2] * dy
        const = q[0, 0] * dx * dx + (2 * q[0, 1]) * dx * dy + q[1, 1] * dy * dy - 1
        disc = half_b * half_b - q[2, 2] * const
        z = np.float32(c[2]) + (-half_b - np.sqrt(np.maximum(disc, 0))) / q[2, 2]
        win = (disc > 0) & (z < depth[y0:y1, x0:x1])
        depth[y0:y1, x0:x1][win] = z[win]
        slot[y0:y1, x0:x1][win] = k
    return depth, slot


def _triangle(v: np.ndarray) -> np.ndarray:
    return np.abs(v - np.floor(v) - 0.5) * 4 - 1


_SKIN_DIRS = np.array([[0.9, 0.1, 0.4], [-0.3, 0.8, 0.5], [0.2, -0.5, 0.85], [0.97, 0.0, -0.2]])
# Hair stripes vary mostly across x and z, so strands run down the head.
_STRAND_DIRS = np.array([[1.0, 0.1, 0.2], [0.3, 0.05, 1.0], [0.8, 0.0, -0.6], [0.6, 0.1, 0.8]])


def _shade(shapes: _Shapes, slot: np.ndarray, depth: np.ndarray, coords: np.ndarray, scene: Scene,
           rotation: np.ndarray, origin: np.ndarray, scale: float) -> np.ndarray:
    """Colour (n, n, 3) of every hit pixel: albedo x texture x (ambient + Lambert) + specular."""
    rgb = np.zeros((*slot.shape, 3), np.float32)
    idx = np.flatnonzero(slot >= 0)
    k = slot.ravel()[idx]
    order = np.argsort(k, kind="stable")  # contiguous runs per part, processed part by part
    idx, k = idx[order], k[order]
    ys, xs = np.divmod(idx, slot.shape[1])
    p = np.stack([coords[xs], coords[ys], depth.ravel()[idx]], axis=-1)
    normal, texture = np.empty_like(p), np.empty(len(k), np.float32)
    bounds = np.searchsorted(k, np.arange(len(shapes.parts) + 1))
    for j, part in enumerate(shapes.parts):
        run = slice(bounds[j], bounds[j + 1])
        normal[run] = (p[run] - shapes.centers[j]) @ shapes.quadrics[j]  # gradient of the quadric
        # Texture on head-frame coordinates, so it sticks to the turning head; hair gets strands.
        local = (p[run] - origin) / scale @ (rotation if part.attached else np.eye(3))
        dirs = _STRAND_DIRS if part.texture >= 0.2 else _SKIN_DIRS
        waves = _triangle(local @ dirs.T * (4 + 40 * part.texture) + 0.3)
        texture[run] = 1 + part.texture / len(dirs) * waves.sum(axis=1)
    normal /= np.linalg.norm(normal, axis=-1, keepdims=True)
    light = np.asarray(scene.light)
    towards_viewer = np.array([0.0, 0.0, -1.0])
    half = (light + towards_viewer) / np.linalg.norm(light + towards_viewer)
    albedo = np.array([s.colour for s in shapes.parts])[k]
    shine = np.array([s.shine for s in shapes.parts])[k]
    lambert = np.clip(normal @ light, 0, None)
    specular = np.clip(normal @ half, 0, None) ** 24 * shine
    colour = albedo * (texture * (scene.ambient + scene.diffuse * lambert))[:, None] * scene.tint
    rgb.reshape(-1, 3)[idx] = colour + (0.6 * scene.diffuse * specular)[:, None]
    return rgb


def _upsampled_noise(rng: np.random.Generator, size: int, cells: int, amp: float) -> np.ndarray:
    grid = rng.normal(0.0, amp, (cells, cells, 3))
    pos = np.linspace(0, cells - 1, size)
    weights = np.stack([np.interp(pos, np.arange(cells), np.eye(cells)[j]) for j in range(cells)], axis=1)
    return np.stack([weights @ grid[..., c] @ weights.T for c in range(3)], axis=-1)


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """A gradient between two random colours, up to 5 discs and boxes, and smooth noise."""
    y, x = (np.mgrid[0:size, 0:size] + 0.5) / size
    angle = rng.uniform(0, 2 * np.pi)
    ramp = np.cos(angle) * x + np.sin(angle) * y
    ramp = (ramp - ramp.min()) / (np.ptp(ramp) + 1e-9)
    c0, c1 = rng.uniform(0, 1, 3), rng.uniform(0, 1, 3)
    bg = c0 + ramp[..., None] * (c1 - c0)
    for _ in range(rng.integers(0, 6)):
        cx, cy = rng.uniform(-0.1, 1.1, 2)
        r, aspect = rng.uniform(0.05, 0.4), rng.uniform(0.3, 3)
        if rng.random() < 0.5:
            mask = np.clip((1 - np.hypot(x - cx, (y - cy) / aspect) / r) * 6, 0, 1)
        else:
            mask = ((np.abs(x - cx) < r) & (np.abs(y - cy) < r * aspect)).astype(float)
        bg += (mask * rng.uniform(0.3, 1.0))[..., None] * (rng.uniform(0, 1, 3) - bg)
    return bg + _upsampled_noise(rng, size, int(rng.integers(3, 9)), rng.uniform(0.0, 0.08))


def _head_box(shapes: _Shapes) -> tuple[float, float, float, float]:
    head = [i for i, s in enumerate(shapes.parts) if s.attached and s.part in HEAD_PARTS]
    low = (shapes.centers[head, :2] - shapes.extents[head]).min(axis=0)
    high = (shapes.centers[head, :2] + shapes.extents[head]).max(axis=0)
    return (float(low[0]), float(low[1]), float(high[0]), float(high[1]))


def _box_mean(values: np.ndarray, ss: int) -> np.ndarray:
    """Average ``ss`` x ``ss`` blocks of (n, n, c) values (the supersampled pixels of one pixel)."""
    rows = values[0::ss]
    for i in range(1, ss):
        rows = rows + values[i::ss]
    total = rows[:, 0::ss]
    for j in range(1, ss):
        total = total + rows[:, j::ss]
    return total / (ss * ss)


def render_scene(scene: Scene, size: int, supersample: int | None = None
                 ) -> tuple[np.ndarray, np.ndarray, tuple[float, float, float, float]]:
    """Render one scene: (size, size, 3) uint8 RGB, (size, size) uint8 :class:`Part` ids, head box.

    ``supersample`` rays per pixel and axis default to 2 up to 128 px (anti-aliasing), else 1.
    """
    ss = supersample or (2 if size <= 128 else 1)
    rotation = head_matrix(scene.angles_deg)[0]
    origin = np.array([scene.center[0] * size, scene.center[1] * size, 0.0])
    scale = scene.scale * size
    shapes = _world_shapes(list(scene.identity.parts) + list(scene.extras), rotation, origin, scale)
    coords = ((np.arange(size * ss) + 0.5) / ss).astype(np.float32)
    depth, slot = _raycast(shapes, coords)
    rgb = _shade(shapes, slot, depth, coords, scene, rotation, origin, scale)
    fg = _box_mean(rgb, ss)
    alpha = _box_mean((slot >= 0).astype(np.float32)[..., None], ss)
    rng = np.random.default_rng(scene.noise_seed)
    plain = scene.noise_seed is None
    behind: np.ndarray
    if scene.background is not None:
        behind = np.asarray(scene.background, np.float32)
    else:
        behind = np.full((size, size, 3), 0.5) if plain else _background(rng, size)
    image = fg + (1 - alpha) * behind
    if not plain:
        image = image + rng.normal(0.0, rng.uniform(0.0, 0.03), image.shape)
    ids = np.array([s.part for s in shapes.parts] + [Part.BACKGROUND], dtype=np.uint8)
    parts = ids[slot[ss // 2::ss, ss // 2::ss]]  # slot -1 picks the trailing BACKGROUND
    return np.clip(image * 255 + 0.5, 0, 255).astype(np.uint8), parts, _head_box(shapes)
