"""300W-LP and AFLW2000 from their official folders: ``<name>.jpg`` next to ``<name>.mat``.

Each ``.mat`` holds ``Pose_Para`` (1 x 7: pitch, yaw, roll in **radians**, then translation and
scale) and ``pt2d`` (2 x N landmarks, row 0 x, row 1 y; a missing AFLW2000 point is x = -1,
y = 452). Angles are stored as yaw, pitch, roll in degrees (docs/methods.md#300w-lp, #aflw2000,
#pitfalls 1). The crop is
one of :mod:`ldlpose.data.crops`: 300W-LP gets the HopeNet training crop; AFLW2000 the HopeNet /
6DRepNet test crop (``crop="hopenet"``, every point kept as their loaders do), FSA-Net's
(``crop="fsanet"``) or RankPose's (``crop="rankpose"``, from ``pt3d_68``). Every row is stored, 3DDFA
fits whose angles wrap past 180 degrees included
(9 in AFLW2000; the manifest lists them, the benchmarks' filters leave them out).

Subjects. 300W-LP names its files ``<source>_<id>_<k>.jpg`` (k = synthesised view), so the subject
is the stem without ``_<k>``; the ``*_Flip`` folders hold mirror images under the same names, and a
mirrored face is the same person, so they share the subject. That keeps mirrored twins out of a
subject-disjoint validation split and makes RankPose pairs from any two views of a face. AFLW2000
has no identity labels: each image is its own subject.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ldlpose.data import crops, preparation, records
from ldlpose.data.records import BadSample, Problem
from ldlpose.data.shards import ShardWriter
from ldlpose.data.sources import Settings
from ldlpose.errors import ConfigError, DataError

CHUNK = 32  # files per task: big enough to amortise the round trip, small enough to balance


def discover(source_dir: Path) -> list[str]:
    """Every ``*.jpg`` under ``source_dir`` as sorted relative POSIX paths."""
    if not source_dir.is_dir():
        raise DataError(f"source folder {source_dir} does not exist")
    found = []
    for root, dirs, files in os.walk(source_dir):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        rel_root = Path(root).relative_to(source_dir)
        found += [(rel_root / f).as_posix() for f in files if f.lower().endswith(".jpg")]
    if not found:
        raise DataError(f"no .jpg files under {source_dir}; --source must be the dataset's folder "
                        "(300W-LP: the one holding AFW, AFW_Flip, HELEN, ...; AFLW2000: image*.jpg/.mat)")
    return sorted(found)


def subject_300wlp(rel_path: str) -> str:
    stem = Path(rel_path).stem
    return stem.rsplit("_", 1)[0] if "_" in stem else stem


def subject_aflw2000(rel_path: str) -> str:
    return Path(rel_path).stem


SUBJECTS = {"300w-lp": subject_300wlp, "aflw2000": subject_aflw2000}
SUBJECT_RULES = {
    "300w-lp": "file stem without its last '_<k>' (view index); *_Flip folders share the subject",
    "aflw2000": "file stem (no identity labels: one subject per image)",
}


def read_pose_and_landmarks(mat_path: Path, landmarks: str = "pt2d") -> tuple[tuple[float, float, float], np.ndarray]:
    """(yaw, pitch, roll) in degrees and the ``landmarks`` variable (``pt2d`` 2 x N, or ``pt3d_68``
    3 x 68) from a 300W-LP/AFLW2000 ``.mat``."""
    import scipy.io

    if not mat_path.is_file():
        raise BadSample("annotation", f"missing annotation file {mat_path.name}")
    try:
        mat = scipy.io.loadmat(str(mat_path), variable_names=["Pose_Para", landmarks])
    except Exception as err:  # scipy raises ValueError, TypeError, OSError... on damaged files
        raise BadSample("annotation", f"cannot read {mat_path.name}: {err}") from err
    if "Pose_Para" not in mat or np.size(mat["Pose_Para"]) < 3:
        raise BadSample("annotation", f"{mat_path.name} has no Pose_Para with 3 angles")
    if landmarks not in mat:
        raise BadSample("annotation", f"{mat_path.name} has no {landmarks} landmarks")
    pitch, yaw, roll = np.rad2deg(np.asarray(mat["Pose_Para"], dtype=np.float64).ravel()[:3])
    return (yaw, pitch, roll), np.asarray(mat[landmarks], dtype=np.float64)


def read_one(source_dir: Path, rel_path: str, dataset: str, recipe, options: records.ImageOptions) -> dict:
    jpg = source_dir / rel_path
    angles, points = read_pose_and_landmarks(jpg.with_suffix(".mat"), recipe.landmarks)
    records.check_angles(*angles)  # before decoding the picture: cheap and the likelier fault
    face_img, box, face = recipe.crop(records.open_rgb(jpg), points)
    return records.make_row(face_img, angles, subject=SUBJECTS[dataset](rel_path), source=dataset,
                            key=rel_path, box=box, face_box=face, options=options)


def read_chunk(payload: tuple) -> list:
    """Worker entry point: rows or problems for one chunk of files, in order."""
    source_dir, rel_paths, dataset, recipe, options = payload
    out: list[dict | Problem] = []
    for rel_path in rel_paths:
        try:
            out.append(read_one(Path(source_dir), rel_path, dataset, recipe, options))
        except BadSample as bad:
            out.append(Problem(rel_path, bad.kind, str(bad)))
        except Exception as err:  # never let one odd file stop a 122k-image preparation
            out.append(Problem(rel_path, "error", f"{type(err).__name__}: {err}"))
    return out


def recipe_for(dataset: str, crop: str = "hopenet", margin: float | None = None):
    """The crop recipe of ``dataset``; ``margin`` overrides its k (HopeNet) or ad (FSA-Net)."""
    if dataset == "300w-lp":
        if crop != "hopenet":
            raise ConfigError(f"300w-lp is cropped with the HopeNet training recipe only, got --crop {crop}")
        return crops.hopenet_300wlp() if margin is None else crops.hopenet_300wlp(margin)
    if crop not in crops.RECIPES:
        raise ConfigError(f"--crop must be one of {sorted(crops.RECIPES)}, got {crop!r}")
    return crops.RECIPES[crop]() if margin is None else crops.RECIPES[crop](margin)


def prepare_landmark_dataset(dataset: str, source_dir, out_dir, settings: Settings, k: float | None = None,
                             crop: str = "hopenet") -> dict:
    """Prepare ``300w-lp`` or ``aflw2000`` from ``source_dir`` into ``out_dir``; returns the manifest.

    ``crop`` names the recipe (:data:`ldlpose.data.crops.RECIPES`; 300W-LP has only "hopenet"),
    ``k`` overrides its margin.
    """
    assert dataset in SUBJECTS, dataset
    source_dir, out_dir = Path(source_dir).resolve(), Path(out_dir)
    recipe = recipe_for(dataset, crop, k)
    files = discover(source_dir)
    writer = ShardWriter(out_dir, dataset=dataset, image_format=settings.image.format,
                         shard_rows=settings.shard_rows, overwrite=settings.overwrite)
    tasks = (
        preparation.Task("", (str(source_dir), files[i:i + CHUNK], dataset, recipe, settings.image),
                         items=len(files[i:i + CHUNK]))
        for i in range(0, len(files), CHUNK)
    )
    preparation.run(read_chunk, tasks, {"": writer}, workers=settings.workers, total=len(files))
    return writer.close(
        source={"dataset": dataset, "path": str(source_dir), "files": len(files)},
        crop=recipe.as_dict(),
        image=settings.image.as_dict(),
        subject_rule=SUBJECT_RULES[dataset],
        filters=_filters(dataset),
        command=settings.command,
    )


def prepare_300wlp(out_dir: Path, settings: Settings, *, source: Path,
                   margin_k: float | None = None) -> dict[str, dict]:
    """The ``300w-lp`` reader (:mod:`ldlpose.data.readers`)."""
    return {"": prepare_landmark_dataset("300w-lp", source, out_dir, settings, k=margin_k)}


def prepare_aflw2000(out_dir: Path, settings: Settings, *, source: Path, margin_k: float | None = None,
                     crop: str = "hopenet") -> dict[str, dict]:
    """The ``aflw2000`` reader (:mod:`ldlpose.data.readers`)."""
    return {"": prepare_landmark_dataset("aflw2000", source, out_dir, settings, k=margin_k, crop=crop)}


def aflw2000_folder(options) -> str:
    """Each AFLW2000 crop has its own folder under the data root: the benchmarks check the recipe."""
    crop = options.get("crop", "hopenet")
    return "aflw2000" if crop == "hopenet" else f"aflw2000-{crop}"


def _filters(dataset: str) -> dict:
    stored = ("every readable row, |angle| > 180 included (flagged under angles_deg); files with "
              "unreadable data are listed under errors")
    if dataset == "aflw2000":
        return {"stored": stored, "evaluation": "the aflw2000 benchmarks keep rows with all |angle| <= 99 "
                                                "(1,969 of the official 2,000)"}
    return {"stored": stored, "training": "none stored; HopeNet-family file lists drop |angle| > 99 "
                                          "(122,415 of 122,450), RankPose does not: choose at training time"}
