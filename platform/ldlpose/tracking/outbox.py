"""Writes to MLflow that outlive a tracking-server outage: one ordered, bounded queue on one thread.

A search must neither fail nor wait while its tracking server is down (restarted, its database
failing over, the network between). Every write of a search (a trial's start, each epoch's metrics,
a finished trial's model and scores) is queued here and written in order by one background thread.
While the server is unreachable the thread retries the write at the head of the queue with
exponential backoff (1 s doubling to ``retry_max_s``) and everything behind it waits; one warning
says so when the outage starts and one line when it ends. Writes that fail for another reason (the
server refused them) are not retried: they are reported as problems, as before.

The queue holds at most ``capacity`` writes (a search's epochs are a few hundred bytes each, so the
default covers hours of outage); beyond that new writes are dropped, and named in the error at the
end. :meth:`Outbox.drain` waits until everything is written; if the server is still unreachable
``grace_s`` seconds into the drain, it gives up and names every write that never reached MLflow.

Writes given with a ``record`` (a trial's start, each epoch's metrics: the ones nothing else
rebuilds) are also journaled in the search's storage until MLflow has them
(:mod:`ldlpose.tracking.journal`), so a driver killed during an outage loses none of them: the
resumed driver replays them.

MLflow's own client retries a failed request 7 times with doubling backoff (about four minutes)
and waits 120 s for a response, which would hide an outage from this queue for minutes and keep
the warning from being timely; :func:`quick_failing_http` shortens both for this process unless
the user set them (``MLFLOW_HTTP_REQUEST_MAX_RETRIES``, ``..._BACKOFF_FACTOR``, ``..._TIMEOUT``).
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from ldlpose.tracking._common import TrackingError, _short, redact
from ldlpose.tracking.journal import Journal

CAPACITY = 10_000
RETRY_FIRST_S, RETRY_MAX_S = 1.0, 15.0
_THREAD = "ldlpose-mlflow-writer"
GRACE_S = 180.0  # how long the end of a search waits for a server that is still down
_HTTP_DEFAULTS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
                  "MLFLOW_HTTP_REQUEST_TIMEOUT": "60"}


def quick_failing_http() -> None:
    """A refused connection fails in about 3 s instead of 4 minutes; the outbox does the retrying."""
    for key, value in _HTTP_DEFAULTS.items():
        os.environ.setdefault(key, value)


class _QuietRetries(logging.Filter):
    """urllib3 logs a warning per failed attempt; on the writing thread the outbox's own warning
    says it once per outage instead."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.threadName == _THREAD and record.getMessage().startswith("Retrying"))


def _quiet_retries() -> None:
    logger = logging.getLogger("urllib3.connectionpool")
    if not any(isinstance(f, _QuietRetries) for f in logger.filters):
        logger.addFilter(_QuietRetries())


def unreachable(err: BaseException) -> bool:
    """Whether ``err`` (or an error it wraps) says the server could not be reached or did not answer,
    as opposed to a server that answered and refused the write."""
    import requests

    transient = (ConnectionError, TimeoutError, requests.exceptions.ConnectionError,
                 requests.exceptions.Timeout, requests.exceptions.RetryError)
    seen = set()
    current: BaseException | None = err
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, transient):
            return True
        text = str(current)
        # MLflow wraps the requests error into a message (raised without `from`).
        if text.startswith("API request to") and ("failed with exception" in text
                                                  or "failed with timeout exception" in text):
            return True
        if getattr(current, "error_code", None) == "TEMPORARILY_UNAVAILABLE":
            return True
        current = current.__cause__ or current.__context__
    return False


@dataclass
class _Write:
    what: str  # e.g. "trial 3f2a_00001 result"
    detail: str  # e.g. "epoch 3"; grouped under `what` when writes are listed
    fn: Callable[[], object]
    seq: int | None = None  # its number in the journal, where it is journaled


def describe(writes: list[_Write]) -> str:
    """``trial a result (epoch 1, epoch 2); trial a completion``: grouped, in the order first queued."""
    groups: dict[str, list[str]] = {}
    for write in writes:
        groups.setdefault(write.what, [])
        if write.detail:
            groups[write.what].append(write.detail)
    return "; ".join(f"{what} ({', '.join(details)})" if details else what for what, details in groups.items())


