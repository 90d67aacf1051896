"""When retrying a failed run is futile: the same failure over and over, on either engine.

Under ``train.max_failures: -1`` a run is retried from its newest checkpoint without limit, except
that the same failure :data:`SAME_FAILURE_CAP` times in a row is final. ``ldlpose train`` on the
in-process engine counts its attempts in memory (ldlpose.train.run.fit_in_process). Everywhere else
an attempt runs in a process of its own (a Tune trial's next attempt, a Ray Train worker group
started again), so the failed attempts are recorded in the run's folder (:data:`FAILURES_FILE`),
where the next attempt finds them: an in-process trial records its own (run.fit_attempt), Ray Train's
controller records its workers' (ldlpose.train.ray_callbacks.RecordFailedAttempts). No Ray here.
"""

from __future__ import annotations

import json
from pathlib import Path

from ldlpose.errors import LdlposeError
from ldlpose.infra import storage
from ldlpose.train.checkpoints import latest_checkpoint

# Under train.max_failures: -1, the same failure (same error, same message, no new checkpoint since
# the last one) this many times in a row is final. A transient cause (a lost node, a full disk that
# was cleared, a flaky mount) rarely strikes three times at the same epoch with the same words; a
# deterministic one (a bug, a corrupt file the loop reads) always does, and would otherwise repeat
# forever, each time costing the epochs since the last checkpoint.
SAME_FAILURE_CAP = 3

# A run's failed attempts, oldest first, in its folder: [[error, message, checkpoint], ...].
FAILURES_FILE = "failed_attempts.json"

REPEATED = (f" {SAME_FAILURE_CAP} times in a row with the same error at the same checkpoint "
            "(train.max_failures: -1 retries any other failure without limit)")


class RepeatedFailure(LdlposeError):
    """A run failed the same way :data:`SAME_FAILURE_CAP` times in a row: retrying is futile."""


def signature(err: BaseException, run_dir: str) -> tuple:
    """What makes two failures the same: the error, its message and the checkpoint training had reached."""
    latest = latest_checkpoint(run_dir)
    return type(err).__name__, last_line(str(err)), None if latest is None else storage.name(str(latest))


def give_up(failures: list[tuple], max_failures: int) -> str | None:
    """After ``failures`` (oldest first): None to try again, else the words saying why not."""
    if 0 <= max_failures < len(failures):
        return ""
    if max_failures < 0 and _repeated(failures):
        return REPEATED
    return None


def _repeated(failures: list[tuple]) -> bool:
    return len(failures) >= SAME_FAILURE_CAP and len(set(failures[-SAME_FAILURE_CAP:])) == 1


def record_failure(run_dir: str, err: BaseException) -> None:
    """Append one failed attempt to the run's record."""
    history = [list(f) for f in _history(run_dir)] + [list(signature(err, run_dir))]
    if not storage.is_uri(run_dir):
        Path(run_dir).mkdir(parents=True, exist_ok=True)  # a failure before the first checkpoint
    storage.replace_bytes(storage.join(run_dir, FAILURES_FILE), json.dumps(history).encode())


def forget_failures(run_dir: str) -> None:
    """Start the run's record afresh: a run started again by hand (its cause perhaps fixed) gets
    :data:`SAME_FAILURE_CAP` new tries."""
    storage.delete(storage.join(run_dir, FAILURES_FILE))


def repeated_failure(run_dir: str) -> str | None:
    """The run's final error when its recorded attempts failed the same way :data:`SAME_FAILURE_CAP`
    times in a row, else None."""
    history = _history(run_dir)
    if not _repeated(history):
        return None
    kind, message, _ = history[-1]
    return f"training run {storage.name(run_dir)!r} failed{REPEATED}: {kind}: {message}"


def _history(run_dir: str) -> list[tuple]:
    location = storage.join(run_dir, FAILURES_FILE)
    if not storage.exists(location):
        return []
    return [tuple(f) for f in json.loads(storage.read_bytes(location))]


def last_line(text: str) -> str:
    """The last line naming an error in a (possibly multi-line, traceback-carrying) message."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    for line in reversed(lines):
        if "Error:" in line or "Failure:" in line:
            return line
    return lines[-1] if lines else "unknown error"
