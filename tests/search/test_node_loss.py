"""A worker node dies outright in the middle of a trial; the trial goes on from its checkpoint elsewhere.

The cluster is laid out as cluster.yaml lays out a real one (fixture ``ray_cluster_three``): trial
drivers on the head, training workers on two worker nodes. Once the first trial has reported an
epoch, the node its training worker runs on loses its raylet and every process under it to
SIGKILL, as when a spot node is reclaimed. Ray Train (``train.max_failures``) restarts the worker
group on the other node from the latest checkpoint; the search must end with every trial finished,
one MLflow run per trial, and the killed trial's epochs continuing where its checkpoint left off.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.slow

EPOCHS = 3
NAME = "nodeloss"


def write_space(tmp_path: Path, synth_root: Path) -> Path:
    space = {
        "name": NAME,
        "method": {"name": "gldl"},
        "model": {"backbone": "resnet18", "weights": "none"},
        "data": {"root": str(synth_root), "train": "synthhead/train", "val": "synthhead/val",
                 "benchmarks": ["synth"], "image_size": 64, "max_train_samples": 48},
        # max_failures: the Train-level retries that absorb a lost node (the default 0 would fail the trial).
        "train": {"epochs": EPOCHS, "batch_size": 16, "optimizer": {"name": "adam", "lr": 0.002}, "max_failures": 2},
        "resources": {"workers": 1, "cpus_per_worker": 1},
        "search": {"name": NAME, "sampler": {"name": "random", "seed": 0}, "scheduler": {"name": "none"},
                   "budget": {"trials": 2, "concurrency": 1},
                   "parameters": {"train.optimizer.lr": {"values": [0.002, 0.001]}}},
    }
    path = tmp_path / f"{NAME}.yaml"
    path.write_text(yaml.safe_dump(space))
    return path


def results(storage: Path) -> dict[str, list[dict]]:
    """Trial id -> the rows Tune recorded for it (one per reported epoch, every attempt)."""
    out = {}
    for result_file in (storage / NAME).glob("trial_*/result.json"):
        rows = [json.loads(line) for line in result_file.read_text().splitlines() if line.strip()]
        if rows:
            out[rows[0]["trial_id"]] = rows
    return out


def _parent(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def _descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                children.setdefault(_parent(int(entry.name)), []).append(int(entry.name))
            except (OSError, IndexError, ValueError):
                pass  # the process ended meanwhile
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def kill_node_of(node_id: str) -> list[int]:
    """SIGKILL the raylet of ``node_id`` and every process under it (its workers and agents)."""
    from ray.util.state import list_actors

    workers = list_actors(filters=[("class_name", "=", "RayTrainWorker"), ("state", "=", "ALIVE"),
                                   ("node_id", "=", node_id)])
    assert workers, f"no training worker alive on node {node_id}"
    raylet = _parent(workers[0].pid)
    assert Path(f"/proc/{raylet}/comm").read_text().strip() == "raylet", "a worker's parent is its node's raylet"
    victims = _descendants(raylet)
    for pid in victims:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return victims


def wait_for_first_epoch(storage: Path, process: subprocess.Popen, log: Path, timeout_s: float = 400) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert process.poll() is None, f"the search ended before any epoch:\n{log.read_text()[-4000:]}"
        for rows in results(storage).values():
            if rows[-1]["epoch"] < EPOCHS:
                return rows[-1]
        time.sleep(0.2)
    pytest.fail(f"no trial reported an epoch within {timeout_s} s:\n{log.read_text()[-4000:]}")


def test_a_trial_survives_the_loss_of_its_worker_node(tmp_path, synth_root, ray_cluster_three, mlflow_server):
    import mlflow
    import ray

    storage, log = tmp_path / "results", tmp_path / "search.log"
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "RAY_ADDRESS": str(ray_cluster_three)}
    with open(log, "w") as out:
        process = subprocess.Popen([sys.executable, "-m", "ldlpose", "search", str(write_space(tmp_path, synth_root)),
                                    "--storage", str(storage), "--tracking-uri", mlflow_server],
                                   env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        reported = wait_for_first_epoch(storage, process, log)
        lost_node, victim_trial = reported["node_id"], reported["trial_id"]
        kill_node_of(lost_node)
        assert process.wait(timeout=600) == 0, log.read_text()[-4000:]
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)

    assert lost_node not in {n["NodeID"] for n in ray.nodes() if n["Alive"]}, "the killed node is declared dead"
    rows = results(storage)
    assert len(rows) == 2 and all(r[-1]["epoch"] == EPOCHS for r in rows.values()), "every trial finished"
    victim = rows[victim_trial]
    resumed = [r for r in victim if r["resumed_from_epoch"] > 0]
    assert resumed, f"the killed trial never resumed from a checkpoint: {[r['epoch'] for r in victim]}"
    first = resumed[0]
    assert first["epoch"] == first["resumed_from_epoch"] + 1, "the epoch counter continues from the checkpoint"
    assert [r["epoch"] for r in resumed] == list(range(first["epoch"], EPOCHS + 1))
    resumed_on = {r["node_id"] for r in resumed}
    assert resumed_on and lost_node not in resumed_on, "the resumed epochs ran on the remaining node"
    assert all(r["node_id"] == lost_node for r in victim if r["resumed_from_epoch"] == 0)

    client = mlflow.MlflowClient(mlflow_server)
    experiment = client.get_experiment_by_name(NAME)
    runs = client.search_runs([experiment.experiment_id], "tags.`ldlpose.role` = 'trial'")
    assert sorted(r.data.tags["ldlpose.trial_id"] for r in runs) == sorted(rows), "one MLflow run per trial"
    assert all(r.info.status == "FINISHED" for r in runs)
    victim_run = next(r for r in runs if r.data.tags["ldlpose.trial_id"] == victim_trial)
    assert max(m.value for m in client.get_metric_history(victim_run.info.run_id, "resumed_from_epoch")) > 0
    assert victim_run.data.metrics["epoch"] == EPOCHS
