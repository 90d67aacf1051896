"""`ldlpose ui`: MLflow's UI started on a real SQLite store, the pages it prints, and a clean Ctrl-C."""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from conftest import _free_port, processes_under

from ldlpose.cli import main

pytestmark = pytest.mark.slow


def _store(tmp_path) -> tuple[str, str, str]:
    """A SQLite store made with mlflow directly: an older search, the latest one (its parent run tagged as
    ldlpose tags it) and a registered model. (URI, latest search's experiment id, its name)."""
    import mlflow

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = mlflow.MlflowClient(uri, registry_uri=uri)
    ids = {}
    for name in ("older", "latest"):
        ids[name] = client.create_experiment(name, artifact_location=(tmp_path / "mlartifacts" / name).as_uri())
        run = client.create_run(ids[name], tags={"ldlpose.role": "search", "ldlpose.search_id": name},
                                run_name=name)
        client.set_terminated(run.info.run_id)
        time.sleep(0.01)  # the latest starts later (start times are in milliseconds)
    client.create_registered_model("headpose-synth")
    return uri, ids["latest"], "latest"


def _lines(stream, into: queue.Queue) -> None:
    for line in stream:
        into.put(line)
    into.put(None)


def _read_until(lines: queue.Queue, pattern: str, seen: list[str], timeout_s: float = 240) -> re.Match:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=1)
        except queue.Empty:
            continue
        assert line is not None, "ldlpose ui ended early:\n" + "".join(seen)
        seen.append(line)
        found = re.search(pattern, line)
        if found:
            return found
    pytest.fail(f"no line matching {pattern!r} within {timeout_s} s:\n" + "".join(seen))


def _alive(pids: set[int]) -> set[int]:
    """Those of ``pids`` still running (a zombie has ended: it only waits for its parent to read its status)."""
    alive = set()
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            alive.add(pid)
    return alive


def test_ui_serves_the_store_prints_its_pages_and_stops_on_ctrl_c(tmp_path):
    uri, experiment_id, search = _store(tmp_path)
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    ui = subprocess.Popen([sys.executable, "-m", "ldlpose", "ui", "--tracking-uri", uri, "--port", str(port)],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=tmp_path)
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=_lines, args=(ui.stdout, lines), daemon=True).start()
    seen: list[str] = []
    try:
        page = _read_until(lines, rf"latest search \({search}\): (\S+)", seen).group(1)
        model = _read_until(lines, r"registered model headpose-synth: (\S+)", seen).group(1)
        assert page == f"http://127.0.0.1:{port}/#/experiments/{experiment_id}/runs?workflowType=machine_learning"
        assert model == f"http://127.0.0.1:{port}/#/models/headpose-synth"
        with urllib.request.urlopen(page, timeout=30) as response:
            assert response.status == 200 and b"<html" in response.read().lower()
        # The server answers from this store: the experiment the page names is the latest search.
        api = f"http://127.0.0.1:{port}/api/2.0/mlflow/experiments/get?experiment_id={experiment_id}"
        with urllib.request.urlopen(api, timeout=30) as response:
            assert json.load(response)["experiment"]["name"] == search
        started = processes_under(ui.pid)
        assert len(started) >= 2, started  # ldlpose and the MLflow server (and its workers)
        ui.send_signal(signal.SIGINT)  # what Ctrl-C does
        assert ui.wait(timeout=120) == 0, "".join(seen)
    finally:
        if ui.poll() is None:
            ui.kill()
    deadline = time.monotonic() + 30
    while _alive(started - {ui.pid}) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _alive(started - {ui.pid}), "processes left after Ctrl-C"
    with pytest.raises(OSError):  # nothing listens on the port any more
        socket.create_connection(("127.0.0.1", port), timeout=2).close()


def test_ui_refuses_a_port_that_is_taken(tmp_path, capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        assert main(["ui", "--tracking-uri", f"sqlite:///{tmp_path / 'mlflow.db'}", "--port", str(port)]) == 2
    assert f"--port {port}: 127.0.0.1:{port} is taken" in capsys.readouterr().err
    assert not (tmp_path / "mlflow.db").exists()  # nothing was started nor created
