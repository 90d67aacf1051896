"""Trial runs carry names a person reads; a resumed search finds them by their trial id tag alone.

A real MLflow store (SQLite) and the tracker's public API, as the search's callback drives it.
"""

from __future__ import annotations

from mlflow import MlflowClient

from ldlpose import tracking
from ldlpose.search.trials import run_name

SPACE_YAML = "name: named\n"


def _start(uri: str) -> tracking.SearchTracker:
    tracker = tracking.SearchTracker(uri, "named")
    tracker.start(SPACE_YAML, {"train": {"epochs": 1}}, "random", 0, {})
    return tracker


def test_a_resumed_search_finds_its_named_runs_by_trial_id_and_renames_old_ones(tmp_path):
    uri = f"sqlite:///{tmp_path / 'runs.db'}"
    first = _start(uri)
    named = first.trial_started("a1b2c3d4", {"method.name": "gldl"}, name="gldl sigma=2.1 lr=5.2e-3 #1")
    unnamed = first.trial_started("e5f6a7b8", {"method.name": "gldl"})  # as runs were made before names
    first.trial_finished("a1b2c3d4", "FINISHED", {"val": {"mae": 20.0}})
    client = MlflowClient(uri)
    assert client.get_run(named).info.run_name == "gldl sigma=2.1 lr=5.2e-3 #1"
    assert client.get_run(unnamed).info.run_name == "e5f6a7b8"

    resumed = _start(uri)  # a new driver process
    assert sorted(resumed.trial_ids()) == ["a1b2c3d4", "e5f6a7b8"]
    assert resumed.trial_record("a1b2c3d4")["run_id"] == named
    assert resumed.trial_started("a1b2c3d4", {"method.name": "gldl"}, name="gldl sigma=2.1 lr=5.2e-3 #1") == named
    assert resumed.trial_started("e5f6a7b8", {"method.name": "gldl"}, name="gldl sigma=1.5 lr=1e-3 #2") == unnamed
    assert client.get_run(unnamed).info.run_name == "gldl sigma=1.5 lr=1e-3 #2"
    resumed.trial_result("e5f6a7b8", {"val_mae": 19.0}, step=1)  # by trial id, into the renamed run
    assert client.get_run(unnamed).data.metrics["val_mae"] == 19.0
    experiment = client.get_experiment_by_name("named").experiment_id
    assert len(client.search_runs([experiment])) == 3  # the search run and its two trials, none duplicated


def test_run_names_say_the_method_its_values_to_two_digits_and_the_trial_number():
    assignment = {"method": "gldl", "method.hparams.sigma": 2.1234, "train.optimizer.lr": 0.00523}
    assert run_name("gldl", assignment, 3) == "gldl sigma=2.1 lr=5.2e-3 #3"
    confirmation = {"method.hparams.alpha": 1.0, "train.optimizer.lr": 0.05, "train.seed": 2,
                    "model.backbone": "resnet18", "_point": 0}
    assert run_name("hopenet", confirmation, 1, "a1b2c3d4") == \
        "hopenet alpha=1 backbone=resnet18 lr=0.05 seed=2 #1 (confirms a1b2c3d4)"
    assert run_name("gldl", {"x": 1234.5, "y": -0.00031, "z": 0.0, "w": 150.0}, 2) == \
        "gldl w=150 x=1.2e3 y=-3.1e-4 z=0 #2"
    assert run_name("dlmm", {}, 7) == "dlmm #7"
    assert len(run_name("gldl", {f"p{i}": "v" * 20 for i in range(30)}, 1)) == 250  # MLflow's limit
