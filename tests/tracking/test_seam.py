"""The tracking seam: ``ldlpose train``'s record and a search's steps after Tune (orphans closed, the
Pareto front registered and plotted, the story told) speak only the Protocols (a second, in-memory
backend records them here, with no MLflow), and MLflow implements both against a real store."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from mlflow import MlflowClient
from trackfixtures import make_checkpoint

from ldlpose import tracking
from ldlpose.config import run_config_from_dict
from ldlpose.data.identity import RunData
from ldlpose.search import pareto, story
from ldlpose.search.callback import TrackingCallback
from ldlpose.search.space import search_space_from_dict
from ldlpose.search.trials import ORPHAN_REASON, close_orphans
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


class Memory(Recorder):
    """A search's tracking backend in memory: the runs it was given, read back (the SearchTracking Protocol)."""

    def __init__(self):
        super().__init__()
        self.runs: dict[str, dict] = {}
        self.files: dict[str, list[str]] = {}
        self.summary: dict = {}

    def start_experiment(self, config_text, resolved, sampler, seed, manifests):
        self.parent = {"run_id": "parent", "name": "front", "status": "RUNNING", "role": "search", "trial_id": None,
                       "params": {}, "tags": {"ldlpose.search_id": "front"}, "metrics": {}, "start_ms": 1,
                       "end_ms": None}
        return "parent"

    def start_run(self, key, params, tags=None, role="trial", name=None):
        self.runs.setdefault(key, {"run_id": f"run-{key}", "name": name or key, "status": "RUNNING", "role": role,
                                   "trial_id": key, "params": dict(params),
                                   "tags": {**(tags or {}), tracking.TAG_ROLE: role},
                                   "metrics": {}, "start_ms": 1, "end_ms": None})
        return self.runs[key]["run_id"]

    def log_metrics(self, key, metrics, step, timestamp_ms=None):
        self.runs[key]["metrics"].update(metrics)

    def end_run(self, key, status, metrics, failure_reason=None, node=None, device=None):
        self.runs[key].update(status=status, end_ms=2)
        self.runs[key]["tags"]["failure_reason"] = failure_reason

    def trial_ids(self):
        return list(self.runs)

    def trial_record(self, key):
        run = self.runs.get(key)
        return None if run is None else {k: run[k] for k in ("run_id", "status", "tags", "metrics")}

    def log_trial_artifacts(self, key, checkpoint_dir, eval_data):
        return []

    def log_files(self, folder, figures=None, texts=None):
        self.files[folder] = sorted({**(figures or {}), **(texts or {})})
        return [f"{folder}/{name}" for name in self.files[folder]]

    def log_search_plots(self, study):
        return []

    def log_search_summary(self, metrics, figures, tags):
        self.summary = {"metrics": dict(metrics), "figures": sorted(figures), "tags": dict(tags)}

    def search_record(self):
        return {"uri": "memory", "experiment_id": self.experiment_id, "parent": self.parent,
                "runs": list(self.runs.values()), "versions": []}

    def register_front(self, members, benchmarks, *, rule="validation"):
        self._note("register_front", [m["trial_id"] for m in members], list(benchmarks), rule)
        versions = {m["trial_id"]: str(i + 1) for i, m in enumerate(members)}
        return {b: {"model": f"headpose-{b}", "versions": versions, "alias": "champion", "champion": "1",
                    "moved": True, "comparable": True} for b in benchmarks}


def _front_space(synth_root: Path):
    return search_space_from_dict({
        "name": "front", "method": {"name": "gldl"}, "model": {"backbone": "resnet18", "weights": "none"},
        "data": {"root": str(synth_root), "benchmarks": ["synth"], "image_size": 32},
        "search": {"metric": [{"name": "val_mae", "goal": "minimize"}, {"name": "latency_ms", "goal": "minimize"},
                              {"name": "params_m", "goal": "minimize"}],
                   "sampler": {"name": "nsga2", "seed": 0},
                   "parameters": {"model.backbone": {"values": ["mobilenet_v3_small", "resnet18"]}}}},
        file="front.yaml")


