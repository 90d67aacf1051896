"""Face crop recipes from ``pt2d`` landmarks, each exactly as its source computes it (docs/methods.md#crops).

A recipe turns the landmarks and the picture size into an integer box ``(x0, y0, x1, y1)`` (end
exclusive, PIL's convention) and says what happens outside the picture. The manifest stores the
recipe's :meth:`as_dict`; benchmarks check the recipe name against their protocol.

* :class:`MarginRecipe`, the HopeNet family (HopeNet, 6DRepNet, Hybrid): the landmark box grows by
  asymmetric margins proportional to ``k``, the four updates applied **sequentially**, so the right
  and bottom margins use the width and height already enlarged by the left and top ones (docs/methods.md#pitfalls,
  15). Their AFLW2000 loader keeps **every** ``pt2d`` point, including the x = -1, y = 452 of a
  missing landmark (1,718 of the 2,000 files have one), truncates the box with ``int()`` and crops
  with ``PIL.Image.crop``, which fills the part outside the picture with black.
* :class:`FsanetRecipe`, FSA-Net's ``TYY_create_db_type1.py``: positive points only (its own mask
  rule, :func:`ldlpose.data.records.landmark_points`), box ``int()``-ed, grown by ``ad`` of its
  size on every side, clipped to ``[0, W - 1]`` x ``[0, H - 1]``, cut as ``img[y0:y1, x0:x1]``.
* :class:`RankposeRecipe`, RankPose's ``aflw2000.py`` / ``change_bbox(bbox, 1.4, use_forehead=False)``:
  the box of the x, y rows of ``pt3d_68`` (all 68 points: they are fitted, never missing) becomes a
  square of side 1.4 max(w, h) around it, ``int()``-ed, cut with ``PIL.Image.crop`` (black outside).

Each recipe names the ``.mat`` variable its points come from (``landmarks``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from ldlpose.data import records

Box = tuple[int, int, int, int]


@dataclass(frozen=True)
class MarginRecipe:
    """Margins ``left, top, right, bottom`` in units of ``k`` times the current width/height.

    ``points``: which landmarks make the box ("all" or "positive", see ``landmark_points``).
    ``exact``: True rounds like the source (``int()``, towards zero) and pads outside the picture
    with black; False rounds outwards and clips to the picture (ldlpose's stored training crop).
    """

    name: str
    k: float
    left: float
    top: float
    right: float
    bottom: float
    points: str = "positive"
    exact: bool = False
    landmarks = "pt2d"  # the .mat variable the points come from (not a field: never varies)

    def expand(self, face: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
        x0, y0, x1, y1 = face
        x0 -= self.left * self.k * abs(x1 - x0)
        y0 -= self.top * self.k * abs(y1 - y0)
        x1 += self.right * self.k * abs(x1 - x0)
        y1 += self.bottom * self.k * abs(y1 - y0)
        return x0, y0, x1, y1

    def crop(self, img, pt2d: np.ndarray):
        """``(face image, box, face box)`` for a PIL picture and its 2 x N landmarks."""
        face = records.landmark_box(pt2d, self.points)
        box = self.expand(face)
        if self.exact:
            face_img, stored = records.crop_exact(img, tuple(int(v) for v in box))
        else:
            face_img, stored = records.crop(img, box)
        return face_img, stored, face

    def as_dict(self) -> dict:
        return {**asdict(self), "box_source": _POINTS[self.points],
                "order": "left, top, right, bottom applied sequentially",
                "rounding": "int() towards zero" if self.exact else "outwards to whole pixels",
                "outside_image": "black (PIL Image.crop)" if self.exact else "clipped to the image"}


@dataclass(frozen=True)
class FsanetRecipe:
    """FSA-Net's type-1 crop: margin ``ad`` of the box's width/height on every side, clipped."""

    name: str = "fsanet-type1"
    ad: float = 0.6
    landmarks = "pt2d"

    def box(self, pt2d: np.ndarray, width: int, height: int) -> Box:
        x, y = records.landmark_points(pt2d, "fsanet")
        x0, x1, y0, y1 = int(x.min()), int(x.max()), int(y.min()), int(y.max())
        w, h = x1 - x0, y1 - y0
        return (max(int(x0 - self.ad * w), 0), max(int(y0 - self.ad * h), 0),
                min(int(x1 + self.ad * w), width - 1), min(int(y1 + self.ad * h), height - 1))

    def crop(self, img, pt2d: np.ndarray):
        face = records.landmark_box(pt2d, "fsanet")
        face_img, stored = records.crop_exact(img, self.box(pt2d, img.width, img.height))
        return face_img, stored, face

    def as_dict(self) -> dict:
        return {**asdict(self), "box_source": _POINTS["fsanet"],
                "box": "x0 = max(int(x_min - ad w), 0), x1 = min(int(x_max + ad w), W - 1) (y alike) "
                       "with x_min ... int()-ed first and w = x_max - x_min; cut img[y0:y1, x0:x1]",
                "outside_image": "never: clipped"}


@dataclass(frozen=True)
class RankposeRecipe:
    """RankPose's test crop: a square of ``scale`` times the longer side of the landmark box."""

    name: str = "rankpose-aflw2000-test"
    scale: float = 1.4
    landmarks = "pt3d_68"

    def box(self, points: np.ndarray) -> Box:
        x, y = records.landmark_points(points[:2], "all")
        x0, y0, x1, y1 = x.min(), y.min(), x.max(), y.max()
        w, h = x1 - x0, y1 - y0
        side = max(h, w) * self.scale
        x0 -= (side - w) // 2  # floor division of floats, as the released change_bbox
        y0 -= (side - h) // 2
        return int(x0), int(y0), int(x0 + side), int(y0 + side)

    def crop(self, img, points: np.ndarray):
        face = records.landmark_box(points[:2], "all")
        face_img, stored = records.crop_exact(img, self.box(points))
        return face_img, stored, face

    def as_dict(self) -> dict:
        return {**asdict(self), "box_source": "x, y rows of pt3d_68 (68 fitted points), as RankPose's loader",
                "box": "side = scale * max(w, h); x0 -= (side - w) // 2, y0 -= (side - h) // 2; "
                       "x1 = x0 + side, y1 = y0 + side; int() each",
                "outside_image": "black (PIL Image.crop)"}


_POINTS = {
    "all": "every pt2d point, missing ones (x = -1, y = 452) included, as HopeNet's and 6DRepNet's loaders",
    "positive": "pt2d landmarks with x > 0 and y > 0",
    "fsanet": "pt2d points with x > 0 (or with y > 0 if fewer), as FSA-Net's TYY_create_db_type1.py",
}


def hopenet_300wlp(k: float = 0.4) -> MarginRecipe:
    """300W-LP training crop. HopeNet draws k ~ U[0.2, 0.4] per sample at train time; we store the
    widest (k = 0.4) once, and the pipeline's random scale crop supplies the variation."""
    return MarginRecipe("hopenet-300w-lp-train", k, left=0.6, top=2.0, right=0.6, bottom=0.6)


def hopenet_aflw2000(k: float = 0.2) -> MarginRecipe:
    """AFLW2000 test crop of HopeNet and 6DRepNet (k = 0.2), exactly as their loaders compute it."""
    return MarginRecipe("hopenet-aflw2000-test", k, left=2.0, top=2.0, right=2.0, bottom=0.6,
                        points="all", exact=True)


def fsanet_type1(ad: float = 0.6) -> FsanetRecipe:
    """FSA-Net's 300W-LP / AFLW2000 crop (``--ad 0.6``, the value of its ``run_created_db_type1.sh``)."""
    return FsanetRecipe(ad=ad)


def rankpose_aflw2000(scale: float = 1.4) -> RankposeRecipe:
    """RankPose's AFLW2000 test crop (``change_bbox(bbox, 1.4, use_forehead=False)``)."""
    return RankposeRecipe(scale=scale)


RECIPES = {"hopenet": hopenet_aflw2000, "fsanet": fsanet_type1, "rankpose": rankpose_aflw2000}
"""AFLW2000 test recipes by the ``--crop`` name of ``ldlpose prepare aflw2000``."""
