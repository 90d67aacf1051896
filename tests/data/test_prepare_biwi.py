"""Raw BIWI folders (png + pose txt + rgb.cal) through `ldlpose prepare biwi`."""

import math

import numpy as np
import pytest
from datafixtures import biwi_rotation, run_cli, write_biwi_video

from ldlpose.data.shards import read_manifest, read_table

ANGLES = (25.0, -15.0, 10.0)  # yaw, pitch, roll


def hopenet_biwi_angles(m):
    """HopeNet's / FSA-Net's own BIWI formula (docs/methods.md#biwi), written independently of ldlpose.geometry."""
    r = m.T
    roll = -math.atan2(r[1, 0], r[0, 0])
    yaw = -math.atan2(-r[2, 0], math.hypot(r[2, 1], r[2, 2]))
    pitch = math.atan2(r[2, 1], r[2, 2])
    return [math.degrees(a) for a in (yaw, pitch, roll)]


def test_pose_file_converts_like_hopenet_and_box_follows_calibration(tmp_path):
    src = tmp_path / "hpdb"
    write_biwi_video(src, "01", {3: (ANGLES, (100.0, 0.0, 1000.0)), 4: ((-40.0, 30.0, -20.0), (0, 0, 800.0))})
    out = tmp_path / "p1"
    assert run_cli("biwi", "--source", tmp_path, "--out", out, "--workers", 1) == 0
    table = read_table(out)
    assert table.column("key").to_pylist() == ["01/frame_00003_rgb.png", "01/frame_00004_rgb.png"]
    got = [table.column(c)[0].as_py() for c in ("yaw", "pitch", "roll")]
    np.testing.assert_allclose(got, ANGLES, atol=1e-6)
    np.testing.assert_allclose(got, hopenet_biwi_angles(biwi_rotation(ANGLES)), atol=1e-6)
    # Head centre (100, 0, 1000) mm + T_ext (0, 10, 0) -> u = 100 * 100 / 1000 + 80 = 90,
    # v = 100 * 10 / 1000 + 60 = 61; 300 mm at 1 m with f = 100 px is 30 px.
    box = [table.column(c)[0].as_py() for c in ("box_x0", "box_y0", "box_x1", "box_y1")]
    assert box == [75, 46, 105, 76]
    assert table.column("subject").to_pylist() == ["biwi-F01", "biwi-F01"]  # video 01 shows person F01
    manifest = read_manifest(out)
    assert manifest["crop"]["box_mm"] == 300.0 and manifest["biwi"]["protocol"] == 1


def test_bad_frames_are_reported_and_the_rest_kept(tmp_path):
    write_biwi_video(tmp_path, "02", {1: (ANGLES, (0, 0, 1000.0)), 2: (ANGLES, (0, 0, 1000.0)),
                                      3: (ANGLES, (0, 0, 1000.0))})
    (tmp_path / "02" / "frame_00002_pose.txt").unlink()
    (tmp_path / "02" / "frame_00003_rgb.png").write_bytes(b"\x89PNG broken")
    write_biwi_video(tmp_path, "03", {1: (ANGLES, (0, 0, 1000.0))})
    (tmp_path / "03" / "rgb.cal").write_text("1 2 3\n")
    out = tmp_path / "out"
    assert run_cli("biwi", "--source", tmp_path, "--out", out, "--workers", 2) == 0
    manifest = read_manifest(out)
    assert manifest["rows"] == 1
    assert {e["key"]: e["kind"] for e in manifest["errors"]["items"]} == {
        "02/frame_00002_rgb.png": "annotation", "02/frame_00003_rgb.png": "image", "03/rgb.cal": "annotation"}


def test_protocol2_splits_24_videos_by_person_with_a_recorded_seed(tmp_path):
    for v in range(1, 25):
        write_biwi_video(tmp_path, f"{v:02d}", {1: (ANGLES, (0, 0, 1000.0))}, size=(40, 30), focal=20.0)
    out = tmp_path / "p2"
    assert run_cli("biwi", "--source", tmp_path, "--protocol", 2, "--split-seed", 7, "--out", out) == 0
    train, test = read_manifest(out / "train"), read_manifest(out / "test")
    split = train["biwi"]
    assert split["seed"] == 7 and split["split_by"] == "person"
    assert len(split["train_videos"]) in (16, 17) and len(split["train_videos"]) + len(split["test_videos"]) == 24
    assert set(split["train_persons"]).isdisjoint(split["test_persons"])
    assert len(split["train_persons"]) + len(split["test_persons"]) == 20
    train_subjects = set(read_table(out / "train").column("subject").to_pylist())
    test_subjects = set(read_table(out / "test").column("subject").to_pylist())
    assert train_subjects == set(split["train_persons"]) and test_subjects == set(split["test_persons"])
    assert train_subjects.isdisjoint(test_subjects)
    # The four persons recorded twice never have one video on each side.
    for pair in (("02", "21"), ("03", "15"), ("05", "18"), ("07", "22")):
        assert len({v in split["train_videos"] for v in pair}) == 1, pair
    assert test["biwi"]["test_videos"] == split["test_videos"]
    # The same seed gives the same split; another seed another one.
    assert run_cli("biwi", "--source", tmp_path, "--protocol", 2, "--split-seed", 7, "--out", tmp_path / "again") == 0
    assert read_manifest(tmp_path / "again" / "train")["content_hash"] == train["content_hash"]
    assert run_cli("biwi", "--source", tmp_path, "--protocol", 2, "--split-seed", 8, "--out", tmp_path / "other") == 0
    assert read_manifest(tmp_path / "other" / "train")["biwi"]["train_videos"] != split["train_videos"]


def test_person_map_covers_24_videos_of_20_people():
    from ldlpose.data.sources.biwi import PERSONS, person_of

    assert sorted(PERSONS) == [f"{v:02d}" for v in range(1, 25)]
    assert len(set(PERSONS.values())) == 20
    twice = sorted(p for p in set(PERSONS.values()) if list(PERSONS.values()).count(p) == 2)
    assert twice == ["F02", "F03", "F05", "M01"]
    assert person_of("15") == person_of("03") == "biwi-F03" and person_of("31") == "biwi-video-31"


def test_no_biwi_data_is_a_clear_error(tmp_path, capsys):
    assert run_cli("biwi", "--source", tmp_path, "--out", tmp_path / "o") == 2
    assert "BIWI_*.npz" in capsys.readouterr().err


@pytest.mark.parametrize("angles", [(0, 0, 0), (60, 0, 0), (0, 45, 0), (0, 0, -30), (-70, 20, 35)])
def test_biwi_formula_matches_hopenet_for_many_poses(angles):
    from ldlpose.data.sources.biwi import biwi_angles

    m = biwi_rotation(angles)
    np.testing.assert_allclose(biwi_angles(m[None])[0], hopenet_biwi_angles(m), atol=1e-9)
    np.testing.assert_allclose(biwi_angles(m[None])[0], angles, atol=1e-9)
