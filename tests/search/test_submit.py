"""``ldlpose submit`` against a real two-node local Ray cluster that runs with ``RAY_AUTH_MODE=token``.

The right token runs a search end to end (its job driver and trials connect to the cluster with
the nodes' token); a missing or wrong one fails before anything runs, with a message that says what
to set, and never with a Ray traceback.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ldlpose.cli import main

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def client_env(monkeypatch, tmp_path):
    """A client with no token anywhere: no RAY_AUTH_* variables and an empty home (no ~/.ray/auth_token)."""
    for name in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    return monkeypatch


def submit(cluster, tmp_path, synth_root, tracking_uri, name):
    return main(["submit", "search_spaces/quickstart.yaml", "--smoke-test", "--address", cluster.jobs,
                 "--working-dir", str(REPO), "--storage", str(tmp_path / "results"), "--tracking-uri", tracking_uri,
                 "--set", f"data.root={synth_root}", "--set", f"search.name={name}"])


def test_a_search_submitted_with_the_token_runs_on_a_token_cluster(
        ray_cluster_token, client_env, tmp_path, synth_root, mlflow_server):
    import mlflow

    cluster, token = ray_cluster_token
    client_env.setenv("RAY_AUTH_MODE", "token")
    client_env.setenv("RAY_AUTH_TOKEN", token)
    assert submit(cluster, tmp_path, synth_root, mlflow_server, "tokened") == 0
    client = mlflow.MlflowClient(mlflow_server)
    experiment = client.get_experiment_by_name("tokened-smoke")  # a smoke test is a search of its own
    runs = client.search_runs([experiment.experiment_id], "tags.`ldlpose.role` = 'trial'")
    assert len(runs) == 2 and all(r.info.status == "FINISHED" for r in runs)


def test_the_token_is_read_from_ray_auth_token_path_too(ray_cluster_token, client_env, tmp_path):
    from ldlpose.search import submit as jobs

    cluster, token = ray_cluster_token
    (tmp_path / "token").write_text(token + "\n")
    client_env.setenv("RAY_AUTH_MODE", "token")
    client_env.setenv("RAY_AUTH_TOKEN_PATH", str(tmp_path / "token"))
    client, source = jobs.connect(cluster.jobs)
    assert source == f"RAY_AUTH_TOKEN_PATH ({tmp_path / 'token'})"
    assert client.list_jobs() is not None  # an authenticated request


@pytest.mark.parametrize("case", ["token mode, no token", "no mode, no token", "wrong token"])
def test_a_missing_or_wrong_token_fails_saying_what_to_set(
        ray_cluster_token, client_env, tmp_path, synth_root, capsys, case):
    cluster, _token = ray_cluster_token
    if case != "no mode, no token":
        client_env.setenv("RAY_AUTH_MODE", "token")
    if case == "wrong token":
        client_env.setenv("RAY_AUTH_TOKEN", "0" * 64)
    assert submit(cluster, tmp_path, synth_root, "http://127.0.0.1:9", f"refused-{len(case)}") == 2
    err = capsys.readouterr().err
    assert err.startswith("ldlpose submit: error: submit: ") and "Traceback" not in err
    assert "set RAY_AUTH_TOKEN to the cluster's token" in err and "ray get-auth-token" in err
    expected = {"token mode, no token": "RAY_AUTH_MODE=token but no token was found",
                "no mode, no token": f"the cluster at {cluster.jobs} requires token authentication",
                "wrong token": f"the cluster at {cluster.jobs} rejected the token from RAY_AUTH_TOKEN"}[case]
    assert expected in err
    assert not (tmp_path / "results").exists()  # nothing ran


def test_a_wrong_token_fails_the_same_from_a_fresh_client_process(ray_cluster_token, tmp_path, synth_root):
    """As a user runs it: a new process whose Ray itself is in token mode (this one's is not)."""
    import os
    import subprocess
    import sys

    cluster, _token = ray_cluster_token
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_AUTH_")}
    env.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN="f" * 64, HOME=str(tmp_path))
    done = subprocess.run([sys.executable, "-m", "ldlpose", "submit", "search_spaces/quickstart.yaml", "--smoke-test",
                           "--address", cluster.jobs, "--working-dir", str(REPO), "--storage", str(tmp_path / "r"),
                           "--set", f"data.root={synth_root}"], env=env, check=False, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "rejected the token from RAY_AUTH_TOKEN" in done.stderr and "Traceback" not in done.stderr
