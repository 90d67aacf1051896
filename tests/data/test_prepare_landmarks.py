"""300W-LP and AFLW2000 (jpg + mat) through the real `ldlpose prepare` command."""

import io
import json
import math

import numpy as np
import pytest
import scipy.io
from datafixtures import LANDMARKS, pose_para, run_cli, write_face
from PIL import Image

from ldlpose.data.shards import read_labels, read_manifest, read_table, verify


def decoded(table, i):
    return np.asarray(Image.open(io.BytesIO(table.column("image")[i].as_py())).convert("RGB"))


@pytest.fixture
def w300lp(tmp_path):
    src = tmp_path / "300W_LP"
    write_face(src / "AFW", "AFW_111_1_0", (30.0, -10.0, 5.0))
    write_face(src / "AFW", "AFW_111_1_1", (-45.0, 20.0, -8.0))
    write_face(src / "AFW_Flip", "AFW_111_1_0", (-30.0, -10.0, -5.0))
    write_face(src / "HELEN", "HELEN_222_1_0", (0.0, 0.0, 0.0))
    return src


def test_300wlp_angles_units_order_signs_subjects_and_box(w300lp, tmp_path):
    out = tmp_path / "out"
    assert run_cli("300w-lp", "--source", w300lp, "--out", out, "--workers", 1) == 0
    table = read_table(out)
    rows = {k: i for i, k in enumerate(table.column("key").to_pylist())}
    assert sorted(rows) == ["AFW/AFW_111_1_0.jpg", "AFW/AFW_111_1_1.jpg", "AFW_Flip/AFW_111_1_0.jpg",
                            "HELEN/HELEN_222_1_0.jpg"]
    i = rows["AFW/AFW_111_1_1.jpg"]
    # Pose_Para held [pitch, yaw, roll] radians of (yaw -45, pitch 20, roll -8) degrees.
    got = [table.column(c)[i].as_py() for c in ("yaw", "pitch", "roll")]
    np.testing.assert_allclose(got, [-45.0, 20.0, -8.0], atol=1e-9)
    subjects = table.column("subject").to_pylist()
    assert subjects[rows["AFW/AFW_111_1_0.jpg"]] == subjects[rows["AFW/AFW_111_1_1.jpg"]] == "AFW_111_1"
    assert subjects[rows["AFW_Flip/AFW_111_1_0.jpg"]] == "AFW_111_1"  # a mirror is the same person
    assert subjects[rows["HELEN/HELEN_222_1_0.jpg"]] == "HELEN_222_1"
    # k = 0.4 HopeNet train margins, applied sequentially to the 60..140 x 70..150 landmark box:
    # x0 = 60 - 0.24*80 = 40.8, y0 = 70 - 0.8*80 = 6, x1 = 140 + 0.24*99.2, y1 = 150 + 0.24*144.
    box = [table.column(c)[i].as_py() for c in ("box_x0", "box_y0", "box_x1", "box_y1")]
    assert box == [40, 6, 164, 185]
    assert [table.column(c)[i].as_py() for c in ("face_x0", "face_y0", "face_x1", "face_y1")] == [60, 70, 140, 150]
    assert (table.column("width")[i].as_py(), table.column("height")[i].as_py()) == (124, 179)
    image = decoded(table, i)
    assert image.shape == (179, 124, 3)
    # The crop starts at x = 40 of a picture red on x < 100: left part red, right part blue.
    assert tuple(image[90, 10]) == pytest.approx((255, 0, 0), abs=8)
    assert tuple(image[90, 110]) == pytest.approx((0, 0, 255), abs=8)
    manifest = read_manifest(out)
    assert manifest["crop"]["k"] == 0.4 and manifest["crop"]["name"] == "hopenet-300w-lp-train"
    assert manifest["rows"] == 4 and manifest["subjects"] == 2 and manifest["errors"]["count"] == 0
    assert verify(out) == manifest["content_hash"]


