"""Raw BIWI folders (png + pose txt + rgb.cal) through `ldlpose prepare biwi`."""

import math

import numpy as np
import pytest
from datafixtures import biwi_rotation, run_cli, write_biwi_video

from ldlpose.data.shards import read_manifest, read_table

ANGLES = (25.0, -15.0, 10.0)  # yaw, pitch, roll


def hopenet_biwi_angles(m):
    """HopeNet's / FSA-Net's own BIWI formula (spec 4.3), written independently of ldlpose.geometry."""
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
    assert table.column("subject").to_pylist() == ["biwi-01", "biwi-01"]
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


def test_protocol2_splits_24_videos_16_8_by_video_with_a_recorded_seed(tmp_path):
    for v in range(1, 25):
        write_biwi_video(tmp_path, f"{v:02d}", {1: (ANGLES, (0, 0, 1000.0))}, size=(40, 30), focal=20.0)
    out = tmp_path / "p2"
    assert run_cli("biwi", "--source", tmp_path, "--protocol", 2, "--split-seed", 7, "--out", out) == 0
    train, test = read_manifest(out / "train"), read_manifest(out / "test")
    split = train["biwi"]
    assert split["seed"] == 7 and len(split["train_videos"]) == 16 and len(split["test_videos"]) == 8
    assert set(split["train_videos"]).isdisjoint(split["test_videos"])
    assert set(read_table(out / "train").column("subject").to_pylist()) == {f"biwi-{v}" for v in split["train_videos"]}
    assert set(read_table(out / "test").column("subject").to_pylist()) == {f"biwi-{v}" for v in split["test_videos"]}
    assert test["biwi"]["test_videos"] == split["test_videos"]
    # The same seed gives the same split; another seed another one.
    assert run_cli("biwi", "--source", tmp_path, "--protocol", 2, "--split-seed", 7, "--out", tmp_path / "again") == 0
    assert read_manifest(tmp_path / "again" / "train")["content_hash"] == train["content_hash"]
    assert run_cli("biwi", "--source", tmp_path, "--protocol", 2, "--split-seed", 8, "--out", tmp_path / "other") == 0
    assert read_manifest(tmp_path / "other" / "train")["biwi"]["train_videos"] != split["train_videos"]


def test_no_biwi_data_is_a_clear_error(tmp_path, capsys):
    assert run_cli("biwi", "--source", tmp_path, "--out", tmp_path / "o") == 2
    assert "BIWI_*.npz" in capsys.readouterr().err


@pytest.mark.parametrize("angles", [(0, 0, 0), (60, 0, 0), (0, 45, 0), (0, 0, -30), (-70, 20, 35)])
def test_biwi_formula_matches_hopenet_for_many_poses(angles):
    from ldlpose.data.sources.biwi import biwi_angles

    m = biwi_rotation(angles)
    np.testing.assert_allclose(biwi_angles(m[None])[0], hopenet_biwi_angles(m), atol=1e-9)
    np.testing.assert_allclose(biwi_angles(m[None])[0], angles, atol=1e-9)
