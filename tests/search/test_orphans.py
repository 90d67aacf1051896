"""Runs a killed search driver left RUNNING, of trials the resumed search never knew, are closed as KILLED.

Real MLflow (an SQLite store); the tracker of a resumed search is a new one, as after a SIGKILL.
"""

from __future__ import annotations

import mlflow

from ldlpose.search.trials import ORPHAN_REASON, close_orphans
from ldlpose.tracking import MlflowTracker, open_tracker


def _tracker(uri: str) -> MlflowTracker:
    tracker = open_tracker(uri, "orphans")  # the search's tracker: the seam's MLflow implementation
    tracker.start("search: {}\n", {"search": {}}, "random", 0, {})
    return tracker


def test_a_resumed_search_closes_only_the_running_runs_of_trials_it_does_not_know(tmp_path):
    uri = f"sqlite:///{tmp_path / 'runs.db'}"
    killed = _tracker(uri)  # the first driver: two trials done, one started after Tune's last saved state
    for trial_id in ("a", "b", "lost"):
        killed.trial_started(trial_id, {"train.seed": 0})
    killed.trial_started("rerun", {"train.seed": 1}, role="confirmation")
    killed.trial_finished("a", "FINISHED", {})
    killed.trial_finished("b", "FAILED", {}, "ValueError: bad lr")

    resumed = _tracker(uri)  # a new process: it knows a, b and a trial of its own
    resumed.trial_started("c", {"train.seed": 0})
    assert close_orphans(resumed, {"a", "b", "c"}, "trial") == ["lost"]
    assert close_orphans(resumed, {"a", "b", "c"}, "trial") == []  # once

    client = mlflow.MlflowClient(uri)
    status = {t: client.get_run(resumed.trial_record(t)["run_id"]) for t in ("a", "b", "c", "lost", "rerun")}
    assert {t: r.info.status for t, r in status.items()} == {
        "a": "FINISHED", "b": "FAILED", "c": "RUNNING", "lost": "KILLED", "rerun": "RUNNING"}
    assert status["lost"].data.tags["ldlpose.failure_reason"] == ORPHAN_REASON
    assert status["lost"].data.tags["ldlpose.status"] == "KILLED"
    assert status["b"].data.tags["ldlpose.failure_reason"] == "ValueError: bad lr"
    # A confirmation's orphans are closed by the confirmation, by their role.
    assert close_orphans(resumed, set(), "confirmation") == ["rerun"]


def test_a_same_named_search_in_another_storage_keeps_its_live_runs(tmp_path):
    """Both storages' drivers log into one experiment and parent run (they share the search's name);
    closing orphans after a resume in one storage must not kill the other's trials, which still train."""
    from ldlpose.search.trials import TAG_DRIVER, TAG_STORAGE

    uri = f"sqlite:///{tmp_path / 'runs.db'}"
    here, there = {TAG_STORAGE: "/shared/a/orphans"}, {TAG_STORAGE: "s3://bucket/b/orphans"}
    killed = _tracker(uri)  # this storage's first driver, killed after starting "lost"
    killed.trial_started("lost", {"train.seed": 0}, {**here, TAG_DRIVER: "first"})
    elsewhere = _tracker(uri)  # the same search name in another storage, its driver alive
    elsewhere.trial_started("live", {"train.seed": 0}, {**there, TAG_DRIVER: "other"})
    resumed = _tracker(uri)
    resumed.trial_started("mine", {"train.seed": 0}, {**here, TAG_DRIVER: "second"})
    owner = {**here, TAG_DRIVER: "second"}
    assert close_orphans(resumed, {"x"}, "trial", owner) == ["lost"]  # not "live", not its own "mine"
    client = mlflow.MlflowClient(uri)
    status = {t: client.get_run(resumed.trial_record(t)["run_id"]).info.status for t in ("lost", "live", "mine")}
    assert status == {"lost": "KILLED", "live": "RUNNING", "mine": "RUNNING"}
    # Without the owner (as before), the other storage's live run would have been closed too.
    assert close_orphans(resumed, {"mine"}, "trial") == ["live"]
