"""Passwords in URIs (issue 24 item 5): the one redaction for what is shown, the one stripping for what
travels to another machine, and where each is applied without a server. The end-to-end checks (a
search, a submit, a server with authentication) are in tests/search/test_secrets.py."""

from __future__ import annotations

import http.server
import json
import threading

import pytest
import yaml

from ldlpose.infra.locations import redact, without_credentials

CASES = [  # (given, redacted, without credentials)
    ("postgresql://u:PASS@db/x", "postgresql://u:***@db/x", "postgresql://u@db/x"),
    ("postgresql+psycopg://u:p@ss@db:5432/x", "postgresql+psycopg://u:***@db:5432/x", "postgresql+psycopg://u@db:5432/x"),
    ("https://u:PASS@host", "https://u:***@host", "https://host"),
    ("s3://key:secret@bucket/p?endpoint_override=h:9", "s3://key:***@bucket/p?endpoint_override=h:9",
     "s3://bucket/p?endpoint_override=h:9"),
    ("http://127.0.0.1:5000", "http://127.0.0.1:5000", "http://127.0.0.1:5000"),
    ("mysql://u@h/x", "mysql://u@h/x", "mysql://u@h/x"),  # a user without a password: nothing secret
    ("models:/headpose-synth@champion", "models:/headpose-synth@champion", "models:/headpose-synth@champion"),
    ("file:///data/a@b", "file:///data/a@b", "file:///data/a@b"),
]


@pytest.mark.parametrize("given, shown, stripped", CASES)
def test_a_password_is_redacted_for_showing_and_dropped_for_travelling(given, shown, stripped):
    assert redact(given) == shown
    assert without_credentials(given) == stripped


def test_every_uri_inside_a_text_is_redacted():
    text = "ran at https://u:p1@h:1/x, stored in 's3://a:p2@c/d' (data.root=s3://a:p2@c/e)"
    assert redact(text) == "ran at https://u:***@h:1/x, stored in 's3://a:***@c/d' (data.root=s3://a:***@c/e)"
    assert "p1" not in without_credentials(text) and "p2" not in without_credentials(text)


def test_the_tracking_adapter_reexports_the_same_redaction():
    from ldlpose import tracking

    assert tracking.redact is redact


def test_mlflow_params_and_tags_are_stored_redacted(tmp_path):
    from mlflow import MlflowClient

    from ldlpose.tracking._common import _log_batch

    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    run = client.create_run(client.create_experiment("x"))
    _log_batch(client, run.info.run_id, params={"storage": "s3://k:SECRET@b", "space.data.root": {"r": "s3://k:SECRET@b/d"}},
               tags={"ldlpose.error": "cannot open https://u:SECRET@h/x"})
    data = client.get_run(run.info.run_id).data
    assert data.params["storage"] == "s3://k:***@b" and data.tags["ldlpose.error"] == "cannot open https://u:***@h/x"
    assert "SECRET" not in repr((data.params, data.tags))


def test_s3_keys_in_a_storage_uri_move_to_the_environment(monkeypatch):
    from ldlpose.infra.storage import credentials_to_environment

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "from-env")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "from-env")  # both undone after the test
    assert credentials_to_environment("s3://KEY:SE%2FCRET@bucket/results") == "s3://bucket/results"
    import os

    assert os.environ["AWS_ACCESS_KEY_ID"] == "KEY" and os.environ["AWS_SECRET_ACCESS_KEY"] == "SE/CRET"
    assert credentials_to_environment("/shared/results") == "/shared/results"
    assert credentials_to_environment("s3://bucket/x") == "s3://bucket/x"


def test_a_tracking_uris_password_moves_to_where_mlflow_and_libpq_read_it(monkeypatch):
    import os

    from ldlpose.tracking import credentials_to_environment

    for name in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "PGPASSWORD"):
        monkeypatch.setenv(name, "")  # so that what the code sets is undone after the test
        monkeypatch.delenv(name)
    assert credentials_to_environment("https://al%40ce:p%3Aw@mlflow:5000/x") == "https://mlflow:5000/x"
    assert (os.environ["MLFLOW_TRACKING_USERNAME"], os.environ["MLFLOW_TRACKING_PASSWORD"]) == ("al@ce", "p:w")
    assert credentials_to_environment("postgresql://u:pg@db/x") == "postgresql://u@db/x"
    assert os.environ["PGPASSWORD"] == "pg"
    assert credentials_to_environment("http://mlflow:5000") == "http://mlflow:5000"
    assert credentials_to_environment("sqlite:///a/b.db") == "sqlite:///a/b.db"


def test_a_submitted_jobs_command_line_holds_no_password():
    from ldlpose.search.submit import _credentials_note, entrypoint

    line = entrypoint("space.yaml", storage="s3://k:S1@bucket/r", tracking_uri="https://u:S2@mlflow",
                      smoke_test=False, overrides=["data.root=s3://k:S3@bucket/d", "train.epochs=2"])
    assert not {"S1", "S2", "S3"} & set(line.replace("/", " ").replace(":", " ").replace("@", " ").split())
    assert line == ("python jobs/search.py space.yaml --storage s3://bucket/r --tracking-uri https://mlflow "
                    "--set data.root=s3://bucket/d --set train.epochs=2")
    note = _credentials_note("s3://k:S1@bucket/r", "https://u:S2@mlflow", [])
    assert "MLFLOW_TRACKING_USERNAME" in note and "S1" not in note and "S2" not in note
    assert _credentials_note("/shared/r", "http://mlflow:5000", ["a=1"]) is None


def test_the_search_files_in_storage_hold_no_password(tmp_path):
    from ldlpose.search import fingerprint
    from ldlpose.search.space import load_search_space

    space_file = tmp_path / "s.yaml"
    space_file.write_text(yaml.safe_dump({
        "name": "s", "method": {"name": "gldl"}, "model": {"backbone": "resnet18"},
        "data": {"root": "s3://k:SECRET@bucket/data", "benchmarks": ["synth"]}, "train": {"epochs": 1},
        "search": {"budget": {"trials": 1},
                   "parameters": {"train.optimizer.lr": {"distribution": "log_uniform", "min": 0.001, "max": 0.01}},
                   "start_from": []}}))
    space = load_search_space(space_file)
    written = yaml.safe_load(space_file.read_text())
    fingerprint.record(space, str(tmp_path / "results"), {}, written)
    stored = {p.name: p.read_text() for p in (tmp_path / "results" / "s").iterdir()}
    assert set(stored) == {"search.yaml", "ldlpose-search.json"}
    assert all("SECRET" not in text for text in stored.values())
    assert yaml.safe_load(stored["search.yaml"])["data"]["root"] == "s3://bucket/data"  # resumable from the env
    json.loads(stored["ldlpose-search.json"])


class _Refusing(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # what MLflow's basic-auth app answers a request without valid credentials
        self.send_response(401)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_a_server_that_refuses_the_client_is_reported_in_one_line():
    from ldlpose.tracking import TrackingError, require_reachable

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Refusing)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        port = server.server_address[1]
        with pytest.raises(TrackingError, match=r"requires authentication and no credentials were sent .HTTP 401.; "
                                                "set MLFLOW_TRACKING_USERNAME"):
            require_reachable(f"http://127.0.0.1:{port}")
        with pytest.raises(TrackingError, match=r"http://bob:\*\*\*@127.0.0.1:\d+ requires authentication and it "
                                                r"refused the credentials of user 'bob'") as refused:
            require_reachable(f"http://bob:hunter2@127.0.0.1:{port}")
        assert "hunter2" not in str(refused.value)
    finally:
        server.shutdown()
