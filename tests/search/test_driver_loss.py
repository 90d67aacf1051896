"""A search submitted as a Ray job loses its driver outright; submitting it again resumes it.

On the real two-node local cluster (fixture ``ray_cluster``: a head with the job server, a worker
node), ``ldlpose submit`` runs ``jobs/search.py``. Once a trial has trained all its epochs and Tune
has saved its state, the job's entrypoint process is SIGKILLed (a lost head node, an OOM kill: no
handler runs). The job fails; the same space submitted again resumes the search from storage. No
finished trial trains again, each trial has one MLflow run, each model is logged once, no run is
left RUNNING, and exactly one version is registered: the best trial's.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest
import yaml
from conftest import _cluster_processes, training_frozen

from ldlpose.cli import main

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
NAME = "driverloss"


def write_space(tmp_path: Path, synth_root: Path) -> Path:
    space = {
        "name": NAME,
        "method": {"name": "gldl"},
        "model": {"backbone": "shufflenet_v2_x0_5", "weights": "none"},
        "data": {"root": str(synth_root), "train": "synthhead/train", "val": "synthhead/val",
                 "benchmarks": ["synth"], "image_size": 64, "max_train_samples": 32},
        "train": {"epochs": 1, "batch_size": 16, "optimizer": {"name": "adam", "lr": 0.002}, "max_failures": 0},
        "resources": {"workers": 1, "cpus_per_worker": 1},
        "search": {"name": NAME, "sampler": {"name": "random", "seed": 0}, "scheduler": {"name": "none"},
                   "budget": {"trials": 3, "concurrency": 1},
                   "parameters": {"method": {"values": {
                       "gldl": {"sigma": {"distribution": "log_uniform", "min": 1.0, "max": 4.0}},
                       "hopenet": {"alpha": {"values": [0.1, 1.0]}}}}}},
    }
    path = tmp_path / f"{NAME}.yaml"
    path.write_text(yaml.safe_dump(space))
    return path


def finished_checkpoints(storage: Path) -> dict[str, dict]:
    """Trial id -> its finished training run's checkpoints: name -> (metrics, model file's mtime)."""
    done = {}
    for run_dir in storage.glob(f"{NAME}-*"):
        kept = {}
        for metrics_file in run_dir.glob("checkpoint_epoch_*/metrics.json"):
            try:
                metrics = json.loads(metrics_file.read_text())
                stamps = sorted((p.name, p.stat().st_mtime_ns) for p in metrics_file.parent.iterdir())
            except (OSError, ValueError):
                continue  # being written or pruned right now
            kept[metrics_file.parent.name] = (metrics, stamps)
        if any(m.get("epoch") == 1 for m, _ in kept.values()):
            done[run_dir.name.rsplit("-", 1)[-1]] = kept
    return done


def entrypoint_pids(space: Path) -> list[int]:
    """The job's entrypoint: every process running ``jobs/search.py`` on this space."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if any(a.endswith(b"jobs/search.py") for a in argv) and str(space).encode() in argv:
            found.append(int(entry.name))
    return found


def submit(cluster, space: Path, storage: Path, uri: str, *extra: str) -> int:
    return main(["submit", str(space), "--address", cluster.jobs, "--working-dir", str(REPO),
                 "--storage", str(storage), "--tracking-uri", uri, *extra])


def trial_runs(client) -> list:
    experiment = client.get_experiment_by_name(NAME)
    if experiment is None:
        return []
    return client.search_runs([experiment.experiment_id], "tags.`ldlpose.role` = 'trial'")


def wait_for_job_end(client, job_id: str, timeout_s: float = 120) -> str:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        status = str(client.get_job_status(job_id)).split(".")[-1]
        if status in ("SUCCEEDED", "FAILED", "STOPPED"):
            return status
        time.sleep(0.5)
    pytest.fail(f"job {job_id} did not end within {timeout_s} s after its driver was killed")


