"""Checkpoints and manifests are on the disk before their names are (issue 24, item 1): the content
is fsynced, then renamed into place, then the folder holding the new name is fsynced. A power cut
cannot be made here, so the order of the real system calls is recorded (each one still runs)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ldlpose.infra.files import write_durably
from ldlpose.train.checkpoints import store


@pytest.fixture
def calls(monkeypatch) -> list[tuple]:
    """``("fsync", path)`` and ``("rename", source, target)`` in the order they happen."""
    events: list[tuple] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        return real_fsync(fd)

    def replace(source, target):
        events.append(("rename", str(source), str(target)))
        return real_replace(source, target)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    return events


def _flushed(events: list[tuple]) -> set[str]:
    return {e[1] for e in events if e[0] == "fsync"}


def _rename(events: list[tuple], target: Path) -> int:
    return next(i for i, e in enumerate(events) if e[0] == "rename" and e[2] == str(target))


def test_a_checkpoint_is_flushed_before_it_is_renamed_into_place(tmp_path, calls):
    def write(folder: Path) -> None:
        (folder / "model.pt").write_bytes(b"weights" * 100)
        (folder / "metrics.json").write_text('{"epoch": 0}')

    run_dir = tmp_path / "run"
    target = store(str(run_dir), "checkpoint_000000", write)
    at = _rename(calls, target)
    partial = Path(calls[at][1])
    assert _flushed(calls[:at]) >= {str(partial / "model.pt"), str(partial / "metrics.json"), str(partial)}
    assert str(run_dir) in _flushed(calls[at + 1:])  # the new name itself
    assert (target / "model.pt").read_bytes() == b"weights" * 100


def test_a_manifest_is_flushed_before_it_is_renamed_into_place(tmp_path, calls):
    manifest = tmp_path / "data" / "manifest.json"
    manifest.parent.mkdir()
    write_durably(manifest, '{"shards": []}\n')
    at = _rename(calls, manifest)
    assert calls[at][1] in _flushed(calls[:at])
    assert str(manifest.parent) in _flushed(calls[at + 1:])
    assert manifest.read_text() == '{"shards": []}\n'
