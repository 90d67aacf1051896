"""Models are exported in a worker process that is replaced every EXPORTS_PER_WORKER exports and
after it dies (ldlpose.tracking.export_worker): the search driver keeps none of torch.export's
leftovers, and a lost worker costs one model, not the search."""

from __future__ import annotations

import os
import signal

import numpy as np
import pytest
import torch
from trackfixtures import IMAGE_SIZE, make_checkpoint

from ldlpose import tracking
from ldlpose.inference.predictor import predictor_from_checkpoint
from ldlpose.tracking import export_worker

pytestmark = pytest.mark.slow


def test_the_worker_is_replaced_after_its_exports_and_after_it_dies(tmp_path, monkeypatch):
    monkeypatch.setattr(export_worker, "EXPORTS_PER_WORKER", 2)
    export_worker._worker._retire()  # start from no worker, whatever earlier tests left
    checkpoint = make_checkpoint(tmp_path / "ckpt", "gldl", steps=2, seed=4)
    tracker = tracking.SearchTracker(f"sqlite:///{tmp_path / 'mlflow.db'}", "export-worker")
    tracker.start("", {}, "tpe", 0, {})

    def log(trial: str) -> tuple[str, int | None]:
        tracker.trial_started(trial, {})
        return tracker.log_trial_model(trial, checkpoint), export_worker.worker_pid()

    (first_uri, first), (_, second), (_, third) = log("t0"), log("t1"), log("t2")
    assert first == second != third  # two exports per worker, then a new process
    assert first != os.getpid()

    os.kill(third, signal.SIGKILL)
    tracker.trial_started("t3", {})
    with pytest.raises(tracking.TrackingError, match=r"trial t3 .*export worker process ended"):
        tracker.log_trial_model("t3", checkpoint)
    uri, fourth = log("t4")
    assert fourth not in (None, third)

    # What the worker logged is the checkpoint's model: same predictions as exporting it here.
    images = torch.rand(3, 3, IMAGE_SIZE, IMAGE_SIZE, generator=torch.Generator().manual_seed(1))
    expected, _ = predictor_from_checkpoint(checkpoint)
    for model_uri in (first_uri, uri):
        loaded, info = tracking.load_predictor(model_uri, tracker.uri)
        assert info["trial_id"] in ("t0", "t4") and info["method"] == "gldl"
        with torch.no_grad():
            np.testing.assert_allclose(np.asarray(loaded(images)), expected(images).numpy(), atol=1e-4)


def test_credentials_set_after_the_worker_started_reach_it(tmp_path, monkeypatch, mlflow_server_basic_auth):
    """The driver moves a URI's password into its environment when a search starts, possibly after
    the worker began (the warm-up, an earlier search in the same process): every export carries it."""
    server = mlflow_server_basic_auth
    for key in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
        monkeypatch.delenv(key, raising=False)
    export_worker._worker._retire()
    export_worker.warm_up()  # a worker whose environment has no credentials
    started = export_worker.worker_pid()
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", server.username)
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", server.password)
    tracker = tracking.SearchTracker(str(server), "export-worker-auth")
    tracker.start("", {}, "tpe", 0, {})
    tracker.trial_started("t0", {})
    model_uri = tracker.log_trial_model("t0", make_checkpoint(tmp_path / "ckpt", "gldl", seed=5))
    assert export_worker.worker_pid() == started and model_uri.startswith("models:/")
    _, info = tracking.load_predictor(model_uri, str(server))
    assert info["trial_id"] == "t0"
