"""FSA-Net npz files (BGR images, [yaw, pitch, roll] degrees) through `ldlpose prepare`."""

import io

import numpy as np
import pytest
from datafixtures import BLUE, RED, bgr_npz, run_cli, two_colour_image
from PIL import Image

from ldlpose.data.shards import read_manifest, read_table


def rgb_of(table, i):
    return np.asarray(Image.open(io.BytesIO(table.column("image")[i].as_py())).convert("RGB"))


def test_fsanet_npz_bgr_becomes_rgb_and_pose_order_is_kept(tmp_path):
    src = tmp_path / "npz"
    src.mkdir()
    images = [two_colour_image(64, 64)] * 3
    bgr_npz(src / "AFW.npz", images, [[40.0, -20.0, 10.0], [-5.0, 7.0, -3.0], [np.nan, 0.0, 0.0]])
    (src / "broken.npz").write_bytes(b"PK not a zip")
    out = tmp_path / "out"
    assert run_cli("fsanet-npz", "--source", src, "--out", out, "--workers", 2) == 0
    table = read_table(out)
    assert table.column("key").to_pylist() == ["AFW.npz#0", "AFW.npz#1"]
    assert [table.column(c)[0].as_py() for c in ("yaw", "pitch", "roll")] == pytest.approx([40, -20, 10])
    pixels = rgb_of(table, 0)
    assert tuple(pixels[32, 8]) == pytest.approx(RED, abs=8)  # stored BGR (0, 0, 255) -> red
    assert tuple(pixels[32, 56]) == pytest.approx(BLUE, abs=8)
    assert table.column("subject").to_pylist() == ["AFW#0", "AFW#1"]
    assert [table.column(c)[0].as_py() for c in ("box_x0", "box_y0", "box_x1", "box_y1")] == [0, 0, 64, 64]
    errors = read_manifest(out)["errors"]
    assert {e["key"]: e["kind"] for e in errors["items"]} == {"AFW.npz#2": "angle", "broken.npz": "image"}


def test_wrapped_angles_are_stored_and_flagged(tmp_path):
    bgr_npz(tmp_path / "AFLW2000.npz", [two_colour_image(16, 16)] * 2, [[0.0, 0.0, 0.0], [-190.5, 3.0, 250.0]])
    out = tmp_path / "out"
    assert run_cli("fsanet-npz", "--source", tmp_path / "AFLW2000.npz", "--out", out, "--workers", 1) == 0
    manifest = read_manifest(out)
    assert manifest["rows"] == 2 and manifest["errors"]["count"] == 0
    assert manifest["angles_deg"]["rows_beyond_180"] == 1
    assert manifest["angles_deg"]["keys_beyond_180"] == ["AFLW2000.npz#1"]
    assert manifest["angles_deg"]["min"][0] == pytest.approx(-190.5)


def test_compressed_npz_streams_in_chunks(tmp_path, monkeypatch):
    from ldlpose.data.sources import fsanet

    monkeypatch.setattr(fsanet, "CHUNK", 4)
    rgb = np.random.default_rng(0).integers(0, 255, (10, 16, 16, 3), dtype=np.uint8)
    np.savez_compressed(tmp_path / "x.npz", image=rgb[..., ::-1], pose=np.zeros((10, 3)))
    out = tmp_path / "out"
    assert run_cli("fsanet-npz", "--source", tmp_path / "x.npz", "--out", out, "--format", "png",
                   "--workers", 1) == 0
    table = read_table(out)
    assert table.num_rows == 10
    np.testing.assert_array_equal(rgb_of(table, 9), rgb[9])  # PNG is lossless: exact RGB pixels


def test_biwi_npz_protocols(tmp_path):
    src = tmp_path / "fsa"
    src.mkdir()
    img = [two_colour_image(64, 64)]
    bgr_npz(src / "BIWI_noTrack.npz", img * 2, [[10, 20, 30], [-50, 0, 100]])
    bgr_npz(src / "BIWI_train.npz", img * 3, [[1, 2, 3]] * 3)
    bgr_npz(src / "BIWI_test.npz", img, [[4, 5, 6]])
    assert run_cli("biwi", "--source", src, "--out", tmp_path / "p1", "--workers", 1) == 0
    table = read_table(tmp_path / "p1")
    assert table.column("roll").to_pylist() == [30, 100]
    assert tuple(rgb_of(table, 0)[32, 8]) == pytest.approx(RED, abs=8)
    manifest = read_manifest(tmp_path / "p1")
    assert manifest["biwi"]["protocol"] == 1 and manifest["source"]["dataset"] == "biwi"
    assert run_cli("biwi", "--source", src, "--protocol", 2, "--out", tmp_path / "p2", "--workers", 1) == 0
    assert read_manifest(tmp_path / "p2" / "train")["rows"] == 3
    assert read_table(tmp_path / "p2" / "test").column("yaw").to_pylist() == [4]


def test_default_folders_are_the_benchmarks_of_each_source(tmp_path):
    """npz BIWI goes to FSA-Net's benchmarks, the raw videos to ldlpose's; each benchmark accepts its own."""
    from datafixtures import write_biwi_video

    from ldlpose.data import benchmarks

    src = tmp_path / "fsa"
    src.mkdir()
    img = [two_colour_image(64, 64)]
    bgr_npz(src / "BIWI_noTrack.npz", img, [[10, 20, 30]])
    bgr_npz(src / "BIWI_train.npz", img * 2, [[1, 2, 3]] * 2)
    bgr_npz(src / "BIWI_test.npz", img, [[4, 5, 6]])
    raw = tmp_path / "hpdb"
    for video in ("01", "02", "05", "21"):
        write_biwi_video(raw, video, {1: ((0.0, 0.0, 0.0), (0, 0, 1000.0))}, size=(40, 30), focal=20.0)
    root = tmp_path / "data"
    for source, protocol in ((src, 1), (src, 2), (raw, 1), (raw, 2)):
        assert run_cli("biwi", "--source", source, "--protocol", protocol, "--data-root", root, "--workers", 1) == 0
    assert sorted(p.name for p in root.iterdir()) == ["biwi-p1", "biwi-p2", "biwi-p2-fsanet", "biwi-raw"]
    for name in ("biwi", "biwi-raw", "biwi-p2", "biwi-p2-fsanet"):
        assert benchmarks.get(name).resolve(root).is_dir()  # crop recipe matches the protocol's
    assert read_manifest(root / "biwi-p2-fsanet" / "test")["image"]["format"] == "png"
