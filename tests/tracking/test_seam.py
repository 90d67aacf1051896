"""The tracking seam: ``ldlpose train``'s record speaks only the Protocol (a second, in-memory backend
records it here, with no MLflow), and MLflow implements the whole Protocol against a real store."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from mlflow import MlflowClient
from trackfixtures import make_checkpoint

from ldlpose import tracking
from ldlpose.config import run_config_from_dict
from ldlpose.data.identity import RunData
from ldlpose.selection.entry import identity_tags, registration_entry, selection
from ldlpose.train.checkpoints import Selected
from ldlpose.train.run import TrainOutcome


class Recorder:
    """A tracking backend that keeps every call in a list: one class implementing the Protocol."""

    def __init__(self):
        self.calls: list[tuple] = []
        self.experiment_id = "exp-1"

    def _note(self, *call):
        self.calls.append(call)

    def start_experiment(self, config_text, resolved, sampler, seed, manifests):
        self._note("start_experiment", sampler, seed, sorted(manifests))
        return "parent"

    def start_run(self, key, params, tags=None, role="trial"):
        self._note("start_run", key, role, params["method"]["name"])
        return "run-1"

    def log_metrics(self, key, metrics, step):
        self._note("log_metrics", key, step)

    def log_model(self, key, checkpoint_dir):
        self._note("log_model", key, str(checkpoint_dir))
        return "models:/m-1"

    def record_selection(self, key, epoch, scores, checkpoint_sha256, tags=None):
        self._note("record_selection", key, epoch, dict(scores), dict(tags or {}))

    def end_run(self, key, status, metrics, failure_reason=None, node=None, device=None):
        self._note("end_run", key, status)

    def register(self, entry, benchmarks, *, rule="validation"):
        self._note("register", dict(entry), list(benchmarks), rule)
        return {b: {"model": f"headpose-{b}", "version": "1", "moved": True, "champion": "1"} for b in benchmarks}

    def set_alias(self, model, alias, version):
        self._note("set_alias", model, alias, version)

    def log_evaluation(self, result, model, artifacts=()):
        self._note("log_evaluation", result["benchmark"])
        return "eval-1"

    def finish(self, status="FINISHED", error=None):
        self._note("finish", status)


def _run(synth_root: Path):
    return run_config_from_dict({"name": "seam-run", "method": {"name": "gldl"},
                                 "model": {"backbone": "resnet18", "weights": "none"},
                                 "data": {"root": str(synth_root), "benchmarks": ["synth"], "image_size": 32}})


def _outcome(tmp_path: Path) -> TrainOutcome:
    folder = make_checkpoint(tmp_path / "epoch_2")
    state = torch.load(folder / "checkpoint.pt", weights_only=True)
    state["history"] = [{"epoch": 1, "val_mae": 31.0}, {"epoch": 2, "val_mae": 30.0}]
    torch.save(state, folder / "checkpoint.pt")
    last = {"selected_epoch": 2, "selected_val_mae": 30.0, "selected_synth_mae": 31.5, "val_mae": 30.0}
    return TrainOutcome(last, str(folder), str(tmp_path), Selected(str(folder), {"val_mae": 30.0}, 2))


def test_train_record_speaks_only_the_seam(tmp_path, synth_root):
    recorder = Recorder()
    assert isinstance(recorder, tracking.Tracker)
    run, data = _run(synth_root), RunData.of(_run(synth_root).data)
    out = tracking.record_training(recorder, run, _outcome(tmp_path), "seam-run", "name: seam-run\n", data=data,
                                   register=True)
    assert [c[0] for c in recorder.calls] == ["start_experiment", "start_run", "log_metrics", "log_metrics",
                                              "log_model", "record_selection", "end_run", "register", "finish"]
    assert recorder.calls[0] == ("start_experiment", "none", 0, ["synth", "train", "val"])
    assert recorder.calls[1] == ("start_run", "seam-run", "train", "gldl")
    identities = data.benchmark_identities()
    # The same tags and registration entry as a search writes (ldlpose.selection.entry).
    assert recorder.calls[5][4] == identity_tags(identities)
    entry = recorder.calls[7][1]
    assert entry["selection"] == selection("val_mae", 30.0, data.validation_split())
    assert entry["benchmark_data"] == identities and entry["scores"]["synth_mae"] == 31.5
    assert entry["model_uri"] == "models:/m-1" and entry["run_id"] == "run-1"
    assert out["champions"]["synth"]["version"] == "1" and out["experiment_id"] == "exp-1"


@pytest.mark.slow
def test_mlflow_implements_the_seam(tmp_path):
    uri = f"sqlite:///{tmp_path / 'store.db'}"
    tracker = tracking.open_tracker(uri, "seam-search")
    assert isinstance(tracker, tracking.Tracker)
    tracker.start_experiment("name: seam-search\n", {"search": {}}, "tpe", 3, {})
    run_id = tracker.start_run("trial_0", {"method": {"name": "gldl"}}, role="trial")
    tracker.log_metrics("trial_0", {"val_mae": 12.5, "epoch": 1}, 1)
    model_uri = tracker.log_model("trial_0", make_checkpoint(tmp_path / "ckpt"))
    tracker.record_selection("trial_0", 1, {"val_mae": 12.5}, "sha", {"ldlpose.protocol.synth": "synth"})
    tracker.end_run("trial_0", "FINISHED", {"val_mae": 12.5})
    split = {"name": "synthhead/val", "rows": 32, "content_hash": "rows-a"}
    candidate = {"trial_id": "trial_0", "run_id": run_id, "model_uri": model_uri, "method": "gldl",
                 "backbone": "resnet18", "selected_epoch": 1, "scores": {"val_mae": 12.5, "synth_mae": 13.0}}
    entry = registration_entry(candidate, selection("val_mae", 12.5, split),
                               {"synth": {"protocol": "synth", "content_hash": "h", "rows": 32}})
    registered = tracker.register(entry, ["synth"])
    assert registered["synth"]["moved"] and registered["synth"]["alias"] == "champion"
    tracker.set_alias("headpose-synth", "seam-check", registered["synth"]["version"])
    tracker.finish("FINISHED")
    client = MlflowClient(uri)
    run = client.get_run(run_id)
    assert run.data.params["method.name"] == "gldl" and run.data.metrics["selected_val_mae"] == 12.5
    assert run.data.tags["ldlpose.protocol.synth"] == "synth" and run.info.status == "FINISHED"
    version = client.get_model_version_by_alias("headpose-synth", "seam-check")
    assert str(version.version) == registered["synth"]["version"]
    assert version.tags["selection.content_hash"] == "rows-a" and version.tags["test.data.content_hash"] == "h"
