"""The 68 landmarks of 300W-LP's scheme (iBUG 68) on a facegen head, in the head frame.

Index ranges as in 300W-LP's ``pt2d`` / ``pt3d_68``: 0-16 jaw contour (from the subject's right, the
image's left when the face looks at the camera), 17-21 and 22-26 brows, 27-30 nose bridge down to
the tip, 31-35 the nostrils' base, 36-41 and 42-47 eyes, 48-59 outer lips, 60-67 inner lips. The
points lie on the head's surface; like 300W-LP's fitted landmarks they are projected whether seen or
hidden, so the landmark box of a turned face still spans the far side's contour. Only the crop uses
them (its box), and the tests check them against ``ldlpose.geometry``.
"""

from __future__ import annotations

import numpy as np

__all__ = ["NOSE_TIP", "landmarks_68", "surface_depth"]

NOSE_TIP = 30


def surface_depth(parts, x: float, y: float) -> float:
    """Depth of the nearest camera-facing surface of the (unrotated) ellipsoid ``parts`` at (x, y)."""
    best = 0.0
    for p in parts:
        (cx, cy, cz), (ax, ay, az) = p.center, p.axes
        r = 1.0 - ((x - cx) / ax) ** 2 - ((y - cy) / ay) ** 2
        if r > 0:
            best = min(best, cz - az * np.sqrt(r))
    return best


def _on_surface(base, xy: np.ndarray, lift: float = 0.0) -> np.ndarray:
    z = [surface_depth(base, float(x), float(y)) - lift for x, y in xy]
    return np.column_stack([xy, z])


def _jaw(s, base) -> np.ndarray:
    phi = np.linspace(-np.pi / 2, np.pi / 2, 17)
    top = 0.02
    x = np.sin(phi) * (s.half_width - 0.05) * (1 - 0.25 * np.cos(phi) ** 2)
    y = top + (s.chin_y - top) * np.cos(phi)
    points = _on_surface(base, np.column_stack([x, y * 0.985]))
    # The upper ends run back to the ear, as 300W-LP's contour follows the jaw's silhouette there.
    points[:, 2] += 0.35 * np.sin(phi) ** 4
    return points


def _brows(s) -> np.ndarray:
    t = np.linspace(-1.0, 1.0, 5)
    right = np.column_stack([-s.eye_x + t * 0.15 - 0.03, s.brow_y + 0.02 * t ** 2])
    left = -right[::-1] * np.array([1.0, -1.0])  # mirrored in x, same heights, inner end first
    return np.vstack([right, left])


def _eye(s, side: float) -> np.ndarray:
    r, x = s.eye_r, side * s.eye_x
    # Outer-left corner (in the image), upper lid, right corner, lower lid: both eyes in image order.
    ring = np.array([[-1.1, 0.05], [-0.45, -0.55], [0.45, -0.55], [1.1, 0.0], [0.45, 0.5], [-0.45, 0.5]]) * r
    return ring + np.array([x, 0.0])


def _lips(s, opening: float) -> np.ndarray:
    w, y = s.mouth_w, s.mouth_y
    a = np.linspace(np.pi, 0.0, 7)  # outer upper lip, right corner to left corner
    upper = np.column_stack([w * np.cos(a), y - 0.07 * np.sin(a)])
    b = np.linspace(0.0, -np.pi, 7)[1:-1]  # outer lower lip, left to right
    lower = np.column_stack([w * 0.95 * np.cos(b), y + (0.085 + opening) * -np.sin(b)])
    c = np.linspace(np.pi, 0.0, 5)
    inner_up = np.column_stack([0.8 * w * np.cos(c), y - 0.005 * np.sin(c)])
    d = np.linspace(0.0, -np.pi, 5)[1:-1]
    inner_low = np.column_stack([0.8 * w * np.cos(d), y + 0.01 + opening * -np.sin(d)])
    return np.vstack([upper, lower, inner_up, inner_low])


def landmarks_68(s, base, opening: float) -> np.ndarray:
    """(68, 3) head-frame points of a face of shape ``s`` whose skin surface is ``base``."""
    tip_y = s.nose_len - 0.02
    tip_z = surface_depth(base, 0.0, tip_y) - s.nose_out
    ys = np.linspace(-0.02, tip_y, 4)
    bridge = np.column_stack([np.zeros(4), ys, np.linspace(surface_depth(base, 0.0, ys[0]) - 0.05, tip_z, 4)])
    nostrils = np.column_stack([np.linspace(-0.1, 0.1, 5), np.full(5, tip_y + 0.07), np.full(5, tip_z + 0.12)])
    points = np.vstack([
        _jaw(s, base),
        _on_surface(base, _brows(s), 0.03),
        bridge,
        nostrils,
        _on_surface(base, np.vstack([_eye(s, -1.0), _eye(s, 1.0)]), 0.04),
        _on_surface(base, _lips(s, opening), 0.05),
    ])
    assert points.shape == (68, 3), points.shape
    return points
