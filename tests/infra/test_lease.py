"""One driver per search (issue 24, item 2): the lease in a search's storage, on a disk and on S3.

The S3 half runs against moto's S3-compatible server on 127.0.0.1 (tests/infra/test_storage.py's
fixture), which honours ``If-None-Match: *`` on PUT as S3 does.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from pathlib import Path

import pytest
from test_storage import s3_server  # noqa: F401  (the module-scoped fixture, shared)

from ldlpose.infra import storage
from ldlpose.infra.lease import Lease, LeaseHeld


def _foreign(folder: str, generation: int, *, host="node-7", pid=4242, age_s=0.0, released=False) -> dict:
    """A lease another driver wrote: on another host unless ``host`` says otherwise."""
    stamp = time.time() - age_s
    record = {"holder": "other", "host": host, "pid": pid, "started": stamp - 60, "heartbeat": stamp,
              "period_s": 5.0, "released": released}
    if not storage.is_uri(folder):
        Path(folder).mkdir(parents=True, exist_ok=True)
    storage.write_bytes(Lease(folder, "x").file(generation), json.dumps(record).encode())
    return record


def _wait_until(condition, limit_s: float = 30.0) -> None:
    deadline = time.monotonic() + limit_s
    while not condition():
        assert time.monotonic() < deadline, "never happened"
        time.sleep(0.05)


@pytest.mark.parametrize("where", ["disk", "s3"])
def test_a_second_driver_is_refused_naming_the_holder_and_takes_the_lease_once_it_is_released(
        where, tmp_path, request):
    if where == "s3":
        request.getfixturevalue("s3_server")
        folder = f"s3://bucket/lease-{tmp_path.name}/search"
    else:
        folder = str(tmp_path / "search")
    first = Lease(folder, "search 'search' in results", period_s=0.2)
    with first:
        with pytest.raises(LeaseHeld) as refused:
            Lease(folder, "search 'search' in results").acquire()
        message = str(refused.value)
        assert f"host {socket.gethostname()}, pid {first.record['pid']}, since " in message
        assert "search 'search' in results is being run by another driver" in message
        assert "nothing was changed" in message
        # The heartbeat renews the lease while the driver runs.
        beat = first.record["started"]
        _wait_until(lambda: json.loads(storage.read_bytes(first.file(1)))["heartbeat"] > beat + 0.3)
    assert json.loads(storage.read_bytes(first.file(1)))["released"] is True
    with Lease(folder, "search") as second:  # released: taken at once
        assert second.generation == 2 and second.taken_over["holder"] == first.holder
        names = [i.base_name for i in storage.listing(folder)]
        assert names == ["ldlpose-lease-00000002.json"]  # the older generation is removed


@pytest.mark.parametrize("where", ["disk", "s3"])
def test_a_stale_lease_is_taken_over_and_a_fresh_one_of_another_host_is_not(where, tmp_path, request):
    if where == "s3":
        request.getfixturevalue("s3_server")
        folder = f"s3://bucket/stale-{tmp_path.name}/search"
    else:
        folder = str(tmp_path / "search")
    _foreign(folder, 1, age_s=5.0)  # another host, heartbeat 5 s ago: alive
    with pytest.raises(LeaseHeld, match="host node-7, pid 4242"):
        Lease(folder, "search").acquire()
    _foreign(folder, 1, age_s=31.0)  # no heartbeat for more than 6 periods of 5 s: its driver is gone
    with Lease(folder, "search") as taker:
        assert taker.generation == 2 and taker.taken_over["host"] == "node-7"


def test_a_lease_of_a_dead_process_on_this_host_is_taken_over_at_once(tmp_path):
    import subprocess
    import sys

    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True)
    folder = str(tmp_path / "search")
    _foreign(folder, 3, host=socket.gethostname(), pid=int(gone.stdout), age_s=0.0)  # fresh heartbeat, pid gone
    with Lease(folder, "search") as taker:
        assert taker.generation == 4


@pytest.mark.parametrize("where", ["disk", "s3"])
def test_drivers_racing_for_a_stale_lease_end_with_exactly_one_holder(where, tmp_path, request):
    """Contenders find the same stale lease at once: one takes it over, every other one is refused
    naming the winner's lease (on S3 through the conditional create, If-None-Match: *)."""
    if where == "s3":
        request.getfixturevalue("s3_server")
        folder = f"s3://bucket/race-{tmp_path.name}/search"
    else:
        folder = str(tmp_path / "search")
    _foreign(folder, 1, age_s=3600.0)
    contenders = 8
    start, won, refused, failed = threading.Barrier(contenders), [], [], []

    def contend():
        lease = Lease(folder, "search", period_s=60.0)
        start.wait()
        try:
            lease.acquire()
            won.append(lease)
        except LeaseHeld as err:
            refused.append(str(err))
        except Exception as err:  # anything else (a client that broke under threads) fails the test
            failed.append(repr(err))

    threads = [threading.Thread(target=contend) for _ in range(contenders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failed, failed
    assert len(won) == 1 and len(refused) == contenders - 1
    winner = won[0]
    assert winner.generation == 2 and winner.taken_over["holder"] == "other"
    for message in refused:
        assert f"host {socket.gethostname()}, pid {winner.record['pid']}" in message, message
        assert f"lease {winner.file(2)})" in message, message
    winner.release()


def test_a_holder_that_finds_its_lease_taken_over_stops(tmp_path):
    folder = str(tmp_path / "search")
    lost = threading.Event()
    holder = Lease(folder, "search", period_s=0.1, on_lost=lost.set)
    holder.acquire()
    _foreign(folder, holder.generation + 1)  # another driver took it while this one was frozen
    assert lost.wait(30) and holder.lost
    holder.release()  # releases nothing: the lease is the other driver's
    assert json.loads(storage.read_bytes(holder.file(2)))["holder"] == "other"


def test_create_exclusive_creates_once(tmp_path, s3_server):  # noqa: F811
    for location in (str(tmp_path / "once.json"), f"s3://bucket/{tmp_path.name}/once.json"):
        assert storage.create_exclusive(location, b"first")
        assert not storage.create_exclusive(location, b"second")
        assert storage.read_bytes(location) == b"first"


def test_ctrl_c_releases_the_lease(tmp_path):
    folder = str(tmp_path / "search")
    with pytest.raises(KeyboardInterrupt), Lease(folder, "search") as lease:
        raise KeyboardInterrupt  # what Ctrl-C raises in the driver's main thread
    assert json.loads(storage.read_bytes(lease.file(1)))["released"] is True
    with Lease(folder, "search") as after:  # the next driver starts at once
        assert after.generation == 2
