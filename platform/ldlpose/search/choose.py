"""The search's selection step: the model to register, chosen on validation data only.

With ``search.confirm.top_k`` the best configurations are trained again on new seeds and the best
mean wins (:mod:`ldlpose.search.confirm`); otherwise the best trial by the validation objective.
"""

from __future__ import annotations

from ldlpose.search import confirm, console
from ldlpose.search.callback import TrackingCallback
from ldlpose.search.finalise import close_orphans, finalise_all
from ldlpose.search.space import SearchSpace
from ldlpose.search.tuning import CONFIRM_SUFFIX, SearchOutcome, run_confirmation, trial_concurrency


def study(space: SearchSpace, ranked: list[dict]):
    """The finished trials as an Optuna study, for Optuna's plots of the search."""
    from ldlpose.search import optuna_space

    return optuna_space.study_of(space, [(c["assignment"], c["objective"]) for c in ranked])


def console_view(space: SearchSpace, name: str, total: int):
    """The compact view of a search (or its confirmation) for this cluster's concurrency."""
    import ray

    return console.view(space, name, total, trial_concurrency(space, ray.cluster_resources(), total))


def choose(space: SearchSpace, ranked: list[dict], outcome: SearchOutcome, search: TrackingCallback, storage: str,
           verbose: bool = True) -> tuple[dict, dict | None]:
    """The candidate to register and, after a confirmation, its seed statistics (None without one)."""
    if not space.search.confirm.top_k:
        return ranked[0], None
    best, statistics, rows = _confirm(space, ranked, outcome, search, storage, verbose)
    if rows:
        console.say(f"\nconfirmation over {space.search.confirm.seeds} new seeds (champion: best mean):\n")
        console.say(console.confirmation_table(rows, space))
    return best, statistics


def _confirm(space: SearchSpace, ranked: list[dict], outcome: SearchOutcome, search: TrackingCallback,
             storage: str, verbose: bool = True) -> tuple[dict, dict | None, list[dict]]:
    """Run the confirmation; (the candidate to register, its confirmation statistics, the table rows)."""
    by_id = {t.trial_id: t for t in outcome.trials}
    points = confirm.points(space, [by_id[c["trial_id"]] for c in ranked])
    callback = TrackingCallback(search.uri, space, search.start_info, search.storage, space.name + CONFIRM_SUFFIX,
                                points, search.eval_samples, search.tracker, search.driver)
    callback.replay()
    views = [] if verbose else [console_view(space, space.name + CONFIRM_SUFFIX, len(points))]
    confirmed = run_confirmation(space, points, storage=storage, callbacks=[callback, *views], verbose=verbose)
    reruns = finalise_all(callback, confirmed, space)
    close_orphans(callback, confirmed, "confirmation")
    rows = confirm.summarise(space, {c["trial_id"]: c for c in ranked}, reruns)
    if not rows:
        return ranked[0], None, rows
    best_row = rows[0]
    chosen = best_row["runs"][0]  # the configuration's best run on validation, its model registered
    statistics = {**best_row["stats"].as_dict(), "configuration": best_row["trial_id"],
                  "seeds": ",".join(str(c["assignment"].get("train.seed", "")) for c in best_row["runs"])}
    return chosen, statistics, rows
