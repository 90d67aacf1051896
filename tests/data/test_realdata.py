"""The crop recipes and readers on real dataset files from ``../shared/realdata`` (never copied here).

16 AFLW2000 pairs, one 300W-LP pair and one BIWI frame, published by the datasets' authors (see the
folder's README). Each recipe's boxes are recomputed here from the ``.mat`` files with the formula of
the reference code, written independently of ldlpose, and the stored pixels compared with the crop
of the original picture. Skipped only where the folder is absent (a user's machine without it).
"""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
import pytest
import scipy.io
from datafixtures import run_cli
from PIL import Image

from ldlpose.data import benchmarks
from ldlpose.data.shards import read_manifest, read_table

REALDATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "realdata"
pytestmark = pytest.mark.skipif(not REALDATA.is_dir(), reason=f"real dataset samples not found at {REALDATA} "
                                "(../shared/realdata next to the repository)")
AFLW = REALDATA / "aflw2000"


def pt2d(mat: Path) -> np.ndarray:
    return np.asarray(scipy.io.loadmat(str(mat))["pt2d"], dtype=np.float64)


def hopenet_box(points: np.ndarray) -> tuple[int, ...]:
    """HopeNet's / 6DRepNet's AFLW2000 loader: every point, k = 0.2, sequential, int()."""
    x_min, y_min, x_max, y_max = points[0].min(), points[1].min(), points[0].max(), points[1].max()
    k = 0.20
    x_min -= 2 * k * abs(x_max - x_min)
    y_min -= 2 * k * abs(y_max - y_min)
    x_max += 2 * k * abs(x_max - x_min)
    y_max += 0.6 * k * abs(y_max - y_min)
    return int(x_min), int(y_min), int(x_max), int(y_max)


def fsanet_box(points: np.ndarray, width: int, height: int) -> tuple[int, ...]:
    """FSA-Net's TYY_create_db_type1.py with ad = 0.6."""
    idx, idy = points[0] > 0.0, points[1] > 0.0
    keep = idy if idx.sum() > idy.sum() else idx
    x, y = points[0][keep], points[1][keep]
    x_min, x_max, y_min, y_max = int(x.min()), int(x.max()), int(y.min()), int(y.max())
    h, w = y_max - y_min, x_max - x_min
    return (max(int(x_min - 0.6 * w), 0), max(int(y_min - 0.6 * h), 0),
            min(int(x_max + 0.6 * w), width - 1), min(int(y_max + 0.6 * h), height - 1))


def rankpose_box(points3d: np.ndarray) -> tuple[int, ...]:
    """RankPose's change_bbox(bbox, 1.4, use_forehead=False) on the pt3d_68 x, y box."""
    x_min, y_min, x_max, y_max = points3d[0].min(), points3d[1].min(), points3d[0].max(), points3d[1].max()
    w, h = x_max - x_min, y_max - y_min
    h_w = max(h, w) * 1.4
    x_min -= (h_w - w) // 2
    y_min -= (h_w - h) // 2
    return int(x_min), int(y_min), int(x_min + h_w), int(y_min + h_w)


def stored(table, i: int) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(table.column("image")[i].as_py())).convert("RGB"))


def boxes(table) -> list[tuple[int, ...]]:
    columns = [table.column(c).to_pylist() for c in ("box_x0", "box_y0", "box_x1", "box_y1")]
    return [tuple(int(v) for v in row) for row in zip(*columns)]


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    root = tmp_path_factory.mktemp("real")
    assert run_cli("aflw2000", "--source", AFLW, "--data-root", root, "--workers", 1) == 0
    assert run_cli("aflw2000", "--crop", "fsanet", "--source", AFLW, "--data-root", root, "--workers", 1) == 0
    assert run_cli("aflw2000", "--crop", "rankpose", "--source", AFLW, "--data-root", root, "--workers", 1) == 0
    return root


def test_aflw2000_hopenet_boxes_follow_the_loader_and_keep_missing_points(prepared):
    table = read_table(prepared / "aflw2000")
    keys = table.column("key").to_pylist()
    assert len(keys) == 16
    with_missing = 0
    for i, (key, box) in enumerate(zip(keys, boxes(table))):
        points = pt2d(AFLW / key.replace(".jpg", ".mat"))
        missing = (points[0] == -1) & (points[1] == 452)
        with_missing += bool(missing.any())
        assert box == hopenet_box(points), key
        original = Image.open(AFLW / key).convert("RGB")
        np.testing.assert_array_equal(stored(table, i), np.asarray(original.crop(box)))  # lossless, PIL padding
    assert with_missing >= 8  # 12 of these 16 files store a missing point as x = -1, y = 452


