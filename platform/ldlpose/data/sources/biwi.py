"""BIWI Kinect Head Pose, from FSA-Net's npz files or from the raw folders (docs/methods.md#biwi).

**npz** (``--source`` holding FSA-Net's files): protocol 1 reads ``BIWI_noTrack.npz`` (MTCNN crops,
frames without a detection dropped); protocol 2 reads ``BIWI_train.npz`` and ``BIWI_test.npz``
(FSA-Net's unseeded 16/8 video split). See :mod:`.fsanet` for the format.

**raw** (``--source`` holding ``01`` ... ``24``, or ``hpdb/01`` ...): per frame
``NN/frame_XXXXX_rgb.png`` and ``NN/frame_XXXXX_pose.txt`` (three rows of the rotation M, a blank
line, the head centre T in mm, depth-camera frame). The angles are those of ``R = F M^T F`` with
``F = diag(1, -1, -1)`` read by :func:`ldlpose.geometry.matrix_to_euler` (identical to HopeNet's
and FSA-Net's BIWI formulas). The crop is a square of ``box_mm`` millimetres around the head
centre projected into the colour image with the video's ``NN/rgb.cal``, read as blank-line
separated blocks: 3 x 3 intrinsics K, the distortion coefficients (ignored: the projection only
places a loose box), the 3 x 3 rotation R_ext and the translation T_ext (mm) taking depth-camera
points to colour-camera points, ``p = R_ext T + T_ext``, ``u = K p``. The small depth-to-colour
rotation is not applied to the angles, as in HopeNet and FSA-Net. Every frame is kept (no detector,
so nothing is dropped as protocol 1's MTCNN does).

The subject is the **person** (``biwi-F03``, ...): BIWI's 24 videos show 20 people (6 women, 14 men;
4 recorded twice), and :data:`PERSONS` maps each video to its person. Source: the sequence-to-subject
table of the Hugging Face ``biwi_kinect_head_pose`` loading script (huggingface/datasets,
``datasets/biwi_kinect_head_pose/biwi_kinect_head_pose.py``), which names each video by the head
template the database ships for its person (``F01.obj`` ... ``M14.obj``). The pairs recorded twice
are 02/21 (F02), 03/15 (F03), 05/18 (F05) and 07/22 (M01). A video folder outside 01..24 is its own
person (``biwi-video-NN``).

Protocol 2 from raw data splits **by person**: the persons are shuffled with
``numpy.random.default_rng(seed).permutation`` (in sorted order first) and taken for training until
their videos reach ``floor(0.7 n)`` (16 of 24; 17 when the last person taken has two videos); the
other persons' videos test. No person is on both sides. Seed, persons and videos go to the manifest.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np

from ldlpose.data import preparation, records
from ldlpose.data.records import BadSample, Problem
from ldlpose.data.shards import ShardWriter
from ldlpose.data.sources import Settings, fsanet
from ldlpose.errors import ConfigError, DataError

CHUNK = 32
TRAIN_FRACTION = 0.7
DEFAULT_BOX_MM = 300.0  # a head is about 160 x 230 mm; 300 mm leaves a loose margin at any yaw
_F = np.diag([1.0, -1.0, -1.0])
NPZ_FILES = {1: {"": "BIWI_noTrack.npz"}, 2: {"train": "BIWI_train.npz", "test": "BIWI_test.npz"}}
PERSONS = {
    "01": "F01", "02": "F02", "03": "F03", "04": "F04", "05": "F05", "06": "F06", "07": "M01", "08": "M02",
    "09": "M03", "10": "M04", "11": "M05", "12": "M06", "13": "M07", "14": "M08", "15": "F03", "16": "M09",
    "17": "M10", "18": "F05", "19": "M11", "20": "M12", "21": "F02", "22": "M01", "23": "M13", "24": "M14",
}
"""BIWI video folder -> person (source in the module docstring)."""
PERSON_SOURCE = ("huggingface/datasets datasets/biwi_kinect_head_pose/biwi_kinect_head_pose.py "
                 "(_sequence_to_subject_map), after the database's head templates F01-F06, M01-M14")


def person_of(video: str) -> str:
    """The subject id of a BIWI video folder name: ``biwi-<person>`` (``biwi-video-NN`` if unknown)."""
    return f"biwi-{PERSONS[video]}" if video in PERSONS else f"biwi-video-{video}"


def _numbers(line: str) -> list[float]:
    return [float(v) for v in line.split()]


def read_calibration(path: Path) -> dict[str, np.ndarray]:
    """K (3x3), distortion, R_ext (3x3), T_ext (3,) from a BIWI ``rgb.cal``; ValueError if malformed."""
    blocks, current = [], []
    for line in path.read_text().splitlines():
        if line.strip():
            current += _numbers(line)
        elif current:
            blocks.append(current)
            current = []
    if current:
        blocks.append(current)
    if len(blocks) < 4 or len(blocks[0]) != 9 or len(blocks[2]) != 9 or len(blocks[3]) != 3:
        sizes = [len(b) for b in blocks]
        raise ValueError(f"{path.name}: expected blocks of 9 (K), any (distortion), 9 (R), 3 (T) "
                         f"numbers separated by blank lines, got {sizes}")
    return {"K": np.reshape(blocks[0], (3, 3)), "distortion": np.asarray(blocks[1]),
            "R": np.reshape(blocks[2], (3, 3)), "T": np.asarray(blocks[3])}


def read_pose(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Rotation M (3x3) and head centre T (3,) in mm from a BIWI ``frame_*_pose.txt``."""
    values = [v for line in path.read_text().splitlines() if line.strip() for v in _numbers(line)]
    if len(values) != 12:
        raise ValueError(f"{path.name}: expected 9 rotation + 3 translation numbers, got {len(values)}")
    return np.reshape(values[:9], (3, 3)), np.asarray(values[9:])


