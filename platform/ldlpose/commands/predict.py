"""Predict head pose (yaw, pitch, roll in degrees) of face-crop images with a logged model.

Each IMAGE should be a loosely cropped face, as in training; its centred square is resized to the
model's input size. Angles follow ldlpose.geometry: positive yaw turns the face toward the image's left, positive
pitch tilts it up, positive roll tilts it clockwise. An unreadable image is reported and skipped;
the exit status is then 1.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("images", nargs="+", metavar="IMAGE", help="face-crop image files (JPEG, PNG, ...)")
    parser.add_argument("--model", default="models:/headpose-synth@champion",
                        help="MLflow model URI: models:/<name>@<alias>, models:/<name>/<version> or "
                             "models:/<model_id> (default: %(default)s)")
    parser.add_argument("--tracking-uri", help="MLflow tracking URI (default: MLFLOW_TRACKING_URI, "
                                               "else sqlite:///mlflow.db in the working directory)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--draw", metavar="DIR", help="also save each image with the predicted axes drawn into DIR")


def run(args: argparse.Namespace) -> int:
    from ldlpose.errors import DataError
    from ldlpose.export import load_image
    from ldlpose.tracking import load_predictor

    predictor, info = load_predictor(args.model, args.tracking_uri)
    images, paths, errors = [], [], {}
    for path in args.images:
        try:
            images.append(load_image(path))
            paths.append(path)
        except DataError as err:
            errors[path] = str(err)
            print(f"ldlpose predict: error: {err}", file=sys.stderr)
    angles = predictor.predict_images(images) if images else []
    predictions = dict(zip(paths, angles))
    if args.draw and images:
        _draw(Path(args.draw), paths, images, angles)
    _print(args, info, predictions, errors)
    return 1 if errors else 0


def _print(args, info: dict, predictions: dict, errors: dict) -> None:
    from ldlpose.report import table

    if args.json:
        results = []
        for path in args.images:
            if path in predictions:
                yaw, pitch, roll = (round(float(a), 3) for a in predictions[path])
                results.append({"image": path, "yaw_deg": yaw, "pitch_deg": pitch, "roll_deg": roll})
            else:
                results.append({"image": path, "error": errors[path]})
        print(json.dumps({"model": args.model, "method": info.get("method"), "backbone": info.get("backbone"),
                          "image_size": info.get("image_size"), "predictions": results}, indent=2))
    elif predictions:
        rows = [[path, *(f"{float(a):.1f}" for a in angles)] for path, angles in predictions.items()]
        print(table(["image", "yaw", "pitch", "roll"], rows))


def _draw(directory: Path, paths: list[str], images: list, angles) -> None:
    from PIL import Image

    from ldlpose.viz import draw_pose

    directory.mkdir(parents=True, exist_ok=True)
    used: set[str] = set()
    for path, image, pose in zip(paths, images, angles):
        stem, n = Path(path).stem, 1
        name = f"{stem}.pose.png"
        while name in used:  # same file name from different folders
            n += 1
            name = f"{stem}-{n}.pose.png"
        used.add(name)
        Image.fromarray(draw_pose(image, pose)).save(directory / name)