def test_aflw2000_fsanet_boxes_follow_its_script_and_drop_missing_points(prepared):
    table = read_table(prepared / "aflw2000-fsanet")
    hopenet = dict(zip(read_table(prepared / "aflw2000").column("key").to_pylist(),
                       boxes(read_table(prepared / "aflw2000"))))
    for i, (key, box) in enumerate(zip(table.column("key").to_pylist(), boxes(table))):
        original = np.asarray(Image.open(AFLW / key).convert("RGB"))
        points = pt2d(AFLW / key.replace(".jpg", ".mat"))
        assert box == fsanet_box(points, original.shape[1], original.shape[0]), key
        x0, y0, x1, y1 = box
        np.testing.assert_array_equal(stored(table, i), original[y0:y1, x0:x1])
        if ((points[0] == -1) & (points[1] == 452)).any():
            h = hopenet[key]
            assert (h[2] - h[0]) * (h[3] - h[1]) > 1.5 * (x1 - x0) * (y1 - y0), key


def test_aflw2000_rankpose_boxes_are_squares_from_pt3d(prepared):
    table = read_table(prepared / "aflw2000-rankpose")
    for i, (key, box) in enumerate(zip(table.column("key").to_pylist(), boxes(table))):
        points3d = np.asarray(scipy.io.loadmat(str(AFLW / key.replace(".jpg", ".mat")))["pt3d_68"], dtype=np.float64)
        assert box == rankpose_box(points3d), key
        assert abs((box[2] - box[0]) - (box[3] - box[1])) <= 1, key  # square up to int()
        original = Image.open(AFLW / key).convert("RGB")
        np.testing.assert_array_equal(stored(table, i), np.asarray(original.crop(box)))


def test_aflw2000_angles_and_benchmark_rows(prepared):
    table = read_table(prepared / "aflw2000")
    for i, key in enumerate(table.column("key").to_pylist()):
        pose = scipy.io.loadmat(str(AFLW / key.replace(".jpg", ".mat")))["Pose_Para"][0].astype(np.float64)
        got = [table.column(c)[i].as_py() for c in ("yaw", "pitch", "roll")]
        np.testing.assert_allclose(got, np.rad2deg([pose[1], pose[0], pose[2]]), atol=1e-9)
    for name in ("aflw2000", "aflw2000-6drepnet", "aflw2000-fsanet", "aflw2000-rankpose"):
        bench = benchmarks.get(name)
        folder = bench.resolve(prepared)
        labels = np.stack([table.column(c).to_numpy() for c in ("yaw", "pitch", "roll")], axis=1)
        assert bench.row_indices(folder).tolist() == np.flatnonzero((np.abs(labels) <= 99).all(1)).tolist()
        assert bench.identity(folder)["content_hash"] == read_manifest(folder)["content_hash"]


def test_prepared_real_folders_read_with_pandas(prepared):
    import pandas as pd

    frame = pd.read_parquet(prepared / "aflw2000-fsanet")
    assert len(frame) == 16 and set(frame["source"]) == {"aflw2000"}


def test_300wlp_training_crop_on_the_real_pair(tmp_path):
    source = REALDATA / "300w-lp"
    assert run_cli("300w-lp", "--source", source, "--out", tmp_path / "w", "--workers", 1) == 0
    table = read_table(tmp_path / "w")
    assert table.column("key").to_pylist() == ["IBUG/IBUG_image_008_1_0.jpg"]
    assert table.column("subject").to_pylist() == ["IBUG_image_008_1"]
    points = pt2d(source / "IBUG" / "IBUG_image_008_1_0.mat")
    x0, y0, x1, y1 = points[0].min(), points[1].min(), points[0].max(), points[1].max()
    k = 0.4  # the widest of HopeNet's U[0.2, 0.4], sequential margins, rounded outwards and clipped
    x0 -= 0.6 * k * abs(x1 - x0)
    y0 -= 2 * k * abs(y1 - y0)
    x1 += 0.6 * k * abs(x1 - x0)
    y1 += 0.6 * k * abs(y1 - y0)
    width, height = Image.open(source / "IBUG" / "IBUG_image_008_1_0.jpg").size
    expected = (max(0, math.floor(x0)), max(0, math.floor(y0)), min(width, math.ceil(x1)), min(height, math.ceil(y1)))
    assert boxes(table) == [expected]


def test_biwi_frame_angles_and_person(tmp_path):
    video = REALDATA / "biwi" / "hpdb" / "01"
    assert run_cli("biwi", "--source", REALDATA / "biwi", "--out", tmp_path / "b", "--workers", 1) == 0
    table = read_table(tmp_path / "b")
    assert table.column("key").to_pylist() == ["01/frame_00003_rgb.png"]
    assert table.column("subject").to_pylist() == ["biwi-F01"]
    lines = [line for line in (video / "frame_00003_pose.txt").read_text().splitlines() if line.strip()]
    r = np.array([[float(v) for v in line.split()] for line in lines[:3]]).T  # HopeNet: R = M^T
    roll = -math.degrees(math.atan2(r[1, 0], r[0, 0]))
    yaw = -math.degrees(math.atan2(-r[2, 0], math.hypot(r[2, 1], r[2, 2])))
    pitch = math.degrees(math.atan2(r[2, 1], r[2, 2]))
    got = [table.column(c)[0].as_py() for c in ("yaw", "pitch", "roll")]
    np.testing.assert_allclose(got, [yaw, pitch, roll], atol=1e-4)  # the file's matrix is orthonormal to ~1e-6
    assert read_manifest(tmp_path / "b")["crop"]["name"] == benchmarks.get("biwi-raw").protocol.crop