def biwi_angles(rotations: np.ndarray) -> np.ndarray:
    """(N, 3) yaw/pitch/roll degrees of BIWI rotations M (N, 3, 3): R = F M^T F (docs/methods.md#biwi)."""
    import torch

    from ldlpose import geometry

    r = _F @ np.transpose(rotations, (0, 2, 1)) @ _F
    return geometry.matrix_to_euler(torch.from_numpy(r)).numpy()


def head_box(center_mm: np.ndarray, cal: dict, box_mm: float) -> tuple[float, float, float, float]:
    """Square box (pixels) of side ``box_mm`` at the head's depth, centred on its projection."""
    p = cal["R"] @ center_mm + cal["T"]
    if p[2] <= 0:
        raise BadSample("annotation", f"head centre {center_mm.tolist()} mm is behind the camera")
    k = cal["K"]
    u, v = k[0, 0] * p[0] / p[2] + k[0, 2], k[1, 1] * p[1] / p[2] + k[1, 2]
    half = 0.5 * box_mm * k[0, 0] / p[2]
    return u - half, v - half, u + half, v + half


def find_videos(source: Path) -> list[Path]:
    for root in (source, source / "hpdb"):
        videos = sorted(p for p in root.glob("*") if p.is_dir() and re.fullmatch(r"\d+", p.name))
        if videos:
            return videos
    raise DataError(f"no BIWI data at {source}: expected FSA-Net's BIWI_*.npz files or the raw "
                    "video folders 01 ... 24 (each with frame_*_rgb.png, frame_*_pose.txt, rgb.cal)")


def video_tasks(video: Path, source: Path, target: str, box_mm: float, options) -> list[preparation.Task]:
    """Tasks (or problem tasks) for one raw video; poses are converted here, images in workers."""
    rel = video.relative_to(source).as_posix()
    try:
        cal = read_calibration(video / "rgb.cal")
    except (OSError, ValueError) as err:
        return [preparation.Task(target, Problem(f"{rel}/rgb.cal", "annotation",
                                                 f"unreadable calibration, video skipped: {err}"))]
    frames, problems = [], []
    for png in sorted(video.glob("frame_*_rgb.png")):
        key = f"{rel}/{png.name}"
        try:
            rotation, center = read_pose(png.with_name(png.name.replace("_rgb.png", "_pose.txt")))
            frames.append((key, rotation, head_box(center, cal, box_mm)))
        except (OSError, ValueError) as err:
            problems.append(Problem(key, "annotation", f"unreadable pose file: {err}"))
        except BadSample as bad:
            problems.append(Problem(key, bad.kind, str(bad)))
    tasks = [preparation.Task(target, p) for p in problems]
    if frames:
        angles = biwi_angles(np.stack([f[1] for f in frames]))
        items = [(key, tuple(a), box) for (key, _, box), a in zip(frames, angles)]
        tasks += [preparation.Task(target, (str(source), items[i:i + CHUNK], person_of(video.name), options),
                                   items=len(items[i:i + CHUNK])) for i in range(0, len(items), CHUNK)]
    return tasks


def read_chunk(payload: tuple) -> list:
    """Worker entry point: crop raw BIWI frames."""
    source, items, subject, options = payload
    out: list[dict | Problem] = []
    for key, angles, box in items:
        try:
            img, clipped = records.crop(records.open_rgb(Path(source) / key), box)
            out.append(records.make_row(img, angles, subject=subject, source="biwi", key=key,
                                        box=clipped, options=options))
        except BadSample as bad:
            out.append(Problem(key, bad.kind, str(bad)))
    return out


