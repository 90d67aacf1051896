"""MLflow's own UI on the store ldlpose writes to: where to look, and ``mlflow server`` to look with.

:func:`pages` names the pages a user opens first: the latest search's experiment (its training runs)
and each registered model. :func:`start_ui` runs ``mlflow server`` as a child process in a process
group of its own, so that :func:`stop_ui` ends it and every process it started, and nothing of it
outlives ``ldlpose ui``'s Ctrl-C.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import quote

from ldlpose.tracking._common import (
    TAG_ROLE,
    TAG_SEARCH,
    TrackingError,
    _client,
    _require_existing_store,
    _sqlite_path,
    experiment_page,
    redact,
)

START_TIMEOUT_S = 180.0  # mlflow server imports and migrates its store: tens of seconds on 2 busy cores
STOP_TIMEOUT_S = 15.0


def model_page(base: str, name: str) -> str:
    """The registered model's page (its versions and aliases) in the UI at ``base``."""
    return f"{base.rstrip('/')}/#/models/{quote(name, safe='')}"


def latest_search(uri: str) -> tuple[str, str] | None:
    """(search name, experiment id) of the search run started last in the store at ``uri``, or None."""
    client = _client(uri)
    experiments = [e.experiment_id for e in client.search_experiments()]
    if not experiments:
        return None
    runs = client.search_runs(experiments, filter_string=f"tags.`{TAG_ROLE}` = 'search'",
                              order_by=["attributes.start_time DESC"], max_results=1)
    if not runs:
        return None
    return runs[0].data.tags.get(TAG_SEARCH, ""), runs[0].info.experiment_id


def pages(uri: str, base: str) -> dict:
    """What to open in the UI at ``base`` over the store at ``uri``: the latest search's experiment
    (the experiments list where no search ran yet) and every registered model's page."""
    _require_existing_store(uri)
    found = latest_search(uri)
    names = sorted(m.name for m in _client(uri).search_registered_models(max_results=1000))
    return {"search": found[0] if found else None,
            "experiment": experiment_page(base, found[1] if found else None),
            "models": {name: model_page(base, name) for name in names}}


def server_command(uri: str, host: str, port: int) -> list[str]:
    """``mlflow server`` over ``uri``; a SQLite store's new artifacts go beside it, as ldlpose puts them."""
    command = [str(Path(sys.executable).with_name("mlflow")), "server", "--backend-store-uri", uri,
               "--host", host, "--port", str(port), "--workers", "1"]
    path = _sqlite_path(uri)
    if path is not None:
        command += ["--artifacts-destination", str(path.parent / "mlartifacts")]
    return command


def start_ui(uri: str, host: str, port: int, log) -> subprocess.Popen:
    """Start ``mlflow server`` on ``host:port`` with its output going to ``log`` (a file, or None for ours)."""
    # The server's job runner serves MLflow's GenAI jobs, which ldlpose has none of; it is slow to start.
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    return subprocess.Popen(server_command(uri, host, port), stdout=log, stderr=subprocess.STDOUT if log else None,
                            env=env, start_new_session=True)


def wait_until_up(process: subprocess.Popen, base: str, uri: str, log_text, timeout_s: float = START_TIMEOUT_S) -> None:
    """Return once the server answers ``/health``; a TrackingError with its output if it exits or never does."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise TrackingError(f"mlflow server over {redact(uri)} exited with status {process.returncode} "
                                f"before it served; its output:\n{log_text()}")
        with contextlib.suppress(OSError), urllib.request.urlopen(f"{base}/health", timeout=2) as response:
            if response.status == 200:
                return
        time.sleep(0.25)
    raise TrackingError(f"mlflow server over {redact(uri)} did not answer {base}/health within {timeout_s:.0f} s; "
                        f"its output:\n{log_text()}")


def stop_ui(process: subprocess.Popen, timeout_s: float = STOP_TIMEOUT_S) -> None:
    """End the server and everything it started (its process group): SIGTERM, then SIGKILL."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        try:
            process.wait(timeout=timeout_s)
            break
        except subprocess.TimeoutExpired:
            continue
    # Workers that outlived their parent are still in the group: end them too.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
