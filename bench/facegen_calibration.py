"""facegen's two calibrations against real annotations: the figures behind ``frontal_pitch`` and
``aflw_placement`` (bench/RESULTS.md, "facegen-v3"). ``tests/data/test_facegen_calibration.py``
checks the same facts as pass/fail; this prints the numbers.

Reads the 16 AFLW2000 test pairs of ``../shared/realdata/aflw2000`` (never the dev pairs):

* **pitch**: the mean facegen face's 68 landmarks, posed at each real face's labels, against its
  ``pt3d_68`` after the best scale and shift: the mean normalised error for the face upright
  (facegen-v2), turned up (facegen-v3), turned further by a few degrees either way, and with one
  angle's sign flipped (the label convention);
* **placement**: where the 68 landmarks sit in AFLW2000-3D's 450-pixel pictures, and where the test
  crop's view shows the face, real against simulated (``facegen.frame_aflw``), as quartiles.

    python bench/facegen_calibration.py [--real ../shared/realdata/aflw2000] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

REAL = Path(__file__).resolve().parents[1] / ".." / "shared" / "realdata" / "aflw2000"


def pairs(folder: Path) -> list[tuple[np.ndarray, dict]]:
    """(yaw/pitch/roll, .mat contents) of every pair the aflw2000 benchmark keeps (|angle| <= 99)."""
    import scipy.io

    out = []
    for mat in sorted(folder.glob("*.mat")):
        data = scipy.io.loadmat(str(mat))
        pitch, yaw, roll = np.degrees(data["Pose_Para"][0][:3])
        if max(abs(yaw), abs(pitch), abs(roll)) <= 99:
            out.append((np.array([yaw, pitch, roll]), data))
    return out


def fit_error(real: np.ndarray, ours: np.ndarray) -> float:
    """Mean landmark distance after the best scale and shift (no rotation), over the real face's height."""
    a, b = real - real.mean(0), ours - ours.mean(0)
    scale = (a * b).sum() / (b * b).sum()
    return float(np.linalg.norm(a - scale * b, axis=1).mean() / np.ptp(a[:, 1]))


def pitch_figures(real: list) -> dict:
    from ldlpose.data import facegen
    from ldlpose.data.facegen.recipe import Recipe

    def mean_face(recipe):
        landmarks = np.mean([facegen.make_face("train", i, recipe=recipe).landmarks for i in range(40)], axis=0)
        return type("MeanFace", (), {"landmarks": landmarks})()

    def error(face, change=lambda a: a) -> float:
        return round(float(np.mean([fit_error(d["pt3d_68"][:2].T, facegen.project_landmarks(face, change(a)))
                                    for a, d in real])), 4)

    upright, turned = mean_face(Recipe(frontal_pitch=False)), mean_face(Recipe())
    result = {"upright (facegen-v2)": error(upright), "turned up (facegen-v3)": error(turned)}
    for extra in (-4.0, -2.0, 2.0, 4.0):
        result[f"turned up, then pitch {extra:+g}"] = error(turned, lambda a, e=extra: a + np.array([0.0, e, 0.0]))
    for i, name in enumerate(("yaw", "pitch", "roll")):
        flip = np.ones(3)
        flip[i] = -1.0
        result[f"{name} sign flipped"] = error(turned, lambda a, f=flip: a * f)
    return result


def view_fractions(box, points: np.ndarray) -> list[float]:
    """Face width and centre (x, y) as fractions of the centred square view of crop ``box``."""
    x0, y0, x1, y1 = box
    side = min(x1 - x0, y1 - y0)
    low, high = points.min(0), points.max(0)
    centre = (low + high) / 2
    return [(high - low).max() / side, (centre[0] - x0 - (x1 - x0 - side) / 2) / side,
            (centre[1] - y0 - (y1 - y0 - side) / 2) / side]


def placement_figures(real: list, simulated: int = 600) -> dict:
    from ldlpose.data import crops, facegen, records

    picture, real_view = [], []
    for _, data in real:
        points = data["pt3d_68"][:2].T
        low, high = points.min(0), points.max(0)
        picture.append([(high - low).max() / 450, (low[0] + high[0]) / 900, (low[1] + high[1]) / 900])
        box = tuple(int(v) for v in crops.hopenet_aflw2000().expand(records.landmark_box(data["pt2d"], "all")))
        real_view.append(view_fractions(box, points))
    rng, face, sim_view = np.random.default_rng(0), facegen.make_face("train", 0), []
    for _ in range(simulated):
        points = facegen.project_landmarks(face, facegen.POSES.sample(rng))
        framing, _ = facegen.frame_aflw(rng, points)
        sim_view.append(view_fractions((framing.x0, framing.y0, framing.x0 + framing.side,
                                        framing.y0 + framing.side), points))

    def quartiles(rows) -> dict:
        q = np.percentile(np.asarray(rows), [0, 25, 50, 75, 100], axis=0).round(2)
        return {name: q[:, i].tolist() for i, name in enumerate(("width", "centre x", "centre y"))}

    return {"real picture (of 450 px)": quartiles(picture), "real test-crop view": quartiles(real_view),
            "simulated test-crop view": quartiles(sim_view)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--real", type=Path, default=REAL, help="AFLW2000 pairs (image*.jpg + .mat)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    if not args.real.is_dir():
        print(f"facegen_calibration: skipped, the real AFLW2000 pairs are absent: {args.real.resolve()}")
        return 0
    real = pairs(args.real)
    result = {"pairs": len(real), "landmark fit error": pitch_figures(real), "placement": placement_figures(real)}
    print(json.dumps(result, indent=1))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
