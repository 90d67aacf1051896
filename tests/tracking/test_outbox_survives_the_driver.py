"""A driver SIGKILLed during an MLflow outage loses no epoch's metrics (issue 24, items 2 and 4).

A real search driver (``ldlpose search`` in a subprocess, its own local Ray) logs to a real
``mlflow server`` (SQLite). The server is stopped as soon as the first trial's run exists, and the
trials train their epochs during the outage; the driver, waiting at the end
for MLflow, is SIGKILLed (no handler runs). Meanwhile a second driver of the same search is refused,
naming the first. The server is started again on the same store and the search resumed: the resumed
driver takes the dead driver's lease over at once (same host, pid gone), replays the journaled
writes, and MLflow ends up with every epoch's metrics of every trial exactly once, with Tune's values.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from conftest import processes_under
from test_mlflow_outage import RestartableServer

from ldlpose.cli import main

pytestmark = pytest.mark.slow

NAME, TRIALS, EPOCHS = "durable", 2, 2


def write_space(tmp_path: Path, synth_root: Path) -> Path:
    space = {
        "name": NAME,
        "method": {"name": "gldl"},
        "model": {"backbone": "shufflenet_v2_x0_5", "weights": "none"},
        "data": {"root": str(synth_root), "train": "synthhead/train", "val": "synthhead/val",
                 "benchmarks": ["synth"], "image_size": 64, "max_train_samples": 32},
        "train": {"epochs": EPOCHS, "batch_size": 16, "optimizer": {"name": "adam", "lr": 0.002}, "max_failures": 0},
        "resources": {"workers": 1, "cpus_per_worker": 1},
        "search": {"name": NAME, "sampler": {"name": "random", "seed": 0}, "scheduler": {"name": "none"},
                   "budget": {"trials": TRIALS, "concurrency": TRIALS},
                   "parameters": {"method.hparams.sigma": {"distribution": "log_uniform", "min": 1.0, "max": 4.0}}},
    }
    path = tmp_path / f"{NAME}.yaml"
    path.write_text(yaml.safe_dump(space))
    return path


def trial_runs(uri: str) -> list:
    import mlflow

    client = mlflow.MlflowClient(uri)
    experiment = client.get_experiment_by_name(NAME)
    if experiment is None:
        return []
    return client.search_runs([experiment.experiment_id], "tags.`ldlpose.role` = 'trial'")


def terminated(storage: Path) -> int:
    """How many trials Tune's saved experiment state holds as TERMINATED."""
    count = 0
    for file in (storage / NAME).glob("experiment_state-*.json"):
        try:
            state = json.loads(file.read_text())
        except (OSError, ValueError):
            continue  # being written
        count = max(count, sum(json.loads(entry[0]).get("status") == "TERMINATED" for entry in state["trial_data"]))
    return count


def journaled(storage: Path) -> list[dict]:
    file = storage / NAME / "ldlpose-outbox" / "writes.jsonl"
    lines = file.read_text().splitlines() if file.is_file() else []
    return [json.loads(line) for line in lines if line.endswith("}")]


def wait_for(condition, driver: subprocess.Popen, limit_s: float = 600) -> None:
    deadline = time.monotonic() + limit_s
    while not condition():
        assert driver.poll() is None, "the driver ended early: " + Path(driver.args[-1]).read_text()[-3000:]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.3)


def test_a_driver_killed_during_an_outage_loses_no_epoch_and_a_second_driver_is_refused(
        tmp_path, synth_root, ray_local, capsys):
    import mlflow

    from ldlpose.search.driver import search_and_report

    server = RestartableServer(tmp_path / "mlflow")
    server.root.mkdir()
    server.start()
    space, storage, log = write_space(tmp_path, synth_root), tmp_path / "results", tmp_path / "driver.log"
    env = {**os.environ, "RAY_AUTH_MODE": "disabled"}
    env.pop("RAY_ADDRESS", None)
    command = [sys.executable, "-m", "ldlpose", "search", str(space), "--storage", str(storage),
               "--tracking-uri", server.uri]
    with open(log, "w") as out:
        driver = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT,
                                  start_new_session=True)
    driver.args = [*command, str(log)]  # wait_for shows the log if it ends early
    ray_processes: set[int] = set()
    try:
        # Down as soon as the search is in MLflow: the trials' first epoch is seconds away (their
        # process imports torch and reads the data), so what follows is written during the outage.
        wait_for(lambda: len(trial_runs(server.uri)) >= 1, driver, limit_s=300)
        server.stop()
        wait_for(lambda: terminated(storage) == TRIALS, driver)  # every epoch trained, Tune's state saved
        wait_for(lambda: sum(r.get("kind") == "result" for r in journaled(storage)) == TRIALS * EPOCHS, driver)
        # The outbox has met the outage and says so (its first failed write, after MLflow's own retries).
        wait_for(lambda: "is unreachable" in log.read_text(), driver, limit_s=300)

        # A second driver of the search while the first still runs: refused before anything is touched.
        assert main(["search", str(space), "--resume", "--storage", str(storage), "--tracking-uri", server.uri]) == 2
        refused = capsys.readouterr().err
        assert f"pid {driver.pid}, since" in refused and "is being run by another driver" in refused, refused

        ray_processes = processes_under(driver.pid)
        os.kill(driver.pid, signal.SIGKILL)  # no handler runs: the queue in memory is gone
        driver.wait(timeout=60)
    finally:
        for pid in ray_processes | processes_under(driver.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    printed = log.read_text()
    assert "is unreachable" in printed, printed[-3000:]

    server.start()  # the same store
    try:
        code = search_and_report(str(space), resume=True, storage=str(storage), tracking_uri=server.uri,
                                 verbose=False)
        out = capsys.readouterr().out
        assert code == 0, out[-3000:]
        replayed = int(out.split(" MLflow write(s) an earlier driver left undelivered")[0].rsplit(" ", 1)[-1])
        assert replayed >= TRIALS * EPOCHS - 1, out[-3000:]  # (an epoch can beat the stop to MLflow)
        assert "left undelivered are written first" in out and "tracking problem" not in out, out[-3000:]
        client = mlflow.MlflowClient(server.uri)
        runs = {r.data.tags["ldlpose.trial_id"]: r for r in trial_runs(server.uri)}
        results = {f.parent.name.removeprefix("trial_"): [json.loads(line) for line in f.read_text().splitlines()]
                   for f in (storage / NAME).glob("trial_*/result.json")}
        assert sorted(runs) == sorted(results) and len(runs) == TRIALS
        for trial_id, rows in results.items():
            assert [r["epoch"] for r in rows] == list(range(1, EPOCHS + 1))  # trained once, before the kill
            for key in ("val_mae", "train_loss", "epoch"):
                history = sorted(client.get_metric_history(runs[trial_id].info.run_id, key), key=lambda m: m.step)
                assert [m.step for m in history] == [r["epoch"] for r in rows], (trial_id, key)  # each once
                assert [m.value for m in history] == pytest.approx([r[key] for r in rows]), (trial_id, key)
            assert runs[trial_id].info.status == "FINISHED"
        assert not (storage / NAME / "ldlpose-outbox").exists()  # all delivered: the journal is gone
        (lease,) = (storage / NAME).glob("ldlpose-lease-*.json")
        assert json.loads(lease.read_text())["released"] is True
    finally:
        server.stop()
