"""The MLflow write buffer: order, retry while the server is unreachable, its bound, giving up."""

from __future__ import annotations

import io
import socket
import time

import pytest

from ldlpose.tracking.outbox import Outbox, unreachable


class Server:
    """Stands in for a tracking server's reachability; every write appends to ``written``."""

    def __init__(self):
        self.down, self.written, self.attempts = True, [], 0

    def write(self, name: str):
        def fn():
            self.attempts += 1
            if self.down:
                raise ConnectionError("[Errno 111] Connection refused")
            self.written.append(name)
        return fn


def outbox(problems, **kwargs) -> tuple[Outbox, io.StringIO]:
    stream = io.StringIO()
    kwargs = {"retry_first_s": 0.05, "retry_max_s": 0.2, "grace_s": 30.0, **kwargs}
    return Outbox("http://127.0.0.1:1", problems, stream=stream, **kwargs), stream


def wait_for(condition, timeout_s: float = 60.0) -> None:
    """Polls ``condition``; the deadline only ends a test that would otherwise hang, at any machine speed."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_writes_wait_out_an_outage_in_order_with_one_warning():
    server, problems = Server(), []
    box, stream = outbox(problems)
    for epoch in range(1, 6):
        assert box.put("trial a result", server.write(f"epoch {epoch}"), f"epoch {epoch}")
    wait_for(lambda: server.attempts >= 4)  # retried with backoff, never past the head of the queue
    assert server.written == [] and box.pending() == 5
    server.down = False
    box.drain()
    assert server.written == [f"epoch {e}" for e in range(1, 6)]
    assert problems == []
    text = stream.getvalue()
    assert text.count("is unreachable") == 1 and text.count("reachable again") == 1, text
    assert "the search goes on" in text and box.outages == 1


def test_a_refused_write_is_reported_once_and_not_retried():
    server, problems = Server(), []
    server.down = False
    box, _ = outbox(problems)

    def refused():
        server.attempts += 1
        raise ValueError("INVALID_PARAMETER_VALUE: metric value must be finite")

    box.put("trial a result", refused, "epoch 1")
    box.put("trial a result", server.write("epoch 2"), "epoch 2")
    box.drain()
    assert server.written == ["epoch 2"] and server.attempts == 2
    assert problems == ["trial a result epoch 1: ValueError: INVALID_PARAMETER_VALUE: metric value must be finite"]


def test_a_full_buffer_drops_new_writes_and_names_them():
    server, problems = Server(), []
    box, stream = outbox(problems, capacity=3)
    results = [box.put("trial a result", server.write(f"epoch {e}"), f"epoch {e}") for e in range(1, 6)]
    assert box.put("trial a completion", server.write("completion")) is False
    assert results == [True, True, True, False, False]
    assert stream.getvalue().count("buffer is full") == 1
    server.down = False
    box.drain()
    assert server.written == ["epoch 1", "epoch 2", "epoch 3"]
    (problem,) = problems
    assert "buffer was full (3 writes)" in problem
    assert problem.endswith("never written: trial a result (epoch 4, epoch 5); trial a completion")


def test_a_server_that_never_comes_back_is_given_up_at_the_end_naming_what_was_lost():
    server, problems = Server(), []
    box, _ = outbox(problems, grace_s=600.0)
    box.put("trial a start", server.write("start"))
    box.put("trial a result", server.write("epoch 1"), "epoch 1")
    box.put("trial b result", server.write("b 1"), "epoch 1")
    started = time.monotonic()
    box.drain(grace_s=1.0)
    # The drain's own grace (1 s), not the outbox's (600 s): the bound tells the two apart on any
    # machine, however loaded (it is not a speed target).
    assert time.monotonic() - started < 120
    (problem,) = problems
    assert "stayed unreachable until the search ended" in problem
    assert problem.endswith("never written: trial a start; trial a result (epoch 1); trial b result (epoch 1)")
    # The outbox still works afterwards, e.g. for what the driver writes once the server is back.
    server.down = False
    box.put("search end", server.write("end"))
    box.drain()
    assert server.written == ["end"]


def test_mlflow_client_errors_for_a_server_that_is_down_count_as_unreachable_and_fail_fast(monkeypatch):
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    from ldlpose.tracking import outbox as module

    for key in module._HTTP_DEFAULTS:
        monkeypatch.delenv(key, raising=False)
    module.quick_failing_http()  # what an Outbox sets for its process
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens here
    started = time.monotonic()
    with pytest.raises(MlflowException) as caught:
        MlflowClient(f"http://127.0.0.1:{port}").get_experiment_by_name("x")
    # About 3 s; MLflow's defaults retry for about four minutes. The bound tells the two apart on any
    # machine, however loaded (it is not a speed target).
    assert time.monotonic() - started < 90
    assert unreachable(caught.value)
    assert not unreachable(MlflowException("bad value", error_code="INVALID_PARAMETER_VALUE"))
