"""A search's story from a stored record (the plain data tracking.search_record reads back): the
outcome counts, epochs, the champion as the search chose it, and the confirmation statistics."""

from __future__ import annotations

import json

import pytest

from ldlpose.search.confirm import stats
from ldlpose.search.story import figures, tell


def run(trial_id: str, *, role: str = "trial", status: str = "FINISHED", epochs: int = 3, planned: int = 3,
        value: float | None = None, method: str = "gldl", confirms: str | None = None, end_s: int = 100) -> dict:
    tags = {"ldlpose.role": role, "ldlpose.trial_id": trial_id, "ldlpose.protocol.synth": "synth",
            "ldlpose.data_hash.synth": "sha256:abc", "ldlpose.assignment": json.dumps({"method": method, "x": 1.0})}
    if confirms:
        tags["ldlpose.confirms"] = confirms
    metrics: dict[str, float] = {"epoch": float(epochs)}
    if value is not None:
        metrics.update({"selected_val_mae": value, "selected_synth_mae": value - 1, "selected_synth_maev": value + 1})
    return {"run_id": f"r-{trial_id}", "name": trial_id, "status": status, "role": role, "trial_id": trial_id,
            "params": {"method.name": method, "train.epochs": str(planned)}, "tags": tags, "metrics": metrics,
            "start_ms": 0, "end_ms": end_s * 1000}


def record(runs: list[dict], versions: list[dict] | None = None) -> dict:
    parent = {"run_id": "p", "name": "s", "status": "FINISHED", "role": "search", "trial_id": None,
              "params": {"space.search.metric.name": "val_mae"}, "tags": {"ldlpose.search_id": "s"}, "metrics": {},
              "start_ms": 10_000, "end_ms": None}
    return {"uri": "sqlite:///x.db", "experiment_id": "1", "parent": parent, "runs": runs,
            "versions": versions or [], "figures": {}}


SEARCH = [run("a", value=20.0, end_s=50), run("b", value=22.0, epochs=1, end_s=40),  # b: stopped by ASHA
          run("c", status="FAILED", epochs=2), run("d", status="KILLED", epochs=0),
          run("e", value=21.0, method="dlmm", end_s=60)]


def test_the_summary_counts_outcomes_and_epochs_and_takes_the_best_trial_without_confirmation():
    told = tell(record(SEARCH))
    summary = told["summary"]
    assert (summary["trials_finished"], summary["trials_stopped"], summary["trials_failed"]) == (2, 1, 2)
    assert summary["trial_epochs"] == 3 + 1 + 2 + 0 + 3 and "confirmation_epochs" not in summary
    assert summary["best_val_mae"] == 20.0 and told["champion"]["trial_id"] == "a"
    assert summary["champion_synth_mae"] == 19.0 and summary["champion_synth_maev"] == 21.0
    assert summary["wall_time_s"] == 100 - 10  # the first start to the last run's end (c and d)
    assert told["configurations"] == [] and told["methods"] == []


def test_with_confirmation_the_champion_is_the_best_run_of_the_best_mean_configuration():
    reruns = [run("a1", role="confirmation", confirms="a", value=21.5), run("a2", role="confirmation", confirms="a",
                                                                            value=21.9),
              run("e1", role="confirmation", confirms="e", value=20.5, method="dlmm"),
              run("e2", role="confirmation", confirms="e", value=20.9, method="dlmm")]
    told = tell(record(SEARCH + reruns))
    assert [c["trial_id"] for c in told["configurations"]] == ["e", "a"]  # best mean first
    assert told["configurations"][0]["mean"] == pytest.approx(stats([20.5, 20.9]).mean)
    assert told["champion"]["trial_id"] == "e1"  # e's runs: e (21.0), e1 (20.5), e2 (20.9)
    assert told["summary"]["best_val_mae"] == 20.0  # the search's trials only
    assert told["summary"]["confirmation_epochs"] == 12
    dlmm = next(m for m in told["methods"] if m["method"] == "dlmm")
    assert dlmm["n"] == 2 and dlmm["ci95_low"] < dlmm["mean"] < dlmm["ci95_high"]
    drawn = figures(told)
    assert sorted(drawn) == ["best_vs_trial_epochs.png", "objective_per_method.png"]


def test_a_registered_version_names_the_champion():
    versions = [{"model": "headpose-synth", "version": "3", "aliases": [], "tags": {"run_id": "r-e"}}]
    assert tell(record(SEARCH, versions))["champion"]["trial_id"] == "e"
