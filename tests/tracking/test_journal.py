"""The outbox's journal (issue 24, item 4): queued writes outlive the process, on a disk and on S3.

The writes here stand in for MLflow calls, as in test_outbox.py; test_outbox_survives_the_driver.py
runs the whole thing against a real driver and a real MLflow server.
"""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import pytest
from test_outbox import Server

from ldlpose.infra import storage
from ldlpose.tracking.journal import FILE, Journal
from ldlpose.tracking.outbox import Outbox

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "infra"))
from test_storage import s3_server  # noqa: F401  (the S3-compatible server fixture)


def _outbox(journal: Journal, problems: list) -> Outbox:
    return Outbox("http://127.0.0.1:1", problems, stream=io.StringIO(), retry_first_s=0.05, retry_max_s=0.1,
                  grace_s=0.5, journal=journal)


def _epoch(n: int) -> dict:
    return {"kind": "result", "trial": "a", "step": n, "timestamp_ms": 1000 + n, "metrics": {"val_mae": 10.0 - n}}


def _location(where: str, tmp_path: Path, request) -> str:
    if where == "s3":
        request.getfixturevalue("s3_server")
        return f"s3://bucket/journal-{tmp_path.name}/search/ldlpose-outbox"
    return str(tmp_path / "search" / "ldlpose-outbox")


@pytest.mark.parametrize("where", ["disk", "s3"])
def test_writes_mlflow_never_took_are_kept_and_replayed_once_by_the_next_process(where, tmp_path, request):
    folder, server, problems = _location(where, tmp_path, request), Server(), []
    server.down = False
    box = _outbox(Journal(folder, flush_s=0.05), problems)
    box.put("trial a result", server.write("epoch 1"), "epoch 1", _epoch(1))
    box.drain()  # delivered: nothing is left to replay, and the journal is gone
    assert server.written == ["epoch 1"] and not storage.exists(folder)
    server.down = True  # the outage: three epochs queued, then the driver gives up (as if killed)
    box = _outbox(Journal(folder, flush_s=0.05), problems)
    for n in (2, 3, 4):
        box.put("trial a result", server.write(f"epoch {n}"), f"epoch {n}", _epoch(n))
    box.drain()
    assert server.written == ["epoch 1"]
    assert "written when the search is resumed with --resume" in problems[-1]

    later = Journal(folder)  # a new driver of the search, MLflow back
    kept = later.undelivered()
    assert [r["step"] for r in kept] == [2, 3, 4] and [r["seq"] for r in kept] == [1, 2, 3]
    assert later.next_seq == 4  # numbers go on, never reused
    server.down = False
    box = _outbox(later, problems)
    for record in kept:  # as TrackingCallback.replay does
        box.put("replay", server.write(f"epoch {record['step']}"), "", record)
    box.put("trial a result", server.write("epoch 5"), "epoch 5", _epoch(5))
    box.drain()
    assert server.written == ["epoch 1", "epoch 2", "epoch 3", "epoch 4", "epoch 5"]
    assert Journal(folder).undelivered() == [] and not storage.exists(folder)


def test_on_disk_a_line_cut_short_by_a_kill_is_ignored_and_delivered_marks_are_kept(tmp_path):
    folder = tmp_path / "ldlpose-outbox"
    journal = Journal(str(folder))
    for n in (1, 2, 3):
        journal.append(_epoch(n))
    journal.delivered(1)
    with open(folder / FILE, "a") as file:
        file.write('{"kind": "result", "seq": 4, "trial"')  # the driver died mid-append
    lines = [json.loads(line) for line in (folder / FILE).read_text().splitlines()[:4]]
    assert [line.get("seq", line.get("delivered")) for line in lines] == [1, 2, 3, 1]
    assert [r["seq"] for r in Journal(str(folder)).undelivered()] == [2, 3]


def test_on_object_storage_writes_delivered_before_their_batch_is_due_are_never_put(tmp_path, s3_server):  # noqa: F811
    folder = f"s3://bucket/batches-{tmp_path.name}/ldlpose-outbox"
    journal = Journal(folder, flush_s=3600.0)  # flushed by hand below
    first = journal.append(_epoch(1))
    journal.delivered(first["seq"])
    journal.flush()
    assert not storage.exists(folder)  # MLflow up: no object at all
    for n in (2, 3):
        journal.append(_epoch(n))
    journal.flush()  # one object for the batch
    names = [i.base_name for i in storage.listing(folder)]
    assert len(names) == 1 and names[0].startswith("writes-")
    journal.delivered(2)
    journal.flush()
    assert sorted(i.base_name.split("-")[0] for i in storage.listing(folder)) == ["delivered", "writes"]
    assert [r["step"] for r in Journal(folder).undelivered()] == [3]