def test_aflw2000_hopenet_crop_keeps_missing_landmarks_and_pads_like_pil(tmp_path):
    src = tmp_path / "AFLW2000"
    with_missing = np.concatenate([LANDMARKS, [[-1.0, 120.0], [80.0, -1.0]]], axis=1)
    write_face(src, "image00002", (10.0, 5.0, -3.0), landmarks=with_missing)
    write_face(src, "image00004", (120.0, 5.0, 0.0))  # beyond 99: stored, the benchmark filters it
    out = tmp_path / "aflw"
    assert run_cli("aflw2000", "--source", src, "--out", out, "--workers", 1) == 0
    table = read_table(out)
    assert table.column("key").to_pylist() == ["image00002.jpg", "image00004.jpg"]
    # HopeNet keeps every point: box x -1..140, y -1..150; k = 0.2 margins applied in order, int():
    # x0 = int(-1 - 0.4*141) = -57, y0 = int(-1 - 0.4*151) = -61, x1 = int(140 + 0.4*197.4) = 218,
    # y1 = int(150 + 0.12*211.4) = 175.
    assert [table.column(c)[0].as_py() for c in ("box_x0", "box_y0", "box_x1", "box_y1")] == [-57, -61, 218, 175]
    assert [table.column(c)[0].as_py() for c in ("face_x0", "face_y0", "face_x1", "face_y1")] == [-1, -1, 140, 150]
    image = decoded(table, 0)
    assert image.shape == (236, 275, 3)  # the whole box, the part outside the 200 x 200 picture black
    assert tuple(image[10, 10]) == (0, 0, 0) and tuple(image[100, 80]) == pytest.approx((255, 0, 0), abs=8)
    assert table.column("subject").to_pylist() == ["image00002", "image00004"]
    assert table.column("yaw").to_pylist() == pytest.approx([10.0, 120.0])
    manifest = read_manifest(out)
    assert manifest["crop"]["name"] == "hopenet-aflw2000-test" and manifest["crop"]["k"] == 0.2
    assert manifest["image"]["format"] == "png" and manifest["image"]["max_side"] == 0  # lossless test set
    assert Image.open(io.BytesIO(table.column("image")[0].as_py())).format == "PNG"


def test_aflw2000_fsanet_crop_drops_missing_landmarks_and_clips(tmp_path):
    src = tmp_path / "AFLW2000"
    with_missing = np.concatenate([LANDMARKS, [[-1.0, 120.0], [80.0, -1.0]]], axis=1)
    write_face(src, "image00002", (10.0, 5.0, -3.0), landmarks=with_missing)
    assert run_cli("aflw2000", "--crop", "fsanet", "--source", src, "--data-root", tmp_path, "--workers", 1) == 0
    table = read_table(tmp_path / "aflw2000-fsanet")
    # FSA-Net keeps the 5 points with x > 0 (fewer than the 5 with y > 0? equal: the x mask); box
    # x 60..140, y -1..150 -> int, w = 80, h = 151: x0 = 60 - 48 = 12, y0 = max(int(-1 - 90.6), 0) = 0,
    # x1 = 140 + 48 = 188, y1 = min(int(150 + 90.6), 199) = 199.
    assert [table.column(c)[0].as_py() for c in ("box_x0", "box_y0", "box_x1", "box_y1")] == [12, 0, 188, 199]
    assert read_manifest(tmp_path / "aflw2000-fsanet")["crop"]["name"] == "fsanet-type1"


