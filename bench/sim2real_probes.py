"""Why a model trained on generated faces misses on real ones: three probes of one checkpoint.

``bench/sim2real.py`` says how far off a model is on the real AFLW2000 dev pairs; these say where:

* **framing**: the same real faces cut two ways: AFLW2000's test crop (the benchmark's, faces at
  about 45 % of the view, black borders) and 300W-LP's training crop (``crops.hopenet_300wlp`` at
  k = 0.3 around the 68 ``pt3d_68`` landmarks, the face filling the view). A large difference says the
  model reads small faces worse, not that it misreads faces;
* **in-plane rotation**: the near-frontal real faces (|yaw| < 25) turned 20 degrees in the image:
  a model that sees a face's roll answers with a roll about 20 degrees apart. The same on generated
  validation faces gives the response it learned;
* **generated faces by framing**: the model's error on generated validation faces framed as
  AFLW2000's test crop frames them against those framed as 300W-LP's training crops.

Real faces are only measured here, never trained on::

    python bench/sim2real_probes.py CHECKPOINT [--dev ../shared/realdata/aflw2000-dev] [--json OUT]

Prints one line per probe; skips (exit 0), naming the folder, without the dev pairs.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DEV = REPO / ".." / "shared" / "realdata" / "aflw2000-dev"
LIMIT_DEG = 99.0  # the aflw2000 benchmark's filter


def real_faces(dev: Path) -> list[tuple[Path, np.ndarray, np.ndarray, np.ndarray]]:
    """(picture, yaw/pitch/roll, pt2d, pt3d_68 x/y) of every dev pair the benchmark keeps."""
    import scipy.io

    faces = []
    for mat in sorted(dev.glob("*.mat")):
        data = scipy.io.loadmat(str(mat))
        pitch, yaw, roll = np.degrees(data["Pose_Para"][0][:3])
        angles = np.array([yaw, pitch, roll])
        if np.abs(angles).max() <= LIMIT_DEG:
            faces.append((mat.with_suffix(".jpg"), angles, data["pt2d"], data["pt3d_68"][:2].T))
    return faces


def _square(img, box: tuple[float, float, float, float], size: int) -> np.ndarray:
    """The centred square of ``box`` (black outside the picture), resized to ``size``."""
    x0, y0, x1, y1 = box
    side = min(x1 - x0, y1 - y0)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    square = (round(cx - side / 2), round(cy - side / 2), round(cx + side / 2), round(cy + side / 2))
    return np.asarray(img.crop(square).resize((size, size), _bilinear()))


def _bilinear():
    from PIL import Image

    return Image.Resampling.BILINEAR


def crops_of(faces, size: int) -> dict[str, np.ndarray]:
    """Each face as AFLW2000's test crop and as 300W-LP's training crop, both as the input view takes them."""
    from PIL import Image

    from ldlpose.data import crops, records

    test, tight = [], []
    for jpg, _, pt2d, points in faces:
        with Image.open(jpg) as picture:
            img = picture.convert("RGB")
        box = tuple(int(v) for v in crops.hopenet_aflw2000().expand(records.landmark_box(pt2d, "all")))
        test.append(_square(img, box, size))
        face_box = (*points.min(0), *points.max(0))
        tight.append(_square(img, crops.hopenet_300wlp(0.3).expand(face_box), size))
    return {"aflw2000 test crop": np.stack(test), "300w-lp training crop": np.stack(tight)}


def _mae(pred: np.ndarray, true: np.ndarray) -> dict:
    per_angle = np.abs(pred - true).mean(axis=0)
    return {"yaw": round(float(per_angle[0]), 2), "pitch": round(float(per_angle[1]), 2),
            "roll": round(float(per_angle[2]), 2), "mae": round(float(per_angle.mean()), 2), "rows": len(true)}


def rotation_response(predict, images: np.ndarray, degrees: float = 20.0) -> dict:
    """Mean change of each predicted angle when the images turn by +-``degrees`` in the image plane."""
    from PIL import Image

    base = np.asarray(predict(images))
    out = {}
    for sign in (-1, 1):
        turned = np.stack([np.asarray(Image.fromarray(im).rotate(sign * degrees, resample=_bilinear()))
                           for im in images])
        change = (np.asarray(predict(turned)) - base).mean(axis=0)
        out[f"{sign * degrees:+g}"] = {k: round(float(v), 2) for k, v in zip(("yaw", "pitch", "roll"), change)}
    return out


def generated_faces(size: int, count: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Generated validation faces: images, labels, and whether AFLW2000's test framing cut them
    (their 68 landmarks span under 0.56 of the view; 300W-LP's crop makes them 0.6 or more)."""
    from ldlpose.data import facegen

    samples = list(facegen.generate("val", count, size=size))
    small = np.array([np.ptp(s.landmarks[:, 0]) / size < 0.56 for s in samples])
    return np.stack([s.image for s in samples]), np.stack([s.angles_deg for s in samples]), small


def probe(checkpoint: str, dev: Path, generated: int) -> dict:
    from ldlpose.evaluation.harness import load_model

    model = load_model(checkpoint)
    faces = real_faces(dev)
    true = np.stack([f[1] for f in faces])
    views = crops_of(faces, model.input_size)
    result: dict = {"checkpoint": checkpoint, "framing": {}}
    for name, images in views.items():
        result["framing"][name] = _mae(np.asarray(model.predict(images)), true)
    frontal = np.abs(true[:, 0]) < 25
    result["rotation_real"] = rotation_response(model.predict, views["300w-lp training crop"][frontal])
    images, labels, small = generated_faces(model.input_size, generated)
    pred = np.asarray(model.predict(images))
    result["generated"] = {"aflw2000 framing": _mae(pred[small], labels[small]),
                           "300w-lp framing": _mae(pred[~small], labels[~small])}
    near = np.abs(labels[:, 0]) < 25
    result["rotation_generated"] = rotation_response(model.predict, images[near])
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint", help="a checkpoint folder, .pt2 or registry URI (as ldlpose evaluate takes)")
    parser.add_argument("--dev", type=Path, default=DEFAULT_DEV, help="real AFLW2000 pairs (image*.jpg + .mat)")
    parser.add_argument("--generated", type=int, default=600, help="generated validation faces to probe")
    parser.add_argument("--json", type=Path, help="write the result here")
    args = parser.parse_args(argv)
    if not args.dev.is_dir():
        print(f"sim2real_probes: skipped, the real AFLW2000 dev pairs are absent: {args.dev.resolve()}")
        return 0
    result = probe(args.checkpoint, args.dev, args.generated)
    for name, scores in {**result["framing"], **{f"generated, {k}": v for k, v in result["generated"].items()}}.items():
        print(f"{name:32s} MAE {scores['mae']:6.2f}  (yaw {scores['yaw']}, pitch {scores['pitch']}, "
              f"roll {scores['roll']}; {scores['rows']} faces)")
    for name in ("rotation_real", "rotation_generated"):
        print(f"{name}: mean change of the predicted angles when turned in the image: {result[name]}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
