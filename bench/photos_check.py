"""A model on whole real photos, as a user runs it: ``ldlpose predict`` (MTCNN finds the faces) on the
AFLW2000-3D photos of ``--photos`` (image*.jpg with their .mat), scored against the annotated pose.

Each photo's annotated face is the detected face whose box holds the centre of the annotated 2D
landmarks (the largest such face, if several); a photo where none does counts as a miss, reported.
The zero predictor is scored on the same faces.

    python bench/photos_check.py --model models:/headpose-facegen@champion
    python bench/photos_check.py --model CHECKPOINT_DIR --photos ../shared/realdata/aflw2000 --json out.json

Skips (exit 0) with a message naming the folder when the photos are absent.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DEFAULT_PHOTOS = REPO / ".." / "shared" / "realdata" / "aflw2000"
ANGLES = ("yaw", "pitch", "roll")


def annotated(mat: Path) -> tuple[np.ndarray, np.ndarray]:
    """(yaw, pitch, roll) in degrees and the centre of the visible 2D landmarks of one AFLW2000 .mat."""
    from ldlpose.data.sources.landmarks import read_pose_and_landmarks

    angles, pt2d = read_pose_and_landmarks(mat)
    points = np.asarray(pt2d, dtype=np.float64).reshape(2, -1)
    seen = (points > 0).all(axis=0)
    return np.asarray(angles, dtype=np.float64), points[:, seen].mean(axis=1)


def match(faces: list[dict], centre: np.ndarray) -> dict | None:
    """The largest detected face whose box holds ``centre``."""
    holding = [f for f in faces if f["box"][0] <= centre[0] <= f["box"][2] and f["box"][1] <= centre[1] <= f["box"][3]]
    return max(holding, key=lambda f: (f["box"][2] - f["box"][0]) * (f["box"][3] - f["box"][1]), default=None)


def predict(model: str, photos: list[Path], tracking_uri: str | None) -> dict[str, list[dict]]:
    command = ["ldlpose", "predict", "--model", model, "--json", *map(str, photos)]
    if tracking_uri:
        command += ["--tracking-uri", tracking_uri]
    done = subprocess.run(command, capture_output=True, text=True, check=False, cwd=REPO)
    if done.returncode not in (0, 1):
        raise SystemExit(f"ldlpose predict failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return {Path(p["image"]).name: p.get("faces", []) for p in json.loads(done.stdout)["predictions"]}


def score(model: str, folder: Path, tracking_uri: str | None = None) -> dict:
    photos = sorted(folder.glob("image*.jpg"))
    found = predict(model, photos, tracking_uri)
    rows, misses = [], []
    for photo in photos:
        angles, centre = annotated(photo.with_suffix(".mat"))
        face = match(found.get(photo.name, []), centre)
        if face is None:
            misses.append(photo.name)
            continue
        predicted = np.array([face[f"{a}_deg"] for a in ANGLES])
        rows.append({"image": photo.name, "true": angles.tolist(), "pred": predicted.tolist()})
    true = np.array([r["true"] for r in rows]).reshape(-1, 3)
    pred = np.array([r["pred"] for r in rows]).reshape(-1, 3)
    mae, zero = np.abs(pred - true).mean(axis=0), np.abs(true).mean(axis=0)
    return {"model": model, "photos": len(photos), "faces": len(rows), "missed": misses, "rows": rows,
            "mae": {**dict(zip(ANGLES, map(float, mae))), "mean": float(mae.mean())},
            "zero_predictor": {**dict(zip(ANGLES, map(float, zero))), "mean": float(zero.mean())}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="models:/headpose-facegen@champion")
    parser.add_argument("--photos", type=Path, default=DEFAULT_PHOTOS)
    parser.add_argument("--tracking-uri")
    parser.add_argument("--json", type=Path, help="also write the result here")
    args = parser.parse_args(argv)
    if not args.photos.is_dir():
        print(f"photos_check: skipped, the AFLW2000 photos are absent: {args.photos.resolve()}")
        return 0
    result = score(args.model, args.photos, args.tracking_uri)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    m, z = result["mae"], result["zero_predictor"]
    print(f"{result['faces']} of {result['photos']} annotated faces found; MAE yaw {m['yaw']:.2f} "
          f"pitch {m['pitch']:.2f} "
          f"roll {m['roll']:.2f} mean {m['mean']:.2f} (zero predictor {z['mean']:.2f})"
          + (f"; missed: {', '.join(result['missed'])}" if result["missed"] else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
