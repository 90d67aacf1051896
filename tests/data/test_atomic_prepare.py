"""`ldlpose prepare --overwrite` replaces a dataset as a whole: killed at any point, the folder holds
a complete dataset, the old or the new one, and files that are not the old dataset's survive."""

import os
import signal
import subprocess
import sys
import time

import pytest
from test_shards import write

from ldlpose.cli import main
from ldlpose.data import staging
from ldlpose.data.shards import read_manifest, read_table, verify


def _dead_pid() -> int:
    """The id of a process that has ended (reused only after the kernel wraps its pid counter)."""
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


def test_overwrite_replaces_only_the_old_datasets_files(tmp_path, capsys):
    out = tmp_path / "d"
    write(out, 10)  # part-00000..00002
    (out / "notes.txt").write_text("mine")
    (out / "extra").mkdir()
    (out / "extra" / "a.txt").write_text("also mine")
    (out / "part-00007.parquet").write_bytes(b"not listed in the manifest")
    (tmp_path / "d2").mkdir()
    (tmp_path / "d2" / "part-00000.parquet").write_bytes(b"mine, named like a shard")
    new = write(out, 3, overwrite=True)
    assert read_manifest(out) == new and verify(out) == new["content_hash"] and read_table(out).num_rows == 3
    assert sorted(p.name for p in out.iterdir()) == ["_manifest.json", "_problems.jsonl", "_verified.json", "extra",
                                                     "notes.txt", "part-00000.parquet", "part-00007.parquet"]
    assert (out / "notes.txt").read_text() == "mine" and (out / "extra" / "a.txt").read_text() == "also mine"
    assert (out / "part-00007.parquet").read_bytes() == b"not listed in the manifest"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d", "d2"]  # nothing left beside it
    # A folder whose unlisted file has a name the new dataset takes: the file is kept under another name.
    write(tmp_path / "d2", 2, overwrite=True)
    kept = [p for p in (tmp_path / "d2").iterdir() if p.name.startswith("part-00000.parquet.kept-")]
    assert len(kept) == 1 and kept[0].read_bytes() == b"mine, named like a shard"
    assert "kept as" in capsys.readouterr().err


def test_a_read_restores_a_dataset_caught_between_the_two_renames(tmp_path, capsys):
    out = tmp_path / "d"
    manifest = write(out, 5)
    pid = _dead_pid()
    out.rename(staging.sibling(out, staging.OLD, pid))  # killed after old -> backup, before new -> final
    staging.fresh(out).joinpath("part-00000.parquet").write_bytes(b"half")
    staging.fresh(out).rename(staging.sibling(out, staging.NEW, pid))
    assert read_manifest(out) == manifest and verify(out) == manifest["content_hash"]
    err = capsys.readouterr().err
    assert "restored the previous dataset" in err and "an unfinished preparation" in err  # removed, and said
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d"]


@pytest.mark.slow
def test_a_prepare_killed_mid_write_leaves_the_old_dataset_complete(tmp_path, capsys):
    """A real `ldlpose prepare synthhead --overwrite` SIGKILLed once its new folder has a shard."""
    out = tmp_path / "synth"
    small = ["--val", "0", "--test", "0", "--size", "32", "--workers", "1", "--shard-rows", "8"]
    assert main(["prepare", "synthhead", "--out", str(out), "--train", "16", *small]) == 0
    old = read_manifest(out / "train")
    (out / "train" / "README").write_text("kept")
    command = [sys.executable, "-m", "ldlpose", "prepare", "synthhead", "--out", str(out), "--train", "2000",
               *small, "--overwrite"]
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        while child.poll() is None and not list(out.glob(".train.preparing-*/part-00000.parquet")):
            time.sleep(0.02)
        os.kill(child.pid, signal.SIGKILL)
    finally:
        _, err = child.communicate(timeout=60)
    assert child.returncode == -signal.SIGKILL, err.decode()[-2000:]  # killed while writing, not finished
    assert list(out.glob(".train.preparing-*"))  # it died half way: its shards are there, unused
    assert read_manifest(out / "train") == old and verify(out / "train") == old["content_hash"]
    assert read_table(out / "train").num_rows == 16
    # The next preparation cleans up and replaces the dataset; the file beside it survives.
    assert main(["prepare", "synthhead", "--out", str(out), "--train", "24", *small, "--overwrite"]) == 0
    assert "an unfinished preparation" in capsys.readouterr().err
    assert read_table(out / "train").num_rows == 24 and (out / "train" / "README").read_text() == "kept"
    assert sorted(p.name for p in out.iterdir()) == ["train"]
