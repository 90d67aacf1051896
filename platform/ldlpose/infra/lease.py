"""One driver per search: a lease in the search's storage folder, renewed by a heartbeat.

Two drivers on one search (a job resubmitted while the first still runs, a second terminal) would
restore the same Tune state, train the same trials into the same run folders and register twice.
So a driver holds a lease while it runs: a small JSON file in ``<storage>/<search>/`` naming its
holder (a random id), host, pid, start and last heartbeat, which a thread renews every
``period_s`` seconds. A second driver reads it and stops with :class:`LeaseHeld`, naming the holder.

A lease is *stale*, and taken over, when its holder released it, when its heartbeat is older than
``stale_after`` periods (the holder's node is gone or frozen; clocks of the nodes are assumed to
agree within seconds, as NTP keeps them), or at once when the holder ran on this host and its pid
is gone. Taking over must be safe when two drivers find the same stale lease at once, so leases
are numbered: ``ldlpose-lease-<generation>.json``, the highest generation being the lease. Taking
over generation *g* means creating *g+1* with :func:`ldlpose.infra.storage.create_exclusive` (a
hard link on a disk, a conditional PUT ``If-None-Match: *`` on S3): only one creator wins, the
other finds a live lease and stops. A holder whose heartbeat finds a newer generation has lost its
lease (it was frozen past the stale limit): it says so and interrupts its main thread, as Ctrl-C.
Released leases stay (marked released) until the next holder removes the older generations, so a
holder woken after a takeover always sees the newer one.
"""

from __future__ import annotations

import _thread
import json
import os
import socket
import sys
import threading
import time
import uuid
from datetime import datetime, timezone

from ldlpose.errors import LdlposeError
from ldlpose.infra import storage

PREFIX, SUFFIX = "ldlpose-lease-", ".json"
PERIOD_S = 5.0  # one small write per period: negligible next to a trial's checkpoints
STALE_AFTER = 6  # periods without a heartbeat: 30 s, longer than a storage hiccup, short next to a search


class LeaseHeld(LdlposeError):
    """Another live driver holds the search's lease."""


def _now() -> float:
    return time.time()


