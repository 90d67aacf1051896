"""Fixtures and helpers of the tracking tests (imported by the test modules; no conftest.py, whose
module name other test folders import).

* ``mlflow_server``: a real ``mlflow server`` (SQLite, artifacts proxied, one worker, background
  job runner off), started once per test module that imports it and stopped after it;
  ``mlflow_server_launched`` starts it without waiting, so that other fixtures build meanwhile.
* Checkpoints are ResNet-18 at 32 px, random or after a few SGD steps on synthhead images, written
  in the training loop's format (``checkpoint.pt`` = PoseNet state dict + run config as a dict +
  metrics + epoch).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch

IMAGE_SIZE = 32


def synth_samples(count: int, split: str = "test", size: int = IMAGE_SIZE) -> tuple[list[np.ndarray], np.ndarray]:
    from ldlpose.data import synthhead

    samples = list(synthhead.generate(split, count, size=size, seed=0))
    return [s.image for s in samples], np.stack([s.angles_deg for s in samples])


def make_checkpoint(directory: Path, method_name: str = "gldl", *, steps: int = 0, seed: int = 0,
                    image_size: int = IMAGE_SIZE) -> Path:
    """A checkpoint folder as the training loop writes it; ``steps`` SGD steps on synthhead images."""
    from ldlpose import methods
    from ldlpose.config import run_config_from_dict
    from ldlpose.export import IMAGENET_MEAN, IMAGENET_STD, preprocess
    from ldlpose.models import build_model

    torch.manual_seed(seed)
    run = run_config_from_dict({"name": "tiny", "method": {"name": method_name},
                                "model": {"backbone": "resnet18"}, "data": {"image_size": image_size}})
    method = methods.create(method_name)
    net = build_model(method, "resnet18")
    if steps:
        images, angles = synth_samples(16, split="train", size=image_size)
        x = (preprocess(images, image_size) - torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)) / torch.tensor(
            IMAGENET_STD).view(1, 3, 1, 1)
        batch = {"angles_deg": torch.as_tensor(angles, dtype=torch.float32)}
        optimizer = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
        net.train()
        for _ in range(steps):
            loss, _ = method.loss(net(x), batch)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    directory.mkdir(parents=True, exist_ok=True)
    torch.save({"model": net.state_dict(), "run": run.to_dict(), "metrics": {"val_mae": 30.0, "synth_mae": 31.0},
                "epoch": steps}, directory / "checkpoint.pt")
    return directory


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
