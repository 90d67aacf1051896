"""A worker node dies outright in the middle of a trial; the trial goes on from its checkpoint elsewhere.

The cluster is laid out as cluster.yaml lays out a real one (fixture ``ray_cluster_three``): trial
drivers on the head, training workers on two worker nodes. Once the first trial has reported an
epoch, the node its training worker runs on loses its raylet and every process under it to
SIGKILL, as when a spot node is reclaimed. The node is found by its Ray node id (the epoch's
``node_id`` metric), matched to its raylet's own command line. On Ray Train (``train.max_failures``) the worker group
restarts on the other node from the latest checkpoint; an in-process trial (its own worker) is
restarted there by Tune, within the same ``train.max_failures``. Either way the search must end
with every trial finished, one MLflow run per trial, and the killed trial's epochs continuing where
its checkpoint left off.
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


def search_name(engine: str) -> str:
    return f"nodeloss-{engine.replace('_', '-')}"


def write_space(tmp_path: Path, synth_root: Path, engine: str) -> Path:
    space = {
        "name": search_name(engine),
        "method": {"name": "gldl"},
        "model": {"backbone": "resnet18", "weights": "none"},
        "data": {"root": str(synth_root), "train": "synthhead/train", "val": "synthhead/val",
                 "benchmarks": ["synth"], "image_size": 64, "max_train_samples": 192},
        # max_failures: the retries that absorb a lost node (the default 0 would fail the trial). The
        # trial's training process is frozen as soon as an epoch is seen (freeze_training), so the node
        # dies while the trial still trains however fast this machine trains.
        "train": {"epochs": EPOCHS, "batch_size": 16, "optimizer": {"name": "adam", "lr": 0.002}, "max_failures": 2},
        "resources": {"workers": 1, "cpus_per_worker": 1, "engine": engine},
        "search": {"name": search_name(engine), "sampler": {"name": "random", "seed": 0}, "scheduler": {"name": "none"},
                   "budget": {"trials": 2, "concurrency": 1},
                   "parameters": {"train.optimizer.lr": {"values": [0.002, 0.001]}}},
    }
    path = tmp_path / f"{search_name(engine)}.yaml"
    path.write_text(yaml.safe_dump(space))
    return path


def results(storage: Path, name: str) -> dict[str, list[dict]]:
    """Trial id -> the rows Tune recorded for it (one per reported epoch, every attempt)."""
    out = {}
    for result_file in (storage / name).glob("trial_*/result.json"):
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


def _cmdline(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")


def raylet_of(node_id: str) -> int:
    """The pid of ``node_id``'s raylet: the one started with that node's socket (ray.nodes()) and id.

    On this one-host cluster every node's processes look alike; a worker's parent process is not a
    reliable guide to its node, the raylet's own command line is.
    """
    import ray

    nodes = [n for n in ray.nodes() if n["NodeID"] == node_id and n["Alive"]]
    assert nodes, f"node {node_id} is not alive"
    socket = f"--raylet_socket_name={nodes[0]['RayletSocketName']}"
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                argv = _cmdline(int(entry.name))
            except OSError:
                continue  # the process ended meanwhile
            if Path(argv[0]).name == "raylet" and socket in argv:
                found.append((int(entry.name), argv))
    assert len(found) == 1, f"expected one raylet with {socket}, found {[pid for pid, _ in found]}"
    pid, argv = found[0]
    assert f"--node_id={node_id}" in argv, f"raylet {pid} with {socket} is not node {node_id}'s"
    return pid


# A Ray Train worker, or an in-process trial (Tune's function trainable, its own worker).
TRAINING_ACTORS = ("RayTrainWorker", "ImplicitFunc")


def freeze_training(node_id: str) -> set[int]:
    """SIGSTOP, at once, every training process under ``node_id``'s raylet (Ray titles an actor's
    process ``ray::<class>[.<method>]``): the trial cannot train past the epoch the test saw while
    the checks before the kill take their time, however fast this machine is. /proc alone, no Ray
    state API (seconds on a loaded machine). SIGKILL ends a stopped process as well."""
    frozen = set()
    for pid in _descendants(raylet_of(node_id)):
        try:
            title = _cmdline(pid)[0]
        except (OSError, IndexError):
            continue  # the process ended meanwhile
        if title.startswith(tuple(f"ray::{kind}" for kind in TRAINING_ACTORS)):
            os.kill(pid, signal.SIGSTOP)
            frozen.add(pid)
    assert frozen, f"no training process under node {node_id}'s raylet"
    return frozen


def kill_node_of(node_id: str, frozen: set[int], cluster: str) -> list[int]:
    """SIGKILL the raylet of ``node_id`` and every process under it (its workers and agents), once
    Ray confirms that the training workers on it are the ``frozen`` processes."""
    from ray.util.state import list_actors

    # The cluster's address, given: the state API would otherwise look for one in the host's temp
    # folder, which names another Ray (the cluster keeps a temp folder of its own).
    workers = [actor for kind in TRAINING_ACTORS
               for actor in list_actors(address=cluster, filters=[("class_name", "=", kind), ("state", "=", "ALIVE"),
                                                                  ("node_id", "=", node_id)])]
    assert workers, f"no training worker alive on node {node_id}"
    assert {w.pid for w in workers} <= frozen, \
        f"training workers {[w.pid for w in workers]} on node {node_id} are not the frozen processes {frozen}"
    victims = _descendants(raylet_of(node_id))
    assert frozen <= set(victims), f"frozen processes {frozen} are not under node {node_id}'s raylet: {victims}"
    for pid in victims:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    _wait_for_death(node_id)
    return victims


def _wait_for_death(node_id: str, timeout_s: float = 60) -> None:
    """The GCS declares exactly the killed node dead (about 5 s with the fixture's health checks)."""
    import ray

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        nodes = {n["NodeID"]: n["Alive"] for n in ray.nodes()}
        if not nodes.get(node_id, False):
            return
        time.sleep(0.5)
    dead = [n for n, alive in nodes.items() if not alive]
    pytest.fail(f"node {node_id} is still alive {timeout_s} s after its raylet was killed; dead: {dead}")


def _reported_epochs(uri: str, name: str) -> dict[str, float]:
    """Trial id -> the last epoch Tune has received, as its MLflow run shows it."""
    import mlflow

    client = mlflow.MlflowClient(uri)
    experiment = client.get_experiment_by_name(name)
    if experiment is None:
        return {}
    runs = client.search_runs([experiment.experiment_id], "tags.`ldlpose.role` = 'trial'")
    return {r.data.tags["ldlpose.trial_id"]: r.data.metrics["epoch"] for r in runs if "epoch" in r.data.metrics}


def wait_for_first_epoch(storage: Path, name: str, process: subprocess.Popen, log: Path, uri: str,
                         timeout_s: float = 400) -> dict:
    """The metrics of a trial's first epoch (from its checkpoint's metrics.json: Tune may sync its own
    result files to storage only at the end), once Tune has received that epoch.

    Written is not enough: on Ray Train a checkpoint counts for a restart only once its report has
    reached the Train controller, which passes it on to Tune. A node lost between the two restarts
    the run from the checkpoint before (here: from scratch), as the first try of this test saw.
    """
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert process.poll() is None, f"the search ended before any epoch:\n{log.read_text()[-4000:]}"
        for written in storage.glob(f"{name}-*/checkpoint_epoch_*/metrics.json"):
            try:
                metrics = json.loads(written.read_text())
            except (OSError, ValueError):
                continue  # being written or pruned right now
            trial_id = written.parent.parent.name.rsplit("-", 1)[-1]
            if metrics["epoch"] < EPOCHS and _reported_epochs(uri, name).get(trial_id, 0) >= metrics["epoch"]:
                return {**metrics, "trial_id": trial_id}
        time.sleep(0.2)
    pytest.fail(f"no trial reported an epoch within {timeout_s} s:\n{log.read_text()[-4000:]}")


@pytest.mark.parametrize("engine", ["in_process", "ray_train"])
def test_a_trial_survives_the_loss_of_its_worker_node(engine, tmp_path, synth_root, ray_cluster_three, mlflow_server):
    import mlflow
    import ray

    storage, log = tmp_path / "results", tmp_path / "search.log"
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "RAY_ADDRESS": str(ray_cluster_three)}
    with open(log, "w") as out:
        space_file = write_space(tmp_path, synth_root, engine)
        process = subprocess.Popen([sys.executable, "-m", "ldlpose", "search", str(space_file),
                                    "--storage", str(storage), "--tracking-uri", mlflow_server],
                                   env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        reported = wait_for_first_epoch(storage, search_name(engine), process, log, mlflow_server)
        lost_node, victim_trial = reported["node_id"], reported["trial_id"]
        kill_node_of(lost_node, freeze_training(lost_node), str(ray_cluster_three))
        assert process.wait(timeout=600) == 0, log.read_text()[-4000:]
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)

    assert lost_node not in {n["NodeID"] for n in ray.nodes() if n["Alive"]}, "the killed node is declared dead"
    rows = results(storage, search_name(engine))
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
    experiment = client.get_experiment_by_name(search_name(engine))
    runs = client.search_runs([experiment.experiment_id], "tags.`ldlpose.role` = 'trial'")
    assert sorted(r.data.tags["ldlpose.trial_id"] for r in runs) == sorted(rows), "one MLflow run per trial"
    assert all(r.info.status == "FINISHED" for r in runs)
    victim_run = next(r for r in runs if r.data.tags["ldlpose.trial_id"] == victim_trial)
    assert max(m.value for m in client.get_metric_history(victim_run.info.run_id, "resumed_from_epoch")) > 0
    assert victim_run.data.metrics["epoch"] == EPOCHS
