"""Loose face crops from a tight landmark box, the HopeNet-family way (spec ``methods.md`` 4.5).

HopeNet, 6DRepNet and Hybrid enlarge the landmark box by asymmetric margins proportional to ``k``
and apply the four updates **sequentially**, so the right and bottom margins use the width and
height already enlarged by the left and top ones (pitfall 15). The crop is then clipped to the
picture (HopeNet would pad with black instead; FSA-Net clips, as we do).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class MarginRecipe:
    """Margins ``left, top, right, bottom`` in units of ``k`` times the current width/height."""

    name: str
    k: float
    left: float
    top: float
    right: float
    bottom: float

    def apply(self, box: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
        x0, y0, x1, y1 = box
        x0 -= self.left * self.k * abs(x1 - x0)
        y0 -= self.top * self.k * abs(y1 - y0)
        x1 += self.right * self.k * abs(x1 - x0)
        y1 += self.bottom * self.k * abs(y1 - y0)
        return x0, y0, x1, y1

    def as_dict(self) -> dict:
        return {**asdict(self), "box_source": "pt2d landmarks with x > 0 and y > 0",
                "order": "left, top, right, bottom applied sequentially", "clipped_to_image": True}


def hopenet_300wlp(k: float = 0.4) -> MarginRecipe:
    """300W-LP training crop. HopeNet draws k ~ U[0.2, 0.4] per sample at train time; we store the
    widest (k = 0.4) once, and the pipeline's random scale crop supplies the variation."""
    return MarginRecipe("hopenet-300w-lp-train", k, left=0.6, top=2.0, right=0.6, bottom=0.6)


def hopenet_aflw2000(k: float = 0.2) -> MarginRecipe:
    """AFLW2000 test crop of HopeNet and 6DRepNet (k = 0.2)."""
    return MarginRecipe("hopenet-aflw2000-test", k, left=2.0, top=2.0, right=2.0, bottom=0.6)
