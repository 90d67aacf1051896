"""Phase timings of searches and training runs, for bench/trial_cost.py; off unless asked for.

With ``LDLPOSE_TRACE=<folder>`` in the environment (Ray passes it on to its workers), every process
appends one JSON line per finished phase to ``<folder>/<pid>.jsonl``: the phase's name, the trial
it belongs to, and its wall-clock start and end (``time.time()``, comparable across the processes
of one machine). Without it, :func:`phase` costs one dictionary lookup.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

ENV = "LDLPOSE_TRACE"


@contextlib.contextmanager
def phase(name: str, trial: str | None = None) -> Iterator[None]:
    folder = os.environ.get(ENV)
    if not folder:
        yield
        return
    start = time.time()
    try:
        yield
    finally:
        mark(name, trial, start, time.time())


def mark(name: str, trial: str | None, start: float, end: float | None = None) -> None:
    """Record a phase that began at ``start`` (and ended at ``end``; a moment when None)."""
    folder = os.environ.get(ENV)
    if not folder:
        return
    record = {"phase": name, "trial": trial, "start": start, "end": start if end is None else end,
              "pid": os.getpid()}
    path = Path(folder) / f"{os.getpid()}.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as out:
        out.write(json.dumps(record) + "\n")


def trial_of(run_dir: str | None) -> str | None:
    """The Tune trial id in a training run's folder name (``<search>-<trial id>``)."""
    return Path(run_dir).name.rsplit("-", 1)[-1] if run_dir else None


def read(folder) -> list[dict]:
    records = []
    for path in sorted(Path(folder).glob("*.jsonl")):
        records += [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return records
