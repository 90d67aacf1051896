"""An MLflow error at registration ends the search's parent run FAILED with the error in a tag and
one line for the user (the model, the tracking URI, what to do); `--resume` registers it then.

Both failures are real, made at the worst moment through the registry's test hook (between creating
the version and setting its alias): the registered model is deleted on the server, so MLflow refuses
the alias; or the server is stopped."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
from conftest import _launched_mlflow, _wait_for_health
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


def _error_line(err: str, uri: str) -> str:
    line = next(line for line in err.splitlines() if line.startswith("ldlpose search: error:"))
    assert f"registering headpose-facegen in {uri} failed: " in line and "--resume" in line, line
    assert "Traceback" not in err
    return line


def test_a_failed_registration_fails_the_search_and_resume_registers(synth_root, ray_local, tmp_path, capsys,
                                                                     monkeypatch):
    """Refused: the parent run ends FAILED with the error; the server gone: one line, the run waits for
    --resume; the server back (on another port, same store): --resume registers and the run is FINISHED."""
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # MLflow's own retries would take minutes
    root = tmp_path / "mlflow"
    root.mkdir()
    backend = f"sqlite:///{root / 'db.sqlite'}"

    def args(uri: str, *more: str) -> list[str]:
        return ["search", str(REPO / "search_spaces" / "quickstart.yaml"), "--storage", str(tmp_path / "results"),
                "--tracking-uri", uri, *(f"--set={o}" for o in [f"data.root={synth_root}", *SHRINK]), *more]

    with _launched_mlflow(root, backend) as (server, uri, log):
        _wait_for_health(uri, server, log)
        client = MlflowClient(uri)
        monkeypatch.setattr(registry, "_before_alias_write", lambda name, version, attempt:
                            client.delete_registered_model(name))
        assert main(args(uri)) == 2
        _error_line(capsys.readouterr().err, uri)
        parent = _parent(client)
        assert parent.info.status == "FAILED" and parent.data.tags["ldlpose.status"] == "FAILED"
        assert parent.data.tags["ldlpose.error"].startswith(f"registering headpose-facegen in {uri} failed: ")

        def stop(name, version, attempt):
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=60)

        monkeypatch.setattr(registry, "_before_alias_write", stop)
        assert main(args(uri, "--resume")) == 2
        _error_line(capsys.readouterr().err, uri)

    monkeypatch.setattr(registry, "_before_alias_write", None)
    with _launched_mlflow(root, backend) as (server, uri, log):
        _wait_for_health(uri, server, log)
        assert main(args(uri, "--resume")) == 0
        assert "registered headpose-facegen version" in capsys.readouterr().out
        client = MlflowClient(uri)
        parent = _parent(client)
        assert parent.info.status == "FINISHED" and "ldlpose.error" not in parent.data.tags
        assert client.get_model_version_by_alias("headpose-facegen", "champion").tags["search_id"] == "quickstart"
