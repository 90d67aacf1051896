"""What a search did, told from its stored runs: the summary on its parent run, the two figures
beside Optuna's, and the facts ``ldlpose report`` prints.

Everything is computed from the stored search alone (``SearchTracking.search_record``; for MLflow
:func:`ldlpose.tracking.read_search`), never
from the driver's memory, so a resumed search, or a report written months later, tells the same
story. Values are validation objectives at each trial's selected checkpoint; lower is better.

Summary metrics on the parent run (the champion's test scores under its own names, e.g.
``champion_synth_mae``):

* ``best_<objective>``: the best search trial's value (confirmation runs left out);
* ``champion_<objective>``, ``champion_<benchmark>_<metric>``: the model the search chose, which is
  what it registered (with confirmation: the best run of the best mean configuration);
* ``trials_finished`` / ``trials_stopped`` (by the scheduler, before their last epoch) /
  ``trials_failed`` (failed, or closed as KILLED when a killed driver left them);
* ``trial_epochs`` (search trials) and ``confirmation_epochs``: the epochs trained;
* ``wall_time_s``: from the search's first start to the end of its last run (a resumed search
  counts the pause between its attempts).
"""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING

from ldlpose.search import confirm
from ldlpose.search.names import public_names
from ldlpose.search.trials import sampled_values

if TYPE_CHECKING:
    from ldlpose.tracking import SearchTracking

__all__ = ["FIGURES", "figures", "log_story", "tell"]

FIGURES = ("best_vs_trial_epochs.png", "objective_per_method.png")
TAG_CHAMPION_RUN = "ldlpose.champion_run_id"


def tell(record: dict) -> dict:
    """The story of the search ``record`` (plain data: numbers, strings, lists and dicts)."""
    objective = _objective(record)
    rows = [_row(run, objective) for run in record["runs"]]
    searched = [r for r in rows if r["role"] == "trial"]
    reruns = [r for r in rows if r["role"] == "confirmation"]
    configurations, methods = _confirmation(searched, reruns)
    champion = _champion(record, rows, configurations)
    return {"search": record["parent"]["tags"].get("ldlpose.search_id", record["parent"]["name"]),
            "objective": objective, "rows": rows, "configurations": configurations, "methods": methods,
            "champion": champion, "summary": _summary(record, objective, searched, reruns, champion)}


def _objective(record: dict) -> str:
    params = record["parent"]["params"]
    for key in ("space.search.metric.name", "space.base.train.select_metric"):
        if params.get(key):
            return params[key]
    for run in record["runs"]:  # a multi-objective search: its first objective chooses the checkpoints
        if run["params"].get("train.select_metric"):
            return run["params"]["train.select_metric"]
    return "val_mae"


def _row(run: dict, objective: str) -> dict:
    tags, metrics, params = run["tags"], run["metrics"], run["params"]
    benchmarks = sorted(k.split(".", 2)[2] for k in tags if k.startswith("ldlpose.protocol."))
    try:
        assignment = public_names(json.loads(tags.get("ldlpose.assignment", "{}")))  # older runs: Optuna's names
    except ValueError:
        assignment = {}
    epochs = int(metrics.get("epoch", 0))
    planned = int(params["train.epochs"]) if params.get("train.epochs", "").isdigit() else None
    return {"name": run["name"], "trial_id": run["trial_id"] or run["name"], "run_id": run["run_id"],
            "role": run["role"], "status": run["status"], "outcome": _outcome(run["status"], epochs, planned),
            "method": params.get("method.name", assignment.get("method", "-")),
            "backbone": params.get("model.backbone", "-"), "assignment": assignment,
            "values": sampled_values(assignment, backbone=True), "epochs": epochs, "planned_epochs": planned,
            "objective": metrics.get(f"selected_{objective}"), "end_ms": run["end_ms"],
            "selected_epoch": tags.get("ldlpose.selected_epoch"), "confirms": tags.get("ldlpose.confirms"),
            "tests": {b: {m: v for k, v in metrics.items() if (m := _test_metric(k, b))} for b in benchmarks},
            "protocols": {b: tags[f"ldlpose.protocol.{b}"] for b in benchmarks},
            "data_hashes": {b: tags.get(f"ldlpose.data_hash.{b}", "-") for b in benchmarks},
            "model_uri": tags.get("ldlpose.model_uri"),
            "checkpoint_sha256": tags.get("ldlpose.selected_checkpoint_sha256"),
            "selection": {k: tags.get(f"ldlpose.selection.{k}") for k in ("split", "rows", "content_hash")},
            "failure": tags.get("ldlpose.failure_reason")}


def _test_metric(key: str, benchmark: str) -> str | None:
    prefix = f"selected_{benchmark}_"
    return key[len(prefix):] if key.startswith(prefix) else None