def test_corrupt_files_are_counted_reported_by_file_and_other_rows_kept(w300lp, tmp_path, capsys):
    (w300lp / "AFW" / "AFW_333_1_0.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    scipy.io.savemat(w300lp / "AFW" / "AFW_333_1_0.mat", {"Pose_Para": pose_para(1, 2, 3), "pt2d": LANDMARKS})
    write_face(w300lp / "AFW", "AFW_444_1_0", (0, 0, 0))
    (w300lp / "AFW" / "AFW_444_1_0.mat").write_bytes(b"MATLAB garbage")
    write_face(w300lp / "AFW", "AFW_555_1_0", (0, 0, 0))
    (w300lp / "AFW" / "AFW_555_1_0.mat").unlink()
    write_face(w300lp / "AFW", "AFW_666_1_0", (0, 0, 0))
    scipy.io.savemat(w300lp / "AFW" / "AFW_666_1_0.mat",  # 229 degrees of yaw: stored and flagged
                     {"Pose_Para": np.array([[0.1, 4.0, 0.0, 0, 0, 0, 1]]), "pt2d": LANDMARKS})
    write_face(w300lp / "AFW", "AFW_777_1_0", (0, 0, 0))
    scipy.io.savemat(w300lp / "AFW" / "AFW_777_1_0.mat",
                     {"Pose_Para": np.array([[0.1, np.nan, 0.0, 0, 0, 0, 1]]), "pt2d": LANDMARKS})
    out = tmp_path / "out"
    assert run_cli("300w-lp", "--source", w300lp, "--out", out, "--workers", 2) == 0
    manifest = read_manifest(out)
    problems = {p["key"]: p["kind"] for p in manifest["errors"]["items"]}
    assert problems == {"AFW/AFW_333_1_0.jpg": "image", "AFW/AFW_444_1_0.jpg": "annotation",
                        "AFW/AFW_555_1_0.jpg": "annotation", "AFW/AFW_777_1_0.jpg": "angle"}
    assert manifest["errors"]["count"] == 4
    assert manifest["errors"]["by_kind"] == {"angle": 1, "annotation": 2, "image": 1}
    assert manifest["rows"] == 5  # the four good faces and the wrapped one survive
    assert manifest["angles_deg"]["rows_beyond_180"] == 1
    assert manifest["angles_deg"]["keys_beyond_180"] == ["AFW/AFW_666_1_0.jpg"]
    assert "yaw = nan is not a finite number" in json.dumps(manifest["errors"])
    listed = [json.loads(line)["key"] for line in (out / "_problems.jsonl").read_text().splitlines()]
    assert sorted(listed) == sorted(problems)
    printed = capsys.readouterr()
    for key in problems:
        assert key in printed.err
    assert "4 source files skipped" in printed.out and "1 rows with an angle beyond +-180" in printed.out
    assert "missing annotation file AFW_555_1_0.mat" in json.dumps(manifest["errors"])


def test_workers_do_not_change_the_shards(w300lp, tmp_path):
    for workers in (1, 2):
        assert run_cli("300w-lp", "--source", w300lp, "--out", tmp_path / f"w{workers}", "--workers", workers,
                       "--shard-rows", 3) == 0
    one, two = read_manifest(tmp_path / "w1"), read_manifest(tmp_path / "w2")
    assert [s["rows"] for s in one["shards"]] == [3, 1]
    assert one["content_hash"] == two["content_hash"]


def test_png_format_and_existing_output(w300lp, tmp_path, capsys):
    out = tmp_path / "out"
    assert run_cli("300w-lp", "--source", w300lp, "--out", out, "--format", "png", "--workers", 1) == 0
    img = Image.open(io.BytesIO(read_table(out).column("image")[0].as_py()))
    assert img.format == "PNG" and img.mode == "RGB"
    assert run_cli("300w-lp", "--source", w300lp, "--out", out, "--workers", 1) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert run_cli("300w-lp", "--source", w300lp, "--out", out, "--workers", 1, "--overwrite") == 0
    assert read_manifest(out)["image"]["format"] == "jpeg"


def test_missing_source_is_a_clear_error(tmp_path, capsys):
    assert run_cli("aflw2000", "--source", tmp_path / "nowhere", "--out", tmp_path / "o") == 2
    assert "does not exist" in capsys.readouterr().err


def test_angles_are_degrees_not_radians(w300lp, tmp_path):
    run_cli("300w-lp", "--source", w300lp, "--out", tmp_path / "o", "--workers", 1)
    angles = read_labels(tmp_path / "o")["angles_deg"]
    assert np.abs(angles).max() == pytest.approx(45.0)
    assert math.isclose(angles[:, 0].max(), 30.0)


def test_aflw2000_rankpose_crop_is_a_square_from_pt3d(tmp_path):
    src = tmp_path / "AFLW2000"
    write_face(src, "image00002", (10.0, 5.0, -3.0))
    pt3d = np.vstack([LANDMARKS, np.zeros((1, LANDMARKS.shape[1]))])  # x, y rows as pt2d, then z
    scipy.io.savemat(src / "image00002.mat", {"Pose_Para": pose_para(10.0, 5.0, -3.0),
                                              "pt2d": -np.ones_like(LANDMARKS), "pt3d_68": pt3d})
    assert run_cli("aflw2000", "--crop", "rankpose", "--source", src, "--data-root", tmp_path, "--workers", 1) == 0
    table = read_table(tmp_path / "aflw2000-rankpose")
    # box 60..140 x 70..150 (80 x 80) -> side 112; x0 = 60 - 32 // 2 = 44, y0 = 54; pt2d is not used.
    assert [table.column(c)[0].as_py() for c in ("box_x0", "box_y0", "box_x1", "box_y1")] == [44, 54, 156, 166]
    assert read_manifest(tmp_path / "aflw2000-rankpose")["crop"]["name"] == "rankpose-aflw2000-test"