def split_videos(names: list[str], seed: int) -> tuple[list[str], list[str]]:
    """Protocol-2 split by person: persons in seeded order train until their videos reach ``floor(0.7 n)``."""
    videos_of: dict[str, list[str]] = {}
    for name in sorted(names):
        videos_of.setdefault(person_of(name), []).append(name)
    persons = sorted(videos_of)
    need = math.floor(TRAIN_FRACTION * len(names))
    if len(persons) < 2 or need < 1:
        raise DataError(f"protocol 2 needs videos of at least 2 persons to split 70/30; found {len(names)} "
                        f"videos of {len(persons)} persons ({persons})")
    train: list[str] = []
    for i in np.random.default_rng(seed).permutation(len(persons)):
        if len(train) >= need:
            break
        train += videos_of[persons[i]]
    test = sorted(set(names) - set(train))
    if not test:
        raise DataError(f"protocol 2 left no test video: the {len(names)} videos {sorted(names)} belong to "
                        f"{len(persons)} persons and training took them all; add videos or persons")
    return sorted(train), test


def prepare_biwi(out_dir: Path, settings: Settings, *, source: Path, protocol: int = 1, split_seed: int = 0,
                 box_mm: float = DEFAULT_BOX_MM) -> dict[str, dict]:
    """The ``biwi`` reader; returns manifests by target ("" for protocol 1, train/test for 2)."""
    if protocol not in NPZ_FILES:
        raise ConfigError(f"BIWI protocol must be 1 or 2, got {protocol}")
    source, out_dir = Path(source).resolve(), Path(out_dir)
    targets = {t: (out_dir / t if t else out_dir) for t in NPZ_FILES[protocol]}
    npz = {t: source / name for t, name in NPZ_FILES[protocol].items()}
    if all(p.is_file() for p in npz.values()):
        note = {"protocol": protocol, "from": "FSA-Net npz"}
        crop = {**fsanet.FSANET_CROP, "name": "fsanet-biwi-mtcnn"}
        return fsanet.prepare_npz({t: [p] for t, p in npz.items()}, targets, "biwi", settings, crop=crop,
                                  extra={"biwi": note})
    return _prepare_raw(source, targets, settings, protocol, split_seed, box_mm)


def _is_npz(source: Path, protocol: int) -> bool:
    return all((Path(source) / name).is_file() for name in NPZ_FILES[protocol].values())


def standard_folder(options) -> str:
    """FSA-Net's npz files and the raw videos are different protocols (MTCNN crops against head-centre
    crops), so each has its own folder under the data root."""
    protocol = options.get("protocol", 1)
    npz = _is_npz(options["source"], protocol)
    return {(1, True): "biwi-p1", (1, False): "biwi-raw", (2, True): "biwi-p2-fsanet", (2, False): "biwi-p2"}[
        (protocol, npz)]


def _prepare_raw(source: Path, targets: dict[str, Path], settings: Settings, protocol: int,
                 split_seed: int, box_mm: float) -> dict[str, dict]:
    videos = find_videos(source)
    if protocol == 1:
        assignment, note = {v.name: "" for v in videos}, {"protocol": 1, "videos": [v.name for v in videos]}
    else:
        train, test = split_videos([v.name for v in videos], split_seed)
        assignment = {**dict.fromkeys(train, "train"), **dict.fromkeys(test, "test")}
        note = {"protocol": 2, "split_by": "person", "seed": split_seed, "train_fraction": TRAIN_FRACTION,
                "permutation": "numpy.random.default_rng(seed).permutation of the sorted persons",
                "person_source": PERSON_SOURCE, "train_videos": train, "test_videos": test,
                "train_persons": sorted({person_of(v) for v in train}),
                "test_persons": sorted({person_of(v) for v in test})}
    note["from"] = "raw BIWI folders"
    writers = {t: ShardWriter(d, dataset="biwi", image_format=settings.image.format,
                              shard_rows=settings.shard_rows, overwrite=settings.overwrite)
               for t, d in targets.items()}
    tasks = (task for v in videos
             for task in video_tasks(v, v.parent, assignment[v.name], box_mm, settings.image))
    preparation.run(read_chunk, tasks, writers, workers=settings.workers)
    crop = {"name": "biwi-head-centre", "box_mm": box_mm, "box": "square of box_mm at the head "
            "centre's depth, centred on its projection with rgb.cal (p = R_ext T + T_ext), clipped"}
    return {t: w.close(source={"dataset": "biwi", "path": str(source)}, crop=crop,
                       image=settings.image.as_dict(),
                       subject_rule=f"person of the video folder ('biwi-F03'; map: {PERSON_SOURCE})",
                       filters={"stored": "every frame with a readable image and pose file"},
                       extra={"biwi": {**note, **({"split": t} if t else {})}}, command=settings.command)
            for t, w in writers.items()}
