"""Head pose in whole photos: find each face, crop it as the model's training faces were cropped, predict.

**Which crop.** A model trained on prepared data saw faces cut by that data's crop recipe
(:mod:`ldlpose.data.crops`, recorded in the data's manifest and, by :func:`ldlpose.inference.predictor.export_info`,
in the model's info as ``crop``; an exported ONNX model carries it in its description). Those
recipes grow the box of the face's landmarks; in a photo there are no landmarks, so the detector's
box stands in for that landmark box (on the 16 real AFLW2000 pictures MTCNN's box overlaps the
``pt3d_68`` box with IoU 0.57 to 0.75). Recipes that are not defined on a face box (synthhead's
whole rendered image, which it frames like a 300W-LP crop; BIWI's head-centre square) and models
that record none fall back to the 300W-LP training crop (HopeNet's margins, k = 0.4); the result
says which recipe was used and why. The crop then becomes the network input as in evaluation:
the centred square of its shorter side, resized bilinearly to the model's input size.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from ldlpose.data import crops
from ldlpose.errors import DataError

__all__ = ["PhotoResult", "crop_recipe", "face_crop", "face_input", "predict_photos", "whole_image_input"]

Recipe = crops.MarginRecipe | crops.FsanetRecipe | crops.RankposeRecipe
FALLBACK = crops.hopenet_300wlp()


@dataclass
class PhotoResult:
    """One picture: its faces (``box`` x0, y0, x1, y1 pixels; ``score``, None without detection;
    ``angles_deg`` yaw, pitch, roll) or the ``error`` that stopped it."""

    path: str
    faces: list[dict] = field(default_factory=list)
    error: str | None = None
    image: np.ndarray | None = None  # kept for drawing


def crop_recipe(info: dict) -> tuple[Recipe, str]:
    """``(recipe, why)``: the face-box crop recipe of a model's info (see the module docstring)."""
    crop = info.get("crop") or (info.get("preprocessing") or {}).get("crop")
    if not crop:
        return FALLBACK, "the model records no training crop: the 300W-LP training crop"
    name = str(crop.get("name", ""))
    try:
        if name.startswith("hopenet"):
            fields = ("name", "k", "left", "top", "right", "bottom", "points", "exact")
            return crops.MarginRecipe(**{k: crop[k] for k in fields}), f"the training crop {name}"
        if name == "fsanet-type1":
            return crops.FsanetRecipe(ad=float(crop["ad"])), f"the training crop {name}"
        if name.startswith("rankpose"):
            return crops.RankposeRecipe(name=name, scale=float(crop["scale"])), f"the training crop {name}"
    except (KeyError, TypeError, ValueError) as err:
        return FALLBACK, f"the training crop {name} is incomplete ({err}): the 300W-LP training crop"
    return FALLBACK, f"the training crop {name!r} is not defined on a face box: the 300W-LP training crop"


def _centre_square(image, size: int) -> np.ndarray:
    """The centred square of the shorter side resized bilinearly to size x size (the evaluation view)."""
    from PIL import Image

    from ldlpose.data.protocols import VIEWS

    box = VIEWS["centre-square"].box(*image.size)
    # np.array, not np.asarray: writable, or torch.from_numpy warns
    return np.array(image.resize((size, size), Image.Resampling.BILINEAR, box=box))


def face_crop(picture, box: Sequence[float], recipe):
    """``(crop, crop_box)``: the part of a PIL ``picture`` that ``recipe`` cuts around the face in
    ``box``. The box's corners are passed to ``recipe.crop`` as the two landmarks whose box it
    grows, a half pixel inside the picture so that every recipe's landmark rule keeps them."""
    x0, y0, x1, y1 = box
    xs = np.clip([x0, x1], 0.5, picture.width - 0.5)
    ys = np.clip([y0, y1], 0.5, picture.height - 0.5)
    crop, crop_box, _ = recipe.crop(picture, np.array([xs, ys], dtype=np.float64))
    return crop, crop_box


def face_input(picture, box: Sequence[float], recipe, size: int) -> np.ndarray:
    """The (size, size, 3) uint8 network input of the face in ``box`` of a PIL ``picture``."""
    return _centre_square(face_crop(picture, box, recipe)[0], size)


def whole_image_input(picture, size: int) -> np.ndarray:
    """A picture that is a face crop already (``--no-detect``), as
    ``ldlpose.inference.predictor.preprocess`` feeds it."""
    return _centre_square(picture, size)


def _faces_of(picture, pixels: np.ndarray, detector, recipe, size: int) -> tuple[list[dict], list[np.ndarray]]:
    from ldlpose.data.records import BadSample

    if detector is None:
        whole = [0.0, 0.0, float(picture.width), float(picture.height)]
        return [{"box": whole, "score": None}], [whole_image_input(picture, size)]
    faces, inputs = [], []
    for face in sorted(detector.detect(pixels), key=lambda f: (f.box[0], f.box[1])):  # left to right
        try:
            inputs.append(face_input(picture, face.box, recipe, size))
        except BadSample:  # a box too thin to crop; the detector's boxes are >= 12 px, so it is rare
            continue
        faces.append({"box": [round(v, 1) for v in face.box], "score": round(face.score, 4)})
    return faces, inputs


def predict_photos(paths: Sequence[str], predict: Callable[[np.ndarray], np.ndarray], size: int, *,
                   detector=None, recipe=FALLBACK, keep_images: bool = False) -> list[PhotoResult]:
    """Pose of every face of each picture; ``predict`` maps (N, size, size, 3) uint8 RGB to (N, 3)
    degrees. ``detector`` None treats each picture as one face crop. An unreadable picture gets an
    ``error`` and the others go on."""
    from PIL import Image

    from ldlpose.inference.predictor import load_image

    results = []
    for path in paths:
        try:
            pixels = load_image(path)
        except DataError as err:
            results.append(PhotoResult(str(path), error=str(err)))
            continue
        picture = Image.fromarray(pixels)
        faces, inputs = _faces_of(picture, pixels, detector, recipe, size)
        if inputs:
            for face, angles in zip(faces, np.asarray(predict(np.stack(inputs)), dtype=np.float64)):
                face["angles_deg"] = [float(a) for a in angles]
        results.append(PhotoResult(str(path), faces, image=pixels if keep_images else None))
    return results
