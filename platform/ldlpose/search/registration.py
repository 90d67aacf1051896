"""The search's registration step: the chosen model filed in the registry through the tracking seam,
with the same entry and tags as ``ldlpose train --register`` (:mod:`ldlpose.selection.entry`).

One objective: the chosen trial, per benchmark, under the space's champion rule. Several objectives:
the whole Pareto front (:mod:`ldlpose.search.pareto`). A smoke test registers nothing.
"""

from __future__ import annotations

from ldlpose.data.identity import RunData
from ldlpose.search import console
from ldlpose.search.callback import TrackingCallback
from ldlpose.search.space import SearchSpace
from ldlpose.search.trials import objective_name, validation_split
from ldlpose.search.tuning import SearchOutcome


def register_chosen(callback: TrackingCallback, space: SearchSpace, ranked: list[dict], outcome: SearchOutcome,
                    best: dict, statistics: dict | None, data: RunData, smoke_test: bool) -> dict:
    """Register what the search chose; ``{benchmark: registration}`` (empty when nothing was registered here)."""
    if smoke_test:
        console.say(f"\nsmoke test {space.name}: nothing registered (a smoke test never registers a model); "
                    "the search itself runs without --smoke-test")
        return {}
    if space.search.objectives:  # several objectives: the whole Pareto front is registered
        from ldlpose.search import pareto

        pareto.report_front(callback, space, ranked, outcome, data.benchmark_identities())
        return {}
    return register(callback, space, best, data, statistics)


def register(callback: TrackingCallback, space: SearchSpace, best: dict, data: RunData,
             confirmation: dict | None = None) -> dict:
    """Register the chosen trial (chosen on validation data, never a test benchmark) per benchmark."""
    from ldlpose.selection.entry import registration_entry, selection

    # The selection identity recorded at the trial's finalisation; computed here only for trials
    # finalised before it was recorded.
    chosen_by = best.get("selection") or selection(objective_name(space), best["objective"],
                                                    validation_split(space, best["assignment"]))
    entry = registration_entry(best, chosen_by, data.benchmark_identities(), confirmation)
    return callback.tracker.register(entry, space.base_run.data.benchmarks, rule=space.search.champion.rule)


def registration_failed(callback: TrackingCallback, err: Exception, results: str) -> Exception:
    """End the parent run FAILED with the registration's error in a tag (unless the server is gone:
    then it stays RUNNING until ``--resume``); the one-line error for the user."""
    from ldlpose.tracking import TrackingError, require_reachable

    try:
        require_reachable(callback.uri)  # a server gone would cost minutes of MLflow's own retries
        callback.safely("search end", callback.tracker.finish, "FAILED", str(err))
    except TrackingError:
        pass
    return type(err)(f"{err}; the search's runs and models are kept: run the same command with --resume "
                     f"to register again (results: {results})")
