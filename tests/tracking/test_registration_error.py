"""A registration that MLflow cannot make is one RegistrationError naming the model and the tracking
URI, without the URI's password (MLflow's own message quotes the request URL with it)."""

import socket

import pytest

from ldlpose.tracking import TrackingError
from ldlpose.tracking.registry import RegistrationError, register_champions


def test_an_unreachable_server_at_registration_names_the_model_and_hides_the_password(monkeypatch):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    with socket.socket() as closed:  # a port nothing listens on: refused at once
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    uri = f"http://user:s3cret@127.0.0.1:{port}"
    with pytest.raises(RegistrationError) as err:
        register_champions(uri, "s", {"trial_id": "t", "model_uri": "models:/m-1"}, ["synth"])
    message = str(err.value)
    assert message.startswith(f"registering headpose-synth in http://user:***@127.0.0.1:{port} failed: ")
    assert "s3cret" not in message and "\n" not in message
    assert isinstance(err.value, TrackingError)  # the CLI prints it as one line, no traceback
