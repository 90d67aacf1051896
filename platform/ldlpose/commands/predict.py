"""Predict head pose (yaw, pitch, roll in degrees) of every face in whole photos, or of face crops.

Each IMAGE is searched for faces with MTCNN (weights from the pinned `mtcnn` package; nothing is
downloaded); each face is cropped as the model's training faces were (the crop recipe its info or
ONNX description records, else the 300W-LP training crop) and predicted: two faces give two
results, a picture without a face says so. --no-detect treats each IMAGE as one loosely cropped
face, whose centred square is resized to the model's input size. Angles follow ldlpose.geometry:
positive yaw turns the face toward the image's left, positive pitch tilts it up, positive roll
tilts it clockwise. --draw saves each picture with the boxes and axes drawn.

MODEL is a models:/ URI, a checkpoint folder (or checkpoint.pt) or an .onnx file with its
description. Exit status: 0 when every IMAGE was read (with or without faces); 1 when any could
not be read (each is reported and the others go on); 2 for a model that cannot be loaded.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("images", nargs="+", metavar="IMAGE", help="photo files (JPEG, PNG, ...)")
    parser.add_argument("--model", default="models:/headpose-facegen@champion",
                        help="models:/<name>@<alias>, models:/<name>/<version>, models:/<model_id>, a "
                             "checkpoint folder or file, or a .onnx file (default: %(default)s)")
    parser.add_argument("--tracking-uri", help="MLflow tracking URI (default: MLFLOW_TRACKING_URI, "
                                               "else sqlite:///mlflow.db in the working directory)")
    parser.add_argument("--no-detect", action="store_true",
                        help="each IMAGE is a face crop already: no detection, one result per image")
    parser.add_argument("--min-face", type=int, default=20, metavar="PX",
                        help="smallest face side searched for, in pixels (default: %(default)s)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--draw", metavar="DIR", help="also save each image with the boxes and axes drawn into DIR")


def run(args: argparse.Namespace) -> int:
    from ldlpose.deploy.photos import crop_recipe, predict_photos
    from ldlpose.evaluation.harness import load_model

    model = load_model(args.model, args.tracking_uri)
    detector, (recipe, why) = None, crop_recipe(model.info)
    if not args.no_detect:
        from ldlpose.deploy.detect import FaceDetector

        detector = FaceDetector(min_face_px=args.min_face)
    results = predict_photos(args.images, model.predict, model.input_size, detector=detector, recipe=recipe,
                             keep_images=bool(args.draw))
    for result in results:
        if result.error:
            print(f"ldlpose predict: error: {result.error}", file=sys.stderr)
    if args.draw:
        _draw(Path(args.draw), results)
    about = {"model": args.model, "method": model.info.get("method"), "backbone": model.info.get("backbone"),
             "image_size": model.input_size, "detector": None if args.no_detect else "mtcnn",
             "crop": None if args.no_detect else {"recipe": recipe.name, "why": why}}
    print(json.dumps({**about, "predictions": [_record(r) for r in results]}, indent=2) if args.json
          else _text(about, results))
    return 1 if any(r.error for r in results) else 0


def _record(result) -> dict:
    if result.error:
        return {"image": result.path, "error": result.error}
    faces = [{"box": face["box"], "score": face["score"],
              **dict(zip(("yaw_deg", "pitch_deg", "roll_deg"), (round(a, 3) for a in face["angles_deg"])))}
             for face in result.faces]
    return {"image": result.path, "faces": faces}


def _text(about: dict, results) -> str:
    from ldlpose.report.tables import table

    rows, notes = [], []
    for result in results:
        if not result.error and not result.faces:
            notes.append(f"{result.path}: no face found")
        for i, face in enumerate(result.faces):
            box = ", ".join(f"{v:.0f}" for v in face["box"])
            score = "-" if face["score"] is None else f"{face['score']:.3f}"
            rows.append([result.path, str(i + 1), box, score, *(f"{a:.1f}" for a in face["angles_deg"])])
    lines = [table(["image", "face", "box x0, y0, x1, y1", "score", "yaw", "pitch", "roll"], rows)] if rows else []
    if about["crop"]:
        lines.append(f"faces found by {about['detector']}, cropped with {about['crop']['recipe']} "
                     f"({about['crop']['why']}); degrees")
    return "\n".join(lines + notes)


def _draw(directory: Path, results) -> None:
    from PIL import Image

    from ldlpose.report.drawing import draw_faces

    directory.mkdir(parents=True, exist_ok=True)
    used: set[str] = set()
    for result in results:
        if result.error:
            continue
        stem, n = Path(result.path).stem, 1
        name = f"{stem}.pose.png"
        while name in used:  # same file name from different folders
            n += 1
            name = f"{stem}-{n}.pose.png"
        used.add(name)
        drawn = draw_faces(result.image, [(face["box"], face["angles_deg"]) for face in result.faces])
        Image.fromarray(drawn).save(directory / name)
