"""Running a preparation: readers in a process pool, rows streamed in order into shard writers.

A source module splits its input into :class:`Task` objects (small: file names, index ranges or a
chunk of npz images) and provides a module-level function turning one task's payload into a list
of rows and :class:`~ldlpose.data.records.Problem` objects. :func:`run` feeds the tasks to
``workers`` processes with at most a few tasks in flight per worker, so memory stays bounded
whatever the dataset's size, and writes results in task order, so shards are reproducible.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from ldlpose.data.records import Problem
from ldlpose.data.shards import PROBLEMS, ShardWriter

IN_FLIGHT_PER_WORKER = 3


@dataclass(frozen=True)
class Task:
    """One unit of work; ``target`` names the output it belongs to ("" for a single output).

    A payload that is a :class:`Problem` (a whole source file found unusable while listing the
    work) is reported in its place in the order, without a worker.
    """

    target: str
    payload: object
    items: int = 1  # for progress reports


def default_workers() -> int:
    """The CPUs this process may use (respects affinity masks and container CPU sets)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


class _Ready:
    """A result known without a worker: a source-level problem found while listing the tasks."""

    def __init__(self, value: list):
        self.value = value

    def get(self) -> list:
        return self.value


def _results(fn: Callable, tasks: Iterable[Task], workers: int) -> Iterator[tuple[Task, list]]:
    if workers <= 1:
        for task in tasks:
            yield task, ([task.payload] if isinstance(task.payload, Problem) else fn(task.payload))
        return
    # spawn, not fork: the caller may have torch (and its thread pools) loaded already.
    context = multiprocessing.get_context("spawn")
    with context.Pool(workers) as pool:
        pending: deque = deque()
        for task in tasks:
            if isinstance(task.payload, Problem):
                pending.append((task, _Ready([task.payload])))
            else:
                pending.append((task, pool.apply_async(fn, (task.payload,))))
            if len(pending) >= workers * IN_FLIGHT_PER_WORKER:
                done, result = pending.popleft()
                yield done, result.get()
        while pending:
            done, result = pending.popleft()
            yield done, result.get()


def run(fn: Callable, tasks: Iterable[Task], writers: dict[str, ShardWriter], *, workers: int,
        total: int | None = None, log=None) -> None:
    """Process every task and hand its rows and problems to ``writers[task.target]``.

    On an exception the writers are aborted (no manifest is written) and the exception propagates.
    """
    log = log or _stderr
    step = max(1000, (total or 0) // 10)
    done, next_report = 0, step
    try:
        for task, results in _results(fn, tasks, workers):
            writer = writers[task.target]
            for item in results:
                if isinstance(item, Problem):
                    writer.add_problem(item)
                    log(f"  skipped {item.key}: {item.kind}: {item.message}")
                else:
                    writer.add(item)
            done += task.items
            if done >= next_report:
                rows = sum(w.rows for w in writers.values())
                log(f"  {done}{'/' + str(total) if total else ''} files read, {rows} rows")
                next_report += step
    except BaseException:
        for writer in writers.values():
            writer.abort()
        raise


def summary(manifest: dict, out_dir: Path) -> str:
    """A few lines for the terminal: where the data went, its size, hash and problems."""
    errors = manifest["errors"]
    lines = [
        (f"{out_dir}: {manifest['rows']} rows, {manifest['subjects']} subjects, "
         f"{len(manifest['shards'])} shards, {manifest['content_hash'][:23]}"),
    ]
    beyond = manifest["angles_deg"].get("rows_beyond_180", 0)
    if beyond:
        lines.append(f"  {beyond} rows with an angle beyond +-180 degrees are stored and flagged "
                     f"(angles_deg.keys_beyond_180 in the manifest); benchmark filters leave them out")
    if errors["count"]:
        kinds = ", ".join(f"{k} {n}" for k, n in errors["by_kind"].items())
        lines.append(f"  {errors['count']} source files skipped ({kinds}); all listed in "
                     f"{out_dir / PROBLEMS} and the manifest")
    return "\n".join(lines)


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
