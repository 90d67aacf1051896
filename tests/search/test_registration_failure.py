"""An MLflow error at registration ends the search's parent run FAILED with the error in a tag and
one line for the user (the model, the tracking URI, what to do); `--resume` registers it then.

The refusal is real: between creating the version and setting its alias, the registered model is
deleted on the server (through the registry's test hook), so MLflow refuses the alias."""

from __future__ import annotations

from pathlib import Path

import pytest
from mlflow import MlflowClient

from ldlpose.cli import main
from ldlpose.tracking import registry

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
SHRINK = ["search.budget.trials=1", "search.budget.concurrency=1", "train.epochs=1", "data.max_train_samples=32",
          "data.max_eval_samples=32"]


def _parent(client: MlflowClient):
    experiment = client.get_experiment_by_name("quickstart")
    runs = client.search_runs([experiment.experiment_id], "tags.`ldlpose.role` = 'search'")
    assert len(runs) == 1
    return runs[0]


def test_a_refused_registration_fails_the_search_and_resume_registers(synth_root, ray_local, mlflow_server,
                                                                       tmp_path, capsys, monkeypatch):
    uri, client = mlflow_server, MlflowClient(mlflow_server)
    args = ["search", str(REPO / "search_spaces" / "quickstart.yaml"), "--storage", str(tmp_path / "results"),
            "--tracking-uri", uri, *(f"--set={o}" for o in [f"data.root={synth_root}", *SHRINK])]
    monkeypatch.setattr(registry, "_before_alias_write", lambda name, version, attempt:
                        client.delete_registered_model(name))
    assert main(args) == 2
    err = capsys.readouterr().err
    line = next(line for line in err.splitlines() if line.startswith("ldlpose search: error:"))
    assert f"registering headpose-synth in {uri} failed: " in line and "--resume" in line, line
    assert "Traceback" not in err
    parent = _parent(client)
    assert parent.info.status == "FAILED"
    assert parent.data.tags["ldlpose.error"].startswith(f"registering headpose-synth in {uri} failed: ")
    assert parent.data.tags["ldlpose.status"] == "FAILED"

    monkeypatch.setattr(registry, "_before_alias_write", None)
    assert main([*args, "--resume"]) == 0
    assert "registered headpose-synth version" in capsys.readouterr().out
    parent = _parent(client)
    assert parent.info.status == "FINISHED" and "ldlpose.error" not in parent.data.tags
    champion = client.get_model_version_by_alias("headpose-synth", "champion")
    assert champion.tags["search_id"] == "quickstart"
