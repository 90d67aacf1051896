"""Shared fixtures: a tiny prepared synthhead and one local Ray instance for the slow tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

# Every Ray started by the tests runs with token authentication explicitly off (platform spec 3.2).
os.environ["RAY_AUTH_MODE"] = "disabled"
os.environ.setdefault("RAY_DEDUP_LOGS", "0")


@pytest.fixture(scope="session")
def synth_root(tmp_path_factory):
    """A data root holding ``synthhead/{train,val,test}``: 96 / 32 / 32 images at 64 px."""
    from ldlpose.cli import main

    root = tmp_path_factory.mktemp("data")
    assert main(["prepare", "synthhead", "--out", str(root / "synthhead"), "--train", "96", "--val", "32",
                 "--test", "32", "--size", "64", "--workers", "1"]) == 0
    return root


@pytest.fixture(scope="session")
def ray_local():
    """One local Ray (2 CPUs) shared by the tests that train, torn down at the end."""
    import ray

    if ray.is_initialized():
        ray.shutdown()
    ray.init(num_cpus=2, include_dashboard=True, log_to_driver=False, configure_logging=False)
    yield ray
    ray.shutdown()


def tiny_run(synth_root, **changes):
    """A valid run config on the tiny synthhead, resnet18 at 64 px from random init, 1 worker."""
    from ldlpose.config import run_config_from_dict

    data = {
        "name": "tiny",
        "method": {"name": "gldl"},
        "model": {"backbone": "resnet18", "weights": "none"},
        "data": {"root": str(synth_root), "train": "synthhead/train", "val": "synthhead/val",
                 "benchmarks": ["synth"], "image_size": 64},
        "train": {"epochs": 1, "batch_size": 16, "optimizer": {"name": "adam", "lr": 0.001}, "seed": 0,
                  "max_failures": 0},
        "resources": {"workers": 1, "cpus_per_worker": 1},
    }
    for key, value in changes.items():
        node = data
        parts = key.split("__")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return run_config_from_dict(data)


# --- a real MLflow tracking server on 127.0.0.1 -------------------------------------------------

def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def mlflow_server_launched(tmp_path_factory):
    """Start the server without waiting for it, so that other fixtures build meanwhile."""
    root = tmp_path_factory.mktemp("mlflow-server")
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = "false"  # its worker pool is not needed and slow to start
    mlflow_bin = Path(sys.executable).with_name("mlflow")
    log = open(root / "server.log", "w")
    server = subprocess.Popen(
        [str(mlflow_bin), "server", "--backend-store-uri", f"sqlite:///{root / 'db.sqlite'}",
         "--artifacts-destination", str(root / "artifacts"), "--host", "127.0.0.1", "--port", str(port),
         "--workers", "1"],
        stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        yield server, f"http://127.0.0.1:{port}", root / "server.log"
    finally:
        os.killpg(server.pid, signal.SIGTERM)  # the server's own process group: it and its workers
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        log.close()


@pytest.fixture(scope="module")
def mlflow_server(mlflow_server_launched) -> str:
    """URI of a real tracking server for this test module, once it answers /health."""
    server, uri, log = mlflow_server_launched
    _wait_for_health(uri, server, log)
    return uri


def _wait_for_health(uri: str, server: subprocess.Popen, log: Path, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"mlflow server exited with {server.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{uri}/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.25)
    pytest.fail(f"mlflow server at {uri} not healthy after {timeout_s} s:\n{log.read_text()[-3000:]}")


# --- a real two-node local Ray cluster (`ray start --head` + `ray start --address`) --------------

class RayCluster(str):
    """The GCS address (the string itself) plus ``jobs``, the job server's URL."""

    def __new__(cls, address: str, jobs: str):
        obj = super().__new__(cls, address)
        obj.jobs = jobs
        return obj


def _ray_cli() -> str:
    return str(Path(sys.executable).with_name("ray"))


@pytest.fixture(scope="module")
def ray_cluster():
    """A local two-node Ray cluster: a head with 1 CPU (and the job server) and a node with 2 CPUs.

    Started with the CLI from this interpreter, token authentication explicitly off, and stopped
    with ``ray stop`` afterwards (which ends every Ray on this host, so no other Ray may be in use).
    """
    import ray

    if ray.is_initialized():
        ray.shutdown()
    # Jobs' entrypoints run with the PATH of `ray start`: put this interpreter's bin first.
    env = {**os.environ, "RAY_AUTH_MODE": "disabled",
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    port, dashboard = _free_port(), _free_port()
    address = f"127.0.0.1:{port}"
    common = ["--disable-usage-stats"]
    subprocess.run([_ray_cli(), "start", "--head", "--node-ip-address=127.0.0.1", f"--port={port}", "--num-cpus=1",
                    "--include-dashboard=true", f"--dashboard-port={dashboard}", *common], env=env, check=True,
                   capture_output=True)
    try:
        subprocess.run([_ray_cli(), "start", f"--address={address}", "--num-cpus=2", *common], env=env,
                       check=True, capture_output=True)
        ray.init(address=address, log_to_driver=False)
        deadline = time.monotonic() + 60
        while len([n for n in ray.nodes() if n["Alive"]]) < 2:
            assert time.monotonic() < deadline, "the worker node did not join"
            time.sleep(0.5)
        yield RayCluster(address, f"http://127.0.0.1:{dashboard}")
    finally:
        ray.shutdown()
        subprocess.run([_ray_cli(), "stop", "--force"], env=env, capture_output=True)
