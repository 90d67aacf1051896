"""An unreachable tracking server is one clear error naming the URI (its password hidden), not minutes
of silent retries in MLflow's HTTP client; a server that accepts connections passes the check."""

from __future__ import annotations

import socket

import pytest

from ldlpose.cli import main
from ldlpose.tracking import TrackingError, redact, require_reachable


def closed_port() -> int:
    """A local port that nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.parametrize("argv", [["registry"], ["leaderboard", "synth"],
                                  ["predict", "photo.png", "--model", "models:/headpose-synth@champion"]])
def test_read_commands_fail_at_once_naming_the_uri_without_its_password(argv, capsys):
    uri = f"http://alice:s3cret@127.0.0.1:{closed_port()}/mlflow"
    assert main([*argv, "--tracking-uri", uri]) == 2
    err = capsys.readouterr().err
    assert f"the MLflow tracking server at http://alice:***@127.0.0.1:{uri.split(':')[-1]} is unreachable" in err
    assert "s3cret" not in err


def test_train_and_evaluate_check_the_server_before_any_work(tmp_path, capsys):
    uri = f"http://127.0.0.1:{closed_port()}"
    missing = tmp_path / "nothing-here.onnx"  # evaluate would fail on it later; the server check comes first
    assert main(["evaluate", str(missing), "--benchmark", "synth", "--tracking-uri", uri]) == 2
    assert f"the MLflow tracking server at {uri} is unreachable (Connection refused)" in capsys.readouterr().err
    assert main(["train", "configs/absent.yaml", "--tracking-uri", uri]) == 2  # the config is read later too
    assert "unreachable" in capsys.readouterr().err


def test_a_listening_server_and_local_stores_pass():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        require_reachable(f"http://127.0.0.1:{server.getsockname()[1]}")
    require_reachable("sqlite:///somewhere/mlflow.db")  # not a server: checked elsewhere
    with pytest.raises(TrackingError, match=r"at http://127\.0\.0\.1:\d+ is unreachable"):
        require_reachable(f"http://127.0.0.1:{closed_port()}", timeout_s=2)
    assert redact("https://u:p@h:1/x") == "https://u:***@h:1/x" and redact("http://h:5000") == "http://h:5000"
