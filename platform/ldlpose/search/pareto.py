"""The Pareto front of a multi-objective search: which trials are on it, the report, the plot, registration.

All objectives are minimised: the validation error of each trial's selected checkpoint first, then
the costs measured on that checkpoint (latency, parameters, MACs; ldlpose.inference.profile). A trial
is on the front when no other finished trial is at least as good on every objective and strictly
better on one. Test benchmarks never enter the front or the champion rule; they are only reported.

Every front member is registered as a version of ``headpose-<benchmark>`` tagged
``ldlpose.pareto = true`` with its values; ``champion`` then follows ``search.champion.rule`` among
those and the earlier comparable versions (ldlpose.tracking.registry). As with one objective, all of
it is rebuilt from stored state: the candidates from MLflow, the costs from Tune's results.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence

from ldlpose.search import console
from ldlpose.search.space import SearchSpace

__all__ = ["dominates", "front_rows", "non_dominated", "report_front"]

# What a multi-objective trial's last result carries besides its metrics (ldlpose.search.tuning).
PROFILE_KEYS = ("latency_ms", "latency_p90_ms", "latency_batch_ms", "latency_batch_p90_ms", "latency_batch_size",
                "params_m", "macs_m", "profile_device", "profile_device_name", "profile_epoch")


def dominates(a: Sequence[float], b: Sequence[float]) -> bool:
    """Whether ``a`` is at least as good as ``b`` on every objective and better on one (minimising)."""
    return all(x <= y for x, y in zip(a, b)) and any(x < y for x, y in zip(a, b))


def non_dominated(points: Sequence[Sequence[float]]) -> list[int]:
    """Indices of the points no other point dominates; equal points are all kept (none is better)."""
    return [i for i, p in enumerate(points) if not any(dominates(q, p) for j, q in enumerate(points) if j != i)]


def finite(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def front_rows(space: SearchSpace, ranked: list[dict], costs_of) -> list[dict]:
    """Each candidate (best objective first) with its ``costs``, objective ``values`` and ``pareto`` flag.

    ``costs_of(trial_id)`` gives the trial's stored result (PROFILE_KEYS among its keys). A trial
    lacking a value (its costs were never measured) cannot be compared, so it is not on the front.
    """
    names = [o.name for o in space.objectives]
    rows = []
    for candidate in ranked:
        result = costs_of(candidate["trial_id"]) or {}
        costs = {k: result[k] for k in PROFILE_KEYS if k in result}
        values = {names[0]: candidate["objective"], **{n: costs.get(n) for n in names[1:]}}
        rows.append({**candidate, "costs": costs, "values": values})
    complete = [r for r in rows if all(finite(v) for v in r["values"].values())]
    members = {complete[i]["trial_id"] for i in non_dominated([[r["values"][n] for n in names] for r in complete])}
    return [{**r, "pareto": r["trial_id"] in members} for r in rows]


def _entry(space: SearchSpace, row: dict, identities: dict[str, dict]) -> dict:
    """What the registry records of one front member (see tracking.registry.register_front)."""
    from ldlpose.search.trials import validation_split
    from ldlpose.selection.entry import registration_entry, selection

    split = validation_split(space, row["assignment"])
    profile = {k: v for k, v in row["costs"].items() if k != "profile_epoch"}
    candidate = {k: row[k] for k in ("trial_id", "run_id", "model_uri", "method", "backbone", "selected_epoch",
                                     "scores", "assignment")}
    entry = registration_entry(candidate, selection(space.objectives[0].name, row["objective"], split), identities)
    return {**entry, "profile": profile, "pareto": [o.name for o in space.objectives]}


def _plot(callback, space: SearchSpace, rows: list[dict]) -> list[str]:
    """MAE against latency (or the second objective), marker area by parameter count; with the front as JSON."""
    from ldlpose.report import figures as plots

    names = [o.name for o in space.objectives]
    x = "latency_ms" if "latency_ms" in names else names[1]
    drawn = [r for r in rows if finite(r["values"].get(x, r["costs"].get(x))) and finite(r["objective"])]
    points = [{"label": f"{r['backbone']} {r['trial_id'][-5:]}", "pareto": r["pareto"], x: r["costs"][x],
               names[0]: r["objective"], "params_m": r["costs"].get("params_m", 1.0)} for r in drawn]
    figure = plots.pareto_figure(points, x, names[0], "params_m", f"search {space.name}: Pareto front")
    front = [{"trial_id": r["trial_id"], "backbone": r["backbone"], "method": r["method"], "pareto": r["pareto"],
              "values": r["values"], "costs": r["costs"], "assignment": r["assignment"]} for r in rows]
    return callback.tracker.log_files("plots", {"pareto_front.png": figure},
                                      {"pareto_front.json": json.dumps(front, indent=2, default=str) + "\n"})


def report_front(callback, space: SearchSpace, ranked: list[dict], outcome, identities: dict[str, dict]) -> dict:
    """Show the front (through ldlpose.search.console), plot it to MLflow and register its members;
    ``{benchmark: registration}``.

    ``identities``: what the test benchmarks are (ldlpose.data.identity.RunData.benchmark_identities),
    asked once for the whole front. A refused or failed registration raises :class:`RegistrationError`
    once the front is shown: the driver then fails the search as for a single champion, and
    ``--resume`` registers again."""
    from ldlpose.tracking import RegistrationError

    by_id = {t.trial_id: t.metrics for t in outcome.trials}

    def costs_of(trial_id: str) -> dict:  # Tune's stored result, else the metrics MLflow holds
        if "latency_ms" in by_id.get(trial_id, {}) or "params_m" in by_id.get(trial_id, {}):
            return by_id[trial_id]
        record = callback.safely(f"trial {trial_id} record", callback.tracker.trial_record, trial_id)
        return (record or {}).get("metrics", {})

    rows = front_rows(space, ranked, costs_of)
    members = [r for r in rows if r["pareto"]]
    rule = space.search.champion.rule
    registered: dict = {}
    refused: RegistrationError | None = None
    if members:
        try:
            registered = callback.tracker.register_front([_entry(space, m, identities) for m in members],
                                                         space.base_run.data.benchmarks, rule=rule)
        except RegistrationError as err:  # the front is still shown; the driver fails the search (--resume)
            refused = err
    champion_versions = {info["champion"] for info in registered.values()}
    champion = next((t for info in registered.values() for t, v in info["versions"].items()
                     if v in champion_versions), None)
    console.pareto_front(space, rows, champion)
    if rows:
        callback.safely("Pareto plot", _plot, callback, space, rows)
    console.front_registered(registered, rule)
    if refused is not None:
        raise refused
    return registered