def _when(stamp: float) -> str:
    return datetime.fromtimestamp(stamp, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


class Lease:
    """``with Lease(folder, "search 'x' in /results"):`` holds the lease of ``folder`` for the block."""

    def __init__(self, folder: str, what: str, *, period_s: float = PERIOD_S, stale_after: int = STALE_AFTER,
                 on_lost=None):
        self.folder, self.what = folder, what
        self.period_s, self.stale_after = period_s, stale_after
        self.record: dict = {"holder": uuid.uuid4().hex, "host": socket.gethostname(), "pid": os.getpid(),
                       "started": _now(), "heartbeat": _now(), "period_s": period_s, "released": False}
        self.generation: int | None = None
        self.taken_over: dict | None = None  # the stale lease this one replaced, if any
        self.lost = False
        self._on_lost = on_lost or _thread.interrupt_main
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def holder(self) -> str:
        return self.record["holder"]

    def __enter__(self) -> Lease:
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    def file(self, generation: int) -> str:
        return storage.join(self.folder, f"{PREFIX}{generation:08d}{SUFFIX}")

    # -- taking and giving back ---------------------------------------------------------------------

    def acquire(self) -> None:
        """Take the lease, or raise :class:`LeaseHeld` naming the live holder."""
        for _ in range(10):  # each round lost to another taker finds its lease live next round
            generation, current = self._latest()
            if current is not None and self.live(current):
                raise LeaseHeld(self._refusal(current, generation))
            self.record["heartbeat"] = _now()
            if storage.create_exclusive(self.file(generation + 1), self._bytes()):
                self.generation, self.taken_over = generation + 1, current
                self._remove_older(generation + 1)
                self._thread = threading.Thread(target=self._beat, name="ldlpose-lease", daemon=True)
                self._thread.start()
                return
        raise LeaseHeld(f"{self.what}: could not take the lease in {self.folder}: other drivers kept taking it")

    def release(self) -> None:
        """Stop the heartbeat and mark the lease released (a next driver takes it at once)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self.generation is None or self.lost:
            return
        self.record["released"] = True
        try:
            storage.replace_bytes(self.file(self.generation), self._bytes())
        except Exception as err:  # storage gone at exit: the lease goes stale instead
            print(f"ldlpose: could not release the lease {self.file(self.generation)} ({err}); the next driver "
                  f"takes it over once it is stale ({self.stale_after * self.period_s:g} s)", file=sys.stderr)
        self.generation = None

    # -- reading ------------------------------------------------------------------------------------

    def _latest_generation(self) -> int:
        found = [_generation(i.base_name) for i in storage.listing(self.folder)]
        return max((g for g in found if g is not None), default=0)

    def _latest(self) -> tuple[int, dict | None]:
        """(highest generation, its record) in the folder; (0, None) where no lease was ever taken."""
        for _ in range(10):
            generations = [(_generation(i.base_name), i) for i in storage.listing(self.folder)]
            found = [(g, i) for g, i in generations if g is not None]
            if not found:
                return 0, None
            generation, info = max(found, key=lambda pair: pair[0])
            try:
                return generation, json.loads(storage.read_bytes(self.file(generation)))
            except (OSError, ValueError):
                if not storage.exists(self.file(generation)):
                    # Removed since the listing by a driver that took the lease over (_remove_older):
                    # its newer generation is there now. Judged by the old file's age, it would be
                    # refused naming no holder, or taken over once more.
                    continue
                # Unreadable (a scheme without atomic create, caught mid-write): judged by its age alone.
                stamp = info.mtime.timestamp() if info.mtime else _now()
                return generation, {"holder": "?", "host": "?", "pid": -1, "started": stamp, "heartbeat": stamp,
                                    "released": False}
        raise LeaseHeld(f"{self.what}: the lease in {self.folder} kept changing while it was read: other drivers "
                        "keep taking it")

    def live(self, record: dict) -> bool:
        if record.get("released"):
            return False
        if record.get("host") == self.record["host"] and record.get("pid", -1) > 0 \
                and not pid_alive(int(record["pid"])):
            return False
        period = float(record.get("period_s") or self.period_s)
        return _now() - float(record["heartbeat"]) <= self.stale_after * period

    def _refusal(self, current: dict, generation: int) -> str:
        ago = _now() - float(current["heartbeat"])
        return (f"{self.what} is being run by another driver: host {current['host']}, pid {current['pid']}, "
                f"since {_when(float(current['started']))} (last heartbeat {ago:.0f} s ago; lease "
                f"{self.file(generation)}). Two drivers would train the same trials into the same folders and "
                "register twice, so this one stops (nothing was changed). Wait for that driver to end, or stop it "
                f"(Ctrl-C in its terminal, `kill {current['pid']}` on {current['host']}, or `ray job stop` for a "
                "submitted search), then start this again; a driver that died is taken over without asking once "
                f"its heartbeat is {self.stale_after * self.period_s:g} s old (at once on the same host).")

    def _bytes(self) -> bytes:
        return json.dumps(self.record, sort_keys=True).encode() + b"\n"

    def _remove_older(self, generation: int) -> None:
        for item in storage.listing(self.folder):
            older = _generation(item.base_name)
            if older is not None and older < generation:
                try:
                    storage.delete(self.file(older))
                except OSError:
                    pass  # another taker removed it first

    # -- the heartbeat ------------------------------------------------------------------------------

    def _beat(self) -> None:
        warned = False
        while not self._stop.wait(self.period_s):
            assert self.generation is not None  # set before the thread starts
            try:
                if self._latest_generation() > self.generation:
                    self._lost()
                    return
                self.record["heartbeat"] = _now()
                storage.replace_bytes(self.file(self.generation), self._bytes())
                warned = False
            except Exception as err:  # storage unreachable: try again next period
                if not warned:
                    print(f"ldlpose: could not renew the lease {self.file(self.generation)} ({err}); retrying "
                          f"every {self.period_s:g} s", file=sys.stderr)
                    warned = True

    def _lost(self) -> None:
        self.lost = True
        print(f"ldlpose: {self.what}: another driver took this driver's lease over (its heartbeat was older than "
              f"{self.stale_after * self.period_s:g} s: this process was frozen or cut off from the storage); "
              "this driver stops so that the two do not train the same trials", file=sys.stderr, flush=True)
        self._on_lost()


def _generation(name: str) -> int | None:
    if not (name.startswith(PREFIX) and name.endswith(SUFFIX)):
        return None
    number = name[len(PREFIX):-len(SUFFIX)]
    return int(number) if number.isdigit() else None
