"""The shard format: bounded shard size, manifest, content hash, refusal to overwrite."""

import json

import numpy as np
import pytest
from PIL import Image

from ldlpose.data.records import ImageOptions, Problem, make_row
from ldlpose.data.shards import ShardWriter, read_labels, read_manifest, read_table, verify
from ldlpose.errors import ConfigError, DataError


def rows(n):
    img = Image.new("RGB", (8, 8), (10, 20, 30))
    return [make_row(img, (i, -i, 0.5 * i), subject=f"s{i % 3}", source="t", key=f"f{i}", box=(0, 0, 8, 8),
                     options=ImageOptions()) for i in range(n)]


def write(out, n, shard_rows=4, problems=(), overwrite=False):
    writer = ShardWriter(out, dataset="t", shard_rows=shard_rows, overwrite=overwrite)
    for row in rows(n):
        writer.add(row)
    for p in problems:
        writer.add_problem(p)
    return writer.close(source={"x": 1}, crop={"name": "c"}, image=ImageOptions().as_dict(), subject_rule="r")


def test_shards_are_bounded_and_read_back_in_order(tmp_path):
    manifest = write(tmp_path / "d", 10, problems=[Problem("bad.jpg", "image", "truncated")])
    assert [s["rows"] for s in manifest["shards"]] == [4, 4, 2]
    assert sorted(p.name for p in (tmp_path / "d").glob("part-*.parquet")) == [
        "part-00000.parquet", "part-00001.parquet", "part-00002.parquet"]
    labels = read_labels(tmp_path / "d")
    np.testing.assert_array_equal(labels["angles_deg"][:, 0], np.arange(10))
    np.testing.assert_array_equal(labels["angles_deg"][:, 1], -np.arange(10))
    assert list(labels["key"]) == [f"f{i}" for i in range(10)]
    on_disk = json.loads((tmp_path / "d" / "_manifest.json").read_text())
    assert on_disk == read_manifest(tmp_path / "d") == manifest
    assert manifest["rows"] == 10 and manifest["subjects"] == 3
    assert manifest["errors"] == {"count": 1, "by_kind": {"image": 1}, "complete_list": "_problems.jsonl",
                                  "items": [{"key": "bad.jpg", "kind": "image", "message": "truncated"}]}
    assert manifest["angles_deg"]["max"] == [9, 0, 4.5]


def test_content_hash_is_reproducible_and_detects_changes(tmp_path):
    a, b = write(tmp_path / "a", 6), write(tmp_path / "b", 6)
    assert a["content_hash"] == b["content_hash"] and a["content_hash"].startswith("sha256:")
    assert write(tmp_path / "c", 7)["content_hash"] != a["content_hash"]
    assert verify(tmp_path / "a") == a["content_hash"]
    with open(tmp_path / "a" / "part-00001.parquet", "ab") as f:
        f.write(b"x")
    with pytest.raises(DataError, match=r"part-00001\.parquet does not match"):
        verify(tmp_path / "a")


def test_an_existing_dataset_is_not_overwritten_silently(tmp_path):
    write(tmp_path / "d", 3)
    with pytest.raises(ConfigError, match="--overwrite"):
        ShardWriter(tmp_path / "d", dataset="t")
    before = read_manifest(tmp_path / "d")
    ShardWriter(tmp_path / "d", dataset="t", overwrite=True).abort()  # a failed replacement
    assert read_manifest(tmp_path / "d") == before and verify(tmp_path / "d") == before["content_hash"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d"]  # its unfinished folder is removed


def test_missing_or_unfinished_folders_name_the_problem(tmp_path):
    with pytest.raises(DataError, match=r"_manifest\.json is missing"):
        read_manifest(tmp_path)
    writer = ShardWriter(tmp_path / "half", dataset="t", shard_rows=2)
    for row in rows(3):
        writer.add(row)
    writer.abort()  # failed: the unfinished folder is removed, nothing took the name
    assert sorted(p.name for p in tmp_path.iterdir()) == []
    (tmp_path / "half").mkdir()  # shards without a manifest, as preparations killed before 2026-12 left them
    write(tmp_path / "whole", 3)
    (tmp_path / "whole" / "part-00000.parquet").rename(tmp_path / "half" / "part-00000.parquet")
    with pytest.raises(DataError, match="did not finish"):
        read_table(tmp_path / "half")


def test_no_rows_is_an_error_not_an_empty_dataset(tmp_path):
    writer = ShardWriter(tmp_path / "e", dataset="t")
    writer.add_problem(Problem("a.jpg", "image", "bad"))
    with pytest.raises(DataError, match="no rows were prepared"):
        writer.close(source={}, crop={}, image={}, subject_rule="")


def test_wrapped_angles_are_kept_and_non_numbers_refused_saying_the_value():
    from ldlpose.data.records import BadSample

    row = make_row(Image.new("RGB", (4, 4)), (181.0, 0, -200.0), subject="s", source="t", key="k",
                   box=(0, 0, 4, 4), options=ImageOptions())
    assert (row["yaw"], row["roll"]) == (181.0, -200.0)
    with pytest.raises(BadSample, match=r"pitch = inf is not a finite number of degrees \(yaw/pitch/roll = "):
        make_row(Image.new("RGB", (4, 4)), (1.0, float("inf"), 0), subject="s", source="t", key="k",
                 box=(0, 0, 4, 4), options=ImageOptions())


def test_parquet_readers_read_the_folder_as_it_is(tmp_path):
    """pandas and pyarrow skip '_'-prefixed files (Ray Data reads only '.parquet' files anyway)."""
    import pandas as pd
    import pyarrow.parquet as pq

    write(tmp_path / "d", 10, problems=[Problem("bad.jpg", "image", "truncated")])
    frame = pd.read_parquet(tmp_path / "d")
    assert len(frame) == 10 and frame["key"].tolist() == [f"f{i}" for i in range(10)]
    assert pq.read_table(tmp_path / "d").num_rows == 10


@pytest.mark.slow
def test_ray_data_reads_the_folder_as_it_is(tmp_path):
    """Ray Data in its own process and Ray instance (the session's test Rays stay untouched)."""
    import os
    import subprocess
    import sys

    write(tmp_path / "d", 10, problems=[Problem("bad.jpg", "image", "truncated")])
    code = ("import ray, sys; ray.init(address='local', num_cpus=1, include_dashboard=False, log_to_driver=False); "
            "ds = ray.data.read_parquet(sys.argv[1]); print(ds.count(), sorted(ds.schema().names)[:3])")
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path / "d")], check=False, capture_output=True,
                          text=True, timeout=300, env={**os.environ, "RAY_AUTH_MODE": "disabled"})
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1].startswith("10 ")


def test_folders_with_the_old_manifest_name_still_load(tmp_path):
    manifest = write(tmp_path / "d", 5)
    (tmp_path / "d" / "_manifest.json").rename(tmp_path / "d" / "manifest.json")
    (tmp_path / "d" / "_problems.jsonl").rename(tmp_path / "d" / "problems.jsonl")
    assert read_manifest(tmp_path / "d") == manifest
    assert read_table(tmp_path / "d").num_rows == 5
    with pytest.raises(ConfigError, match="--overwrite"):  # still a prepared dataset
        ShardWriter(tmp_path / "d", dataset="t")
    assert write(tmp_path / "d", 2, overwrite=True)["rows"] == 2
    assert sorted(p.name for p in (tmp_path / "d").iterdir()) == ["_manifest.json", "_problems.jsonl",
                                                                   "part-00000.parquet"]
