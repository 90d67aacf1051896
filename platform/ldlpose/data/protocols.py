"""Evaluation protocols: what a published number means, so that two scores can be compared.

A protocol fixes the crop recipe that made the stored faces (checked against the manifest's
``crop.name``), how a stored crop becomes the S x S network input (:class:`InputView`), the angle
filter, the split and the rows it evaluates on the complete official data. ``docs/benchmarks.md``
has the table of every protocol and the papers that use it.

Input views, as the reference test scripts build their input from a crop:

* ``centre-square``: the centred square of the shorter side, resized to S (HopeNet's
  ``Scale(224)`` + ``CenterCrop(224)``, also ldlpose's own evaluation);
* ``centre-square-0.875``: the centred square of 224/256 of the shorter side (6DRepNet's
  ``Resize(256)`` + ``CenterCrop(224)``);
* ``whole``: the whole crop resized to S x S, aspect not kept (FSA-Net: its npz images are the
  crops already resized to 64 x 64).

Resizing is PIL bilinear in all of them (torchvision's default for PIL images; FSA-Net's
``cv2.resize`` is also bilinear but samples the pixel grid slightly differently).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["VIEWS", "InputView", "Protocol"]


@dataclass(frozen=True)
class InputView:
    """The part of a stored ``width x height`` crop that is resized to the network input."""

    name: str
    square: bool  # False: the whole crop, aspect not kept
    fraction: float = 1.0  # side of the centred square as a fraction of the shorter side
    description: str = ""

    def box(self, width: int, height: int) -> tuple[float, float, float, float]:
        if not self.square:
            return 0.0, 0.0, float(width), float(height)
        side = min(width, height) * self.fraction
        x0, y0 = (width - side) / 2, (height - side) / 2
        return x0, y0, x0 + side, y0 + side


VIEWS = {view.name: view for view in (
    InputView("centre-square", True, 1.0, "centred square of the shorter side, bilinear resize to S "
                                          "(HopeNet: Scale(224) + CenterCrop(224))"),
    InputView("centre-square-0.875", True, 224 / 256, "centred square of 224/256 of the shorter side, "
                                                      "bilinear resize to S (6DRepNet: Resize(256) + "
                                                      "CenterCrop(224))"),
    InputView("whole", False, 1.0, "the whole crop, bilinear resize to S x S, aspect not kept "
                                   "(FSA-Net: npz crops resized to 64 x 64)"),
)}


@dataclass(frozen=True)
class Protocol:
    """One evaluation protocol. ``crop`` is the recipe name the prepared test data must carry."""

    name: str
    crop: str
    input: InputView
    max_abs_angle_deg: float | None
    split: str
    rows: str
    papers: tuple[str, ...] = ()
    notes: str = ""

    def keeps(self) -> str:
        if self.max_abs_angle_deg is None:
            return "every row"
        return f"rows with |yaw|, |pitch|, |roll| <= {self.max_abs_angle_deg:g}"

    def as_dict(self) -> dict:
        return {"name": self.name, "crop": self.crop, "input": self.input.name,
                "input_description": self.input.description, "filter": self.keeps(),
                "max_abs_angle_deg": self.max_abs_angle_deg, "split": self.split, "rows": self.rows,
                "papers": list(self.papers), "notes": self.notes}