def test_a_search_s_steps_after_tune_speak_only_the_seam(tmp_path, synth_root, capsys):
    memory = Memory()
    assert isinstance(memory, tracking.SearchTracking)
    space = _front_space(synth_root)
    callback = TrackingCallback("memory:", space, {}, str(tmp_path), "front", tracker=memory)
    memory.start_experiment("name: front\n", {}, "nsga2", 0, {})
    # Trial c's costs are not in Tune's result: the front reads them back from the backend.
    costs = {"a": (10.0, 5.0, 11.0), "b": (12.0, 2.0, 2.0), "c": (13.0, 9.0, 20.0)}
    for key, (mae, latency, params) in costs.items():
        memory.start_run(key, {"method.name": "gldl", "model.backbone": "resnet18", "train.epochs": "1"})
        memory.log_metrics(key, {"selected_val_mae": mae, "epoch": 1.0, "latency_ms": latency, "params_m": params}, 1)
        memory.end_run(key, "FINISHED", {})
    memory.start_run("lost", {"method.name": "gldl"})  # a killed driver's trial, unknown to Tune

    assert close_orphans(memory, set(costs), "trial") == ["lost"]
    assert memory.runs["lost"]["status"] == "KILLED" and memory.runs["lost"]["tags"]["failure_reason"] == ORPHAN_REASON

    ranked = [{"trial_id": k, "run_id": f"run-{k}", "model_uri": f"models:/m-{k}", "method": "gldl",
               "backbone": "resnet18", "selected_epoch": 1, "objective": v[0], "scores": {"synth_mae": v[0] + 1},
               "assignment": {"model.backbone": "resnet18"}} for k, v in sorted(costs.items(), key=lambda kv: kv[1])]
    tune_results = [SimpleNamespace(trial_id=k, metrics={"latency_ms": costs[k][1], "params_m": costs[k][2]})
                    for k in ("a", "b")]
    identities = RunData.of(space.base_run.data).benchmark_identities()
    registered = pareto.report_front(callback, space, ranked, SimpleNamespace(trials=tune_results), identities)
    assert callback.problems == []
    assert ("register_front", ["a", "b"], ["synth"], "validation") in memory.calls  # c is dominated by a
    assert registered["synth"]["versions"] == {"a": "1", "b": "2"}
    assert memory.files["plots"] == ["pareto_front.json", "pareto_front.png"]
    printed = capsys.readouterr().out  # through the search's console
    assert "Pareto front on val_mae, latency_ms, params_m (2 of 3 trials" in printed
    assert "registered headpose-synth versions 1, 2" in printed

    summary = story.log_story(memory)
    assert summary["best_val_mae"] == 10.0 and summary["trials_finished"] == 3.0
    assert memory.summary["metrics"] == summary and memory.summary["figures"] == list(story.FIGURES)


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
    assert isinstance(tracker, tracking.Tracker) and isinstance(tracker, tracking.SearchTracking)
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
    assert tracker.log_files("plots", texts={"front.json": "{}\n"}) == ["plots/front.json"]
    assert tracker.trial_ids() == ["trial_0"] and tracker.trial_record("trial_0")["run_id"] == run_id
    record = tracker.search_record()
    assert [r["trial_id"] for r in record["runs"]] == ["trial_0"] and record["versions"][0]["model"] == "headpose-synth"
    tracker.finish("FINISHED")
    client = MlflowClient(uri)
    run = client.get_run(run_id)
    assert run.data.params["method.name"] == "gldl" and run.data.metrics["selected_val_mae"] == 12.5
    assert run.data.tags["ldlpose.protocol.synth"] == "synth" and run.info.status == "FINISHED"
    version = client.get_model_version_by_alias("headpose-synth", "seam-check")
    assert str(version.version) == registered["synth"]["version"]
    assert [a.path for a in client.list_artifacts(tracker.parent_run_id, "plots")] == ["plots/front.json"]
    assert version.tags["selection.content_hash"] == "rows-a" and version.tags["test.data.content_hash"] == "h"
