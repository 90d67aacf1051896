"""The search's step after Tune returns: every finished trial finalised from stored state, its candidates
ranked; runs a killed driver left open closed (:mod:`ldlpose.search.trials` does the work per trial)."""

from __future__ import annotations

from ldlpose.search import console, trials
from ldlpose.search.callback import TrackingCallback
from ldlpose.search.space import SearchSpace
from ldlpose.search.tuning import SearchOutcome


def finalise_all(callback: TrackingCallback, outcome: SearchOutcome, space: SearchSpace) -> list[dict]:
    """Finalise every finished trial from stored state; their candidates, best objective first."""
    callback.drain()
    candidates = []
    for trial in outcome.trials:
        if trial.status == "ERROR":
            record = callback.safely("trial record", callback.tracker.trial_record, trial.trial_id)
            if record is None or record["status"] != "FAILED":
                callback.safely(f"trial {trial.trial_id} end", callback.tracker.end_run, trial.trial_id,
                                "FAILED", {}, trial.error, None, None)
            continue
        callback.safely(f"trial {trial.trial_id} finalisation", trials.finalise, callback.tracker, trial, space,
                        callback.eval_samples)
        found = callback.safely(f"trial {trial.trial_id} record", trials.candidate, callback.tracker, trial, space)
        if found is not None:
            candidates.append({**found, "confirms": trial.confirms})
        elif trial.metrics.get(outcome.objective) is not None:
            callback.problems.append(f"trial {trial.trial_id} has no logged model")
    return sorted(candidates, key=lambda c: c["objective"])


def close_orphans(callback: TrackingCallback, outcome: SearchOutcome, role: str = "trial") -> list[str]:
    """Close the runs of ``role`` whose trials Tune does not know (a killed driver's; search.trials)."""
    known = {t.trial_id for t in outcome.trials}
    closed = callback.safely("orphaned runs", trials.close_orphans, callback.tracker, known, role,
                             callback.owner_tags()) or []
    if closed:
        console.say(f"closed {len(closed)} MLflow run(s) as KILLED whose trials a killed driver had started after "
                    f"Tune last saved its state: {', '.join(closed)}")
    return closed