class Outbox:
    """``put`` writes to run in order on a background thread; ``drain`` waits for them.

    ``problems`` receives one line per write the server refused, per batch dropped for a full queue,
    and for what was never written.
    """

    def __init__(self, uri: str, problems: list[str], *, capacity: int = CAPACITY,
                 retry_first_s: float = RETRY_FIRST_S, retry_max_s: float = RETRY_MAX_S, grace_s: float = GRACE_S,
                 stream=None, journal: Journal | None = None):
        self.uri, self.problems, self.capacity = uri, problems, capacity
        self.journal = journal  # where writes given as records outlive this process (tracking.journal)
        self.retry_first_s, self.retry_max_s, self.grace_s = retry_first_s, retry_max_s, grace_s
        self._stream = stream
        self._queue: deque[_Write] = deque()
        self._dropped: list[_Write] = []
        self._busy = False  # the head write is being attempted
        self._down_since: float | None = None
        self._give_up_at: float | None = None
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None
        self.outages = 0
        quick_failing_http()
        _quiet_retries()

    # -- the caller's side ------------------------------------------------------------------------

    def put(self, what: str, fn: Callable[[], object], detail: str = "", record: dict | None = None) -> bool:
        """Queue ``fn``; False (and the write is dropped, and listed at the end) when the queue is full.

        ``record``: the write as data, journaled before it is queued (one with a ``seq`` is a replay
        of a journaled write, not journaled again); see :mod:`ldlpose.tracking.journal`.
        """
        seq = self._journaled(what, record)
        with self._wake:
            if len(self._queue) >= self.capacity:
                if not self._dropped:
                    self._say(f"the MLflow write buffer is full ({self.capacity} writes) while {self.uri} is "
                              "unreachable; newer writes are dropped and will be listed when the search ends")
                self._dropped.append(_Write(what, detail, fn, seq))
                return False
            self._queue.append(_Write(what, detail, fn, seq))
            self._start()
            self._wake.notify_all()
            return True

    def _journaled(self, what: str, record: dict | None) -> int | None:
        if record is None or self.journal is None:
            return None
        if "seq" in record:
            return int(record["seq"])
        try:
            return int(self.journal.append(record)["seq"])
        except Exception as err:  # the storage is down too: the write goes on in memory alone
            self.problems.append(f"{what}: not journaled in {self.journal.folder} ({_short(err)}); "
                                 "written if MLflow is reached before this driver ends")
            return None

    def _done(self, write: _Write) -> None:
        if write.seq is not None and self.journal is not None:
            try:
                self.journal.delivered(write.seq)
            except Exception:  # unmarked: replayed on resume, which MLflow takes as the same write
                pass

    def pending(self) -> int:
        with self._wake:
            return len(self._queue)  # the write being attempted stays at the head until it is done

    def drain(self, grace_s: float | None = None) -> None:
        """Wait until every queued write is done. If the server is unreachable ``grace_s`` seconds
        from now (or stays so), give up: the writes left are named in ``problems``."""
        grace = self.grace_s if grace_s is None else grace_s
        with self._wake:
            self._give_up_at = time.monotonic() + grace
            self._wake.notify_all()
            while self._queue or self._busy:
                self._wake.wait(0.5)
            self._give_up_at = None
            if self.journal is not None:
                try:
                    self.journal.settle()
                except Exception as err:
                    self.problems.append(f"the MLflow write journal in {self.journal.folder}: {_short(err)}")
            if self._dropped:
                self.problems.append(str(TrackingError(
                    f"the MLflow write buffer was full ({self.capacity} writes) while {self.uri} was unreachable; "
                    f"dropped, never written: {describe(self._dropped)}")))
                self._dropped = []

    # -- the writing thread -----------------------------------------------------------------------

    def _start(self) -> None:
        if self._thread is None:  # one thread for the outbox's life (a daemon: it never blocks an exit)
            self._thread = threading.Thread(target=self._run, name=_THREAD, daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._queue:
                    self._wake.wait()
                write, self._busy = self._queue[0], True
            try:
                self._attempt(write)
            finally:
                with self._wake:
                    self._busy = False
                    self._wake.notify_all()

    def _attempt(self, write: _Write) -> None:
        """Write the head of the queue, retrying while the server is unreachable; then pop it."""
        delay = self.retry_first_s
        while True:
            try:
                write.fn()
                break
            except Exception as err:
                if not unreachable(err):  # the server answered and refused: retrying cannot help
                    self.problems.append(f"{write.what}{' ' + write.detail if write.detail else ''}: {_short(err)}")
                    break  # done with: replaying it would be refused again
                self._outage(err)
                if self._wait_or_give_up(delay):
                    return
                delay = min(delay * 2, self.retry_max_s)
        self._done(write)
        with self._wake:
            self._queue.popleft()
        if self._down_since is not None:
            self._say(f"MLflow at {self.uri} is reachable again after {time.monotonic() - self._down_since:.0f} s; "
                      f"writing the {self.pending()} buffered writes")
            self._down_since = None

    def _outage(self, err: Exception) -> None:
        if self._down_since is None:
            self._down_since = time.monotonic()
            self.outages += 1
            self._say(f"MLflow at {self.uri} is unreachable ({_short(err)}); the search goes on and its writes "
                      f"are buffered (up to {self.capacity}) and retried every "
                      f"{self.retry_first_s:g}-{self.retry_max_s:g} s")

    def _wait_or_give_up(self, delay: float) -> bool:
        """Sleep ``delay`` (a drain may cut it short); True when the drain's grace is over."""
        with self._wake:
            end = time.monotonic() + delay
            while True:
                now = time.monotonic()
                if self._give_up_at is not None and now >= self._give_up_at:
                    assert self._down_since is not None  # _outage set it before this wait
                    lost = list(self._queue)
                    self._queue.clear()
                    self.problems.append(str(TrackingError(
                        f"MLflow at {self.uri} stayed unreachable until the search ended "
                        f"({time.monotonic() - self._down_since:.0f} s); never written: {describe(lost)}"
                        f"{self._kept(lost)}")))
                    self._down_since = None
                    return True
                if now >= end:
                    return False
                self._wake.wait(min(0.5, end - now))

    def _kept(self, lost: list[_Write]) -> str:
        if self.journal is None or not any(w.seq is not None for w in lost):
            return ""
        return (f" (the starts and epoch metrics among them are kept in {self.journal.folder} and written when "
                "the search is resumed with --resume)")

    def _say(self, message: str) -> None:
        print(f"ldlpose: {redact(message)}", file=self._stream or sys.stderr, flush=True)  # names the URI