def _outcome(status: str, epochs: int, planned: int | None) -> str:
    if status in ("FAILED", "KILLED"):
        return "failed"
    if status != "FINISHED":
        return status.lower()
    return "stopped" if planned is not None and epochs < planned else "finished"


def _confirmation(searched: list[dict], reruns: list[dict]) -> tuple[list[dict], list[dict]]:
    """Per confirmed configuration (best mean first) and per method: the mean and 95 % interval of
    the confirmation runs, the searched trial left out as the search itself does (search.confirm)."""
    rows = []
    for original in searched:
        runs = [r for r in reruns if r["confirms"] == original["trial_id"] and r["objective"] is not None]
        if len(runs) < 2 or original["objective"] is None:
            continue
        row_stats = confirm.stats([r["objective"] for r in runs])
        best = min([original, *runs], key=lambda r: r["objective"])
        rows.append({"trial_id": original["trial_id"], "method": original["method"], "values": original["values"],
                     "original": original["objective"], **row_stats.as_dict(), "best_run": best["run_id"],
                     "runs": runs})
    rows.sort(key=lambda r: r["mean"])
    methods = [{"method": m, **s.as_dict()} for m, s in confirm.per_method(rows).items()]
    return [{k: v for k, v in r.items() if k != "runs"} for r in rows], methods


def _champion(record: dict, rows: list[dict], configurations: list[dict]) -> dict | None:
    """The model the search chose: the run of its registered version (the best one, where a Pareto
    front registered several); else, as the search would choose it, the best mean configuration's
    best run, or the best trial."""
    by_run = {r["run_id"]: r for r in rows}
    registered = [by_run[v["tags"].get("run_id")] for v in record["versions"] if v["tags"].get("run_id") in by_run]
    scored = [r for r in registered if r["objective"] is not None]
    if scored:
        return min(scored, key=lambda r: r["objective"])
    if configurations:
        return by_run[configurations[0]["best_run"]]
    done = [r for r in rows if r["role"] == "trial" and r["objective"] is not None]
    return min(done, key=lambda r: r["objective"]) if done else None


def _summary(record: dict, objective: str, searched: list[dict], reruns: list[dict], champion) -> dict:
    values = [r["objective"] for r in searched if r["objective"] is not None]
    summary: dict[str, float] = {f"trials_{k}": float(sum(r["outcome"] == k for r in searched))
                                 for k in ("finished", "stopped", "failed")}
    summary["trial_epochs"] = float(sum(r["epochs"] for r in searched))
    if reruns:
        summary["confirmation_epochs"] = float(sum(r["epochs"] for r in reruns))
    if values:
        summary[f"best_{objective}"] = min(values)
    if champion is not None and champion["objective"] is not None:
        summary[f"champion_{objective}"] = champion["objective"]
        for benchmark, scores in champion["tests"].items():
            summary.update({f"champion_{benchmark}_{m}": v for m, v in scores.items() if math.isfinite(v)})
    ends = [r["end_ms"] for r in record["runs"] if r["end_ms"]]
    if ends and record["parent"]["start_ms"]:
        summary["wall_time_s"] = max(0.0, (max(ends) - record["parent"]["start_ms"]) / 1000)
    return summary


def figures(told: dict) -> dict:
    """``{file name: figure}``: the best value against trial-epochs spent, the objective per method."""
    from ldlpose.report.search_plots import best_vs_epochs, objective_per_method

    objective, search = told["objective"], told["search"]
    searched = sorted((r for r in told["rows"] if r["role"] == "trial"), key=lambda r: r["end_ms"] or math.inf)
    per_method: dict[str, list[float]] = {}
    seeds: dict[str, list[float]] = {}
    for row in told["rows"]:
        if row["objective"] is not None:
            target = per_method if row["role"] == "trial" else seeds
            target.setdefault(row["method"], []).append(row["objective"])
    intervals = {m["method"]: (m["mean"], m["ci95_low"], m["ci95_high"]) for m in told["methods"]
                 if all(math.isfinite(m[k]) for k in ("mean", "ci95_low", "ci95_high"))}
    return {FIGURES[0]: best_vs_epochs([{"epochs": r["epochs"], "value": r["objective"]} for r in searched],
                                       objective, f"{search}: best {objective} against the epochs spent"),
            FIGURES[1]: objective_per_method(per_method, seeds, intervals, objective,
                                             f"{search}: {objective} per method")}


def log_story(tracker: SearchTracking) -> dict:
    """Tell the search of ``tracker`` (started) on its parent run; the summary logged."""
    told = tell(tracker.search_record())
    tags = {"ldlpose.objective": told["objective"]}
    if told["champion"] is not None:
        tags[TAG_CHAMPION_RUN] = told["champion"]["run_id"]
    tracker.log_search_summary(told["summary"], figures(told), tags)
    return told["summary"]
