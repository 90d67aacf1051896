"""What a finished trial leaves behind, rebuilt from stored state only: Tune's results and MLflow.

A trial is *finalised* once its selected checkpoint (the best epoch by the search objective) has
been scored on the test benchmarks, logged as a model and recorded on its MLflow run. The tracking
callback finalises trials as they finish; the search driver does it again for every finished trial
after Tune returns, which is a no-op for those already done and catches the ones a killed driver
never reached. Nothing here lives only in memory.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path

from ldlpose.data.identity import RunData
from ldlpose.infra import trace
from ldlpose.infra.files import sha256_file
from ldlpose.infra.locations import redact
from ldlpose.search.space import SearchSpace
from ldlpose.selection.entry import SELECTION_TAG, identity_tags, selection, selection_tags
from ldlpose.tracking import TAG_MODEL_URI, TAG_ROLE, TAG_SELECTED_EPOCH, TAG_SELECTED_SHA, SearchTracking
from ldlpose.train.checkpoints import CHECKPOINT_FILE, Selected, select_checkpoint
from ldlpose.train.evaluation import selected_scores


@dataclass(frozen=True)
class TrialSummary:
    trial_id: str
    status: str  # TERMINATED (finished or stopped early by ASHA) or ERROR
    assignment: dict  # the sampled parameters, by public name (ldlpose.search.names)
    metrics: dict  # the last result Tune holds
    error: str | None
    run_dir: str  # the trial's training run: its checkpoints live here
    confirms: str | None = None  # a confirmation run: the trial whose configuration it repeats


def objective_name(space: SearchSpace) -> str:
    """The metric that chooses models: the first objective, a validation metric."""
    return space.objectives[0].name


def objective_key(space: SearchSpace) -> str:
    """The Tune metric of a search: its validation objective at the selected epoch so far."""
    return f"selected_{objective_name(space)}"


def sampled_values(assignment: dict, *, backbone: bool = False) -> str:
    """A trial's sampled values, short, in the order of their full names: ``sigma=2.1 lr=0.00316``.

    Each value goes by the last part of its name; the method is left to the caller (a column of
    its own, or the line's start), and so is the backbone unless ``backbone``.
    """
    hidden = {"method", "grid_point"} | (set() if backbone else {"model.backbone"})
    return " ".join(f"{name.split('.')[-1]}={_short(value)}" for name, value in sorted(assignment.items())
                    if name not in hidden and not name.startswith("_"))


def _short(value) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def run_name(method: str, assignment: dict, number: int, confirms: str | None = None) -> str:
    """A trial's name in MLflow's run list: its method, its sampled values to two digits and its
    number in the search, ``gldl sigma=2.1 lr=5.2e-3 #3``; a confirmation run adds the trial it
    repeats. Only people read it: runs are found by their trial id tag."""
    hidden = {"method", "grid_point"}
    values = " ".join(f"{key.split('.')[-1]}={_two_digits(value)}" for key, value in sorted(assignment.items())
                      if key not in hidden and not key.startswith("_"))
    name = " ".join(part for part in (method, values, f"#{number}") if part)
    return (name + (f" (confirms {confirms})" if confirms else ""))[:250]


def _two_digits(value) -> str:
    """Two significant digits, in scientific notation outside [0.01, 1000): 2.1, 0.05, 5.2e-3."""
    if isinstance(value, bool) or not isinstance(value, float):
        return str(value)
    if value == 0 or not math.isfinite(value):
        return f"{value:g}"
    exponent = math.floor(math.log10(abs(value)))
    if -2 <= exponent < 3:
        text = f"{value:.{max(0, 1 - exponent)}f}"
        return text.rstrip("0").rstrip(".") if "." in text else text
    mantissa, power = f"{value:.1e}".split("e")
    return f"{mantissa}e{int(power)}"


def select(trial: TrialSummary, space: SearchSpace) -> Selected | None:
    """The trial's best readable checkpoint by the objective.

    A trial Tune stopped (ASHA) may still be finishing an epoch when it is finalised (Ray 2.60 stops
    trial drivers gracefully; the run stops at its next epoch, see train.checkpoints.STOP_FILE), so
    the run folder can gain one more checkpoint, and lose one to retention, meanwhile. Every
    candidate is validation-scored and complete when read, and the one chosen is recorded with its
    epoch and sha256, so the trial is judged by a checkpoint that exists.
    """
    return select_checkpoint(trial.run_dir, objective_name(space))


def finalise(tracker: SearchTracking, trial: TrialSummary, space: SearchSpace, eval_samples=None,
             attempts: int = 3) -> bool:
    """Score, log and record the trial's selected checkpoint unless MLflow already has it; True if done now."""
    from ldlpose.errors import DataError

    for attempt in range(attempts):
        try:
            return _finalise(tracker, trial, space, eval_samples)
        except (DataError, FileNotFoundError):  # the selected checkpoint was replaced while we read it
            if attempt == attempts - 1:
                raise
            time.sleep(2.0)
    return False


def _finalise(tracker: SearchTracking, trial: TrialSummary, space: SearchSpace, eval_samples) -> bool:
    selected = select(trial, space)
    if selected is None:
        return False
    digest = sha256_file(Path(selected.path) / CHECKPOINT_FILE)
    record = tracker.trial_record(trial.trial_id)
    if record is not None and record["tags"].get(TAG_SELECTED_SHA) == digest:
        return False
    with trace.phase("end.model", trial.trial_id):
        tracker.log_model(trial.trial_id, selected.path)
    if eval_samples:
        with trace.phase("end.plots", trial.trial_id):
            tracker.log_trial_artifacts(trial.trial_id, selected.path, eval_samples)
    with trace.phase("end.test_scores", trial.trial_id):  # already measured unless the loop could not
        scores = selected_scores(selected, trial.metrics, space.base_run.data.benchmarks)
    with trace.phase("end.mlflow", trial.trial_id):
        tracker.record_selection(trial.trial_id, selected.epoch, scores, digest, run_tags(space, trial))
        tracker.end_run(trial.trial_id, "FINISHED", _numeric(trial.metrics), None,
                               trial.metrics.get("node_id"), trial.metrics.get("device"))
    return True


def candidate(tracker: SearchTracking, trial: TrialSummary, space: SearchSpace) -> dict | None:
    """What the registry needs of a finalised trial, read back from MLflow; None if it has no model."""
    record = tracker.trial_record(trial.trial_id)
    if record is None or not record["tags"].get(TAG_MODEL_URI):
        return None
    tags, metrics = record["tags"], record["metrics"]
    objective = objective_name(space)
    value = metrics.get(f"selected_{objective}")
    if value is None:
        return None
    run = space.run_config(trial.assignment)
    found = {"trial_id": trial.trial_id, "run_id": record["run_id"], "model_uri": tags[TAG_MODEL_URI],
             "method": run.method.name, "backbone": run.model.backbone, "assignment": trial.assignment,
             "selected_epoch": int(tags.get(TAG_SELECTED_EPOCH, 0)), "objective": float(value),
             "scores": {k[len("selected_"):]: v for k, v in metrics.items() if k.startswith("selected_")
                        and k != "selected_epoch"}}
    if tags.get(f"{SELECTION_TAG}.content_hash"):  # recorded when the trial was finalised
        found["selection"] = selection(objective, float(value), {
            "name": tags[f"{SELECTION_TAG}.split"], "rows": int(tags[f"{SELECTION_TAG}.rows"]),
            "content_hash": tags[f"{SELECTION_TAG}.content_hash"]})
    return found


def validation_split(space: SearchSpace, assignment: dict) -> dict:
    """The validation rows that judged a trial of ``assignment`` (its data section may be searched too)."""
    return RunData.of(space.run_config(assignment).data).validation_split()


def run_tags(space: SearchSpace, trial: TrialSummary) -> dict[str, str]:
    """A finalised trial's tags: what its test scores were measured on and the validation rows that judged it
    (the same tags as ``ldlpose train``'s, ldlpose.selection.entry)."""
    identities = RunData.of(space.base_run.data).benchmark_identities()
    return {**identity_tags(identities), **selection_tags(validation_split(space, trial.assignment))}


# Why a run is closed as KILLED by close_orphans (its ldlpose.failure_reason tag).
ORPHAN_REASON = ("orphaned: its trial was started by a search driver that was killed before Tune saved its "
                 "state, so the resumed search never knew the trial; it was never finished and has no model")
TAG_STORAGE = "ldlpose.storage"  # on a trial's run: the search's folder (password redacted) it trains in
TAG_DRIVER = "ldlpose.driver"  # on a trial's run: the lease holder id of the driver that started it


def close_orphans(tracker: SearchTracking, known: set[str], role: str,
                  owner: dict[str, str] | None = None) -> list[str]:
    """Close as KILLED the search's runs of ``role`` still RUNNING whose trial is not in ``known``.

    After a driver is killed outright and the search resumed, Tune knows only the trials of its last
    saved state: a trial started after it is gone with the driver (its workers die with their owner),
    while its MLflow run would say RUNNING for ever. Called once Tune has returned and every known
    trial is finalised, so a RUNNING run left over is such an orphan. The trial ids of those closed.

    ``owner``: this driver's :data:`TAG_STORAGE` and :data:`TAG_DRIVER`. A same-named search in
    another storage shares the MLflow experiment and parent run; its runs (another storage tag) are
    live, not orphans, and are left alone, as are this driver's own. Runs from before these tags
    carry neither and are judged as before.
    """
    closed = []
    for trial_id in tracker.trial_ids():
        if trial_id in known:
            continue
        record = tracker.trial_record(trial_id)
        if record is None or record["status"] != "RUNNING" or record["tags"].get(TAG_ROLE) != role:
            continue
        if owner and not _orphan_of(record["tags"], owner):
            continue
        tracker.end_run(trial_id, "KILLED", {}, ORPHAN_REASON)
        closed.append(trial_id)
    return closed


def _orphan_of(tags: dict, owner: dict[str, str]) -> bool:
    """Whether a run with ``tags`` was started in ``owner``'s storage by an earlier driver of it."""
    if tags.get(TAG_STORAGE, owner[TAG_STORAGE]) != owner[TAG_STORAGE]:
        return False
    return not (owner.get(TAG_DRIVER) and tags.get(TAG_DRIVER) == owner[TAG_DRIVER])


def _numeric(result: dict) -> dict:
    return {k: v for k, v in result.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


def error_text(error) -> str:
    """The last line of an error (or its text) that names an error: what a user needs to see, with
    any URI's password redacted (an error reading the storage quotes its URI)."""
    text = redact(str(error)).strip()
    lines = [line for line in text.splitlines() if "Error" in line]
    return (lines[-1] if lines else text.splitlines()[-1] if text else type(error).__name__).strip()


def trial_error(trial) -> str:
    """The reason a Tune trial failed, from its error file (or message)."""
    path = getattr(trial, "error_file", None) or ""
    text = Path(path).read_text() if path and Path(path).is_file() else str(getattr(trial, "error_msg", ""))
    return error_text(text) if text else "unknown error"
