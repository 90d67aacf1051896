"""Real AFLW2000 pictures from ``../shared/realdata`` (read there, never copied) and their landmark
boxes, for the detection and photo-prediction tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.io

REALDATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "realdata"
AFLW = REALDATA / "aflw2000"
SKIP_REASON = f"real dataset samples not found at {REALDATA} (../shared/realdata next to the repository)"


def pt3d_68(jpg: Path) -> np.ndarray:
    """The 3 x 68 fitted landmarks of a picture's ``.mat`` (rows x, y, z; none missing)."""
    return np.asarray(scipy.io.loadmat(str(jpg.with_suffix(".mat")))["pt3d_68"], dtype=np.float64)


def landmark_box(jpg: Path) -> tuple[float, float, float, float]:
    """The box of the 68 ``pt3d_68`` points' x, y (``pt2d`` of AFLW2000 has 21 points, some missing)."""
    points = pt3d_68(jpg)
    return float(points[0].min()), float(points[1].min()), float(points[0].max()), float(points[1].max())


def iou(a, b) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)
