"""Every read checks each shard against its manifest hash: a damaged shard is one error naming every
bad shard (the others are still checked), not a raw pyarrow error or silently different rows; shards
verified once are remembered by (name, size, mtime) beside the manifest and not hashed again."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest

from ldlpose.data.shards import VERIFIED, ShardWriter, read_labels, read_table
from ldlpose.errors import DataError


def write_dataset(folder, rows=12, shard_rows=4):
    writer = ShardWriter(folder, dataset="t", image_format="png", shard_rows=shard_rows)
    for i in range(rows):
        writer.add({"image": b"\x89PNG" + bytes([i]) * 40, "yaw": float(i), "pitch": 0.0, "roll": 0.0,
                    "subject": f"s{i % 3}", "source": "t", "key": f"k{i}",
                    "box_x0": 0.0, "box_y0": 0.0, "box_x1": 1.0, "box_y1": 1.0,
                    "face_x0": float("nan"), "face_y0": float("nan"), "face_x1": float("nan"),
                    "face_y1": float("nan"), "width": 1, "height": 1})
    writer.close(source={}, crop={}, image={}, subject_rule="test")
    return folder


def test_damaged_shards_are_named_and_the_rest_still_checked(tmp_path):
    folder = write_dataset(tmp_path / "d")  # three shards
    good = read_labels(folder)["angles_deg"]
    for name, damage in (("part-00000.parquet", "truncate"), ("part-00002.parquet", "flip")):
        data = bytearray((folder / name).read_bytes())
        if damage == "truncate":  # pyarrow: "Parquet magic bytes not found in footer"
            data = data[: len(data) // 2]
        else:  # same size, one value byte changed: pyarrow would read different rows
            data[len(data) // 3] ^= 0xFF
        (folder / name).write_bytes(bytes(data))
    with pytest.raises(DataError, match=r"2 of 3 shards do not match their sha256 in _manifest\.json .*"
                                        r"part-00000\.parquet, part-00002\.parquet; prepare the dataset again"):
        read_table(folder)
    shutil.rmtree(folder)
    write_dataset(folder)
    np.testing.assert_array_equal(read_labels(folder)["angles_deg"], good)


def test_verified_shards_are_cached_beside_the_manifest_by_size_and_mtime(tmp_path):
    folder = write_dataset(tmp_path / "d", rows=8)
    assert not (folder / VERIFIED).exists()
    read_labels(folder)
    cache = json.loads((folder / VERIFIED).read_text())
    assert sorted(cache) == ["part-00000.parquet", "part-00001.parquet"]
    shard = folder / "part-00001.parquet"
    stat = shard.stat()
    assert cache[shard.name][:2] == [stat.st_size, stat.st_mtime_ns]
    # A change that keeps size and mtime is trusted (that is the cache), so the second read does not hash:
    # proven by damaging the bytes in place and restoring the mtime.
    data = bytearray(shard.read_bytes())
    data[len(data) // 3] ^= 0xFF
    shard.write_bytes(bytes(data))
    os.utime(shard, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    read_labels(folder)  # no error: not hashed again
    os.utime(shard, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))  # touched: hashed again
    with pytest.raises(DataError, match=r"1 of 2 shards .*: part-00001\.parquet"):
        read_labels(folder)