def test_a_submitted_search_whose_driver_is_killed_resumes_when_submitted_again(
        tmp_path, synth_root, ray_cluster, mlflow_server):
    import mlflow
    from ray import tune

    from ldlpose.search import submit as jobs
    from ldlpose.search.trials import ORPHAN_REASON

    started = time.monotonic()
    space, storage = write_space(tmp_path, synth_root), tmp_path / "results"
    assert submit(ray_cluster, space, storage, mlflow_server, "--no-wait", "--submission-id", "lost-driver") == 0
    client, _ = jobs.connect(ray_cluster.jobs)
    mlflow_client = mlflow.MlflowClient(mlflow_server)
    deadline = time.monotonic() + 400
    # A trial has trained its epoch and Tune's state is on storage (before that there is nothing to
    # resume). The next trial has started or is about to; if Tune's saved state does not know it yet,
    # the resumed search must close its run.
    while not (finished_checkpoints(storage) and tune.Tuner.can_restore(str(storage / NAME))):
        status = str(client.get_job_status("lost-driver")).split(".")[-1]
        assert status in ("PENDING", "RUNNING"), f"job {status}:\n{client.get_job_logs('lost-driver')[-3000:]}"
        assert time.monotonic() < deadline, "no trial finished in time"
        time.sleep(0.2)
    # Every training process is frozen first: no other trial can finish before the driver is gone.
    with training_frozen(lambda: _cluster_processes(int(ray_cluster.rsplit(":", 1)[1]))):
        victims = entrypoint_pids(space)
        assert victims, "the job's entrypoint process was not found"
        for pid in victims:
            os.kill(pid, signal.SIGKILL)
        killed_at = time.monotonic() - started
        assert wait_for_job_end(client, "lost-driver") == "FAILED"
        before = finished_checkpoints(storage)
    assert before and len(before) < 3

    assert submit(ray_cluster, space, storage, mlflow_server) == 0  # jobs/search.py resumes what it finds
    elapsed = time.monotonic() - started

    after = finished_checkpoints(storage)
    for trial_id, kept in before.items():
        assert after[trial_id] == kept, f"finished trial {trial_id} was trained again"
    known = {t.trial_id for t in tune.ExperimentAnalysis(str(storage / NAME)).trials}
    assert len(known) == 3 and set(before) <= known <= set(after)

    experiment = mlflow_client.get_experiment_by_name(NAME)
    runs = trial_runs(mlflow_client)
    trials = [r for r in runs if r.data.tags["ldlpose.trial_id"] in known]
    assert sorted(r.data.tags["ldlpose.trial_id"] for r in trials) == sorted(known)  # one run per trial
    assert all(r.info.status == "FINISHED" for r in trials)
    assert not [r.info.run_id for r in runs if r.info.status == "RUNNING"], "a run was left RUNNING"
    orphans = [r for r in runs if r.data.tags["ldlpose.trial_id"] not in known]
    assert all(r.info.status == "KILLED" and r.data.tags["ldlpose.failure_reason"] == ORPHAN_REASON
               for r in orphans)
    for run in trials:  # one epoch each (a trial resumed after its last epoch reports it again)
        assert {m.step for m in mlflow_client.get_metric_history(run.info.run_id, "val_mae")} == {1}
    models = mlflow_client.search_logged_models([experiment.experiment_id])
    assert sorted(m.tags["ldlpose.trial_id"] for m in models) == sorted(known)  # each logged exactly once

    best = min(trials, key=lambda r: r.data.metrics["selected_val_mae"])
    versions = [v for v in mlflow_client.search_model_versions("name = 'headpose-synth'")
                if v.tags.get("search_id") == NAME]
    assert len(versions) == 1, "the champion is registered once"
    assert versions[0].tags["trial_id"] == best.data.tags["ldlpose.trial_id"]
    assert versions[0].tags["model_uri"] == best.data.tags["ldlpose.model_uri"]
    print(f"driver killed {killed_at:.0f} s after the first submit; whole drill {elapsed:.0f} s; "
          f"finished before the kill: {len(before)}; orphaned runs closed: {len(orphans)}")
