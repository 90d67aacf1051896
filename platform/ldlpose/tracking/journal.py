"""The outbox's writes kept in the search's storage until MLflow has them, replayed on resume.

A driver SIGKILLed while its tracking server is down (an OOM kill, a lost head node) would lose
every write still queued in memory: each epoch's metrics of every trial that trained meanwhile,
which Tune's stored state does not bring back (a resumed search does not train finished epochs
again). So the writes that nothing else rebuilds (a trial's start with its params, each epoch's
metrics) are journaled as data in ``<storage>/<search>/ldlpose-outbox/`` before they are queued,
and marked delivered once MLflow took them; a resumed driver replays the undelivered ones first.
(A trial's finalisation and failure are rebuilt from stored state by the driver: search.trials.)

Each write has a sequence number. On a local or shared disk the journal is one JSONL file: a line
per write, and a ``{"delivered": seq}`` line when it is written (appended and fsynced: a line cut
short by a crash is ignored). On object storage, where objects cannot be appended to, a thread
puts the writes still undelivered every ``flush_s`` seconds as one object per batch, and the
delivered numbers as one object per batch; in the usual case (MLflow up) a write is delivered
before its batch is due and nothing is put at all. Once everything is delivered the journal is
removed.

Exactly once: a write is replayed only if no delivered mark follows it. A write MLflow took just
before the driver died, its mark not yet stored, is replayed once more; both kinds are idempotent
in MLflow: a trial's start finds its run, and a metric is stored once per (key, step, timestamp,
value), the timestamp being the epoch's report time kept in the journal.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

from ldlpose.infra import storage

FOLDER = "ldlpose-outbox"
FILE = "writes.jsonl"
FLUSH_S = 2.0


class Journal:
    """Writes (JSON-able dicts) numbered, stored, marked delivered; see the module's docstring."""

    def __init__(self, folder: str, flush_s: float = FLUSH_S):
        self.folder, self.flush_s = folder, flush_s
        self.local = not storage.is_uri(folder)
        self._lock = threading.Lock()
        self._unflushed: dict[int, dict] = {}  # object storage: written here, not yet put
        self._marks: list[int] = []  # object storage: delivered, not yet put
        self._batches = 0
        self._flusher: threading.Thread | None = None
        records, delivered = self._read()
        self.next_seq = max([*(r["seq"] for r in records), *delivered], default=0) + 1

    # -- reading ------------------------------------------------------------------------------------

    def undelivered(self) -> list[dict]:
        """The stored writes without a delivered mark, in the order they were made."""
        records, delivered = self._read()
        return sorted((r for r in records if r["seq"] not in delivered), key=lambda r: r["seq"])

    def _read(self) -> tuple[list[dict], set[int]]:
        lines: list[str] = []
        if self.local:
            path = Path(self.folder) / FILE
            if path.is_file():
                lines = path.read_text().splitlines()
        else:
            for item in storage.listing(self.folder):
                if item.base_name.endswith(".jsonl"):
                    lines += storage.read_bytes(storage.join(self.folder, item.base_name)).decode().splitlines()
        records, delivered = [], set()
        for line in lines:
            try:
                entry = json.loads(line)
            except ValueError:
                continue  # the last line of a driver killed mid-append
            if "delivered" in entry:
                delivered.add(int(entry["delivered"]))
            elif "seq" in entry:
                records.append(entry)
        return records, delivered

    # -- writing ------------------------------------------------------------------------------------

    def append(self, record: dict) -> dict:
        """Store ``record`` under the next sequence number; the record as stored (with ``seq``)."""
        with self._lock:
            entry = {**record, "seq": self.next_seq}
            self.next_seq += 1
            if self.local:
                self._append_lines([entry])
            else:
                self._unflushed[entry["seq"]] = entry
                self._start_flusher()
        return entry

    def delivered(self, seq: int) -> None:
        with self._lock:
            if self.local:
                self._append_lines([{"delivered": seq}])
            elif self._unflushed.pop(seq, None) is None:  # put in a batch: its mark must be put too
                self._marks.append(seq)

    def _append_lines(self, entries: list[dict]) -> None:
        path = Path(self.folder) / FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a") as file:
            file.write("".join(json.dumps(e, sort_keys=True) + "\n" for e in entries))
            file.flush()
            os.fsync(file.fileno())

    def flush(self) -> None:
        """Object storage: put what is undelivered as one batch, and the delivered marks as another."""
        with self._lock:
            records, self._unflushed = self._unflushed, {}
            marks, self._marks = self._marks, []
        try:
            self._put("writes", list(records.values()))
            records = {}
            self._put("delivered", [{"delivered": seq} for seq in marks])
        except Exception:
            with self._lock:  # kept for the next flush (a write delivered meanwhile is simply put once more)
                self._unflushed = {**records, **self._unflushed}
                self._marks = marks + self._marks
            raise

    def _put(self, prefix: str, entries: list[dict]) -> None:
        if not entries:
            return
        self._batches += 1
        first = entries[0].get("seq", entries[0].get("delivered", 0))
        name = f"{prefix}-{first:09d}-{os.getpid()}-{self._batches:06d}.jsonl"
        storage.write_bytes(storage.join(self.folder, name),
                            "".join(json.dumps(e, sort_keys=True) + "\n" for e in entries).encode())

    def _start_flusher(self) -> None:
        if self._flusher is None:
            self._flusher = threading.Thread(target=self._flush_every, name="ldlpose-outbox-journal", daemon=True)
            self._flusher.start()

    def _flush_every(self) -> None:
        while True:
            threading.Event().wait(self.flush_s)
            try:
                self.flush()
            except Exception:  # storage unreachable: kept in memory, put at the next flush
                pass

    def settle(self) -> None:
        """Put what is pending; remove the journal where everything in it is delivered, else keep it
        for the resume."""
        if not self.local:
            self.flush()
        if not self.undelivered():
            storage.delete(self.folder)
