"""Searches end to end on a real two-node local Ray cluster, with real Optuna and a real MLflow server."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from ldlpose.errors import LdlposeError
from ldlpose.search.driver import search_and_report

pytestmark = pytest.mark.slow


def write_space(tmp_path: Path, synth_root: Path, name: str, *, parameters: dict, trials: int, epochs: int = 1,
                sampler: str = "random", concurrency: int = 2, lr: float = 0.002, train_samples: int = 96,
                method: str = "gldl") -> Path:
    space = {
        "name": name,
        "method": {"name": method},
        "model": {"backbone": "resnet18", "weights": "none"},
        "data": {"root": str(synth_root), "train": "synthhead/train", "val": "synthhead/val",
                 "benchmarks": ["synth"], "image_size": 64, "max_train_samples": train_samples},
        "train": {"epochs": epochs, "batch_size": 16, "optimizer": {"name": "adam", "lr": lr}, "max_failures": 0},
        "resources": {"workers": 1, "cpus_per_worker": 1},
        "search": {"name": name, "sampler": {"name": sampler, "seed": 0},
                   "scheduler": {"name": "asha", "grace_period": 1},
                   "budget": {"trials": trials, "concurrency": concurrency}, "parameters": parameters},
    }
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(space))
    return path


def child_runs(uri: str, search: str) -> list:
    import mlflow

    client = mlflow.MlflowClient(uri)
    experiment = client.get_experiment_by_name(search)
    return client.search_runs([experiment.experiment_id], f"tags.`ldlpose.search_id` = '{search}'")


CONDITIONAL = {"method": {"values": {"gldl": {"sigma": {"distribution": "log_uniform", "min": 1.0, "max": 4.0}},
                                     "hopenet": {"alpha": {"values": [0.1, 1.0]}}}}}


def test_a_search_tracks_every_trial_and_registers_a_loadable_champion(
        tmp_path, synth_root, ray_cluster, mlflow_server, capsys):
    space = write_space(tmp_path, synth_root, "cond", parameters=CONDITIONAL, trials=4, epochs=2)
    assert search_and_report(str(space), storage=str(tmp_path / "results"), address=ray_cluster,
                             tracking_uri=mlflow_server) == 0
    printed = capsys.readouterr().out
    assert "registered headpose-synth version" in printed and "mlflow ui --backend-store-uri" in printed

    runs = child_runs(mlflow_server, "cond")
    parent = [r for r in runs if r.data.tags["ldlpose.role"] == "search"]
    trials = [r for r in runs if r.data.tags["ldlpose.role"] == "trial"]
    assert len(parent) == 1 and len(trials) == 4
    for run in trials:
        assert run.data.tags["mlflow.parentRunId"] == parent[0].info.run_id
        assert "val_mae" in run.data.metrics and "synth_mae" in run.data.metrics
        # The conditional parameter exists only in trials of its own method.
        method = run.data.params["method"]
        own = {k for k in run.data.params if k.startswith("method.")}
        assert own == {"method.gldl.sigma"} if method == "gldl" else own == {"method.hopenet.alpha"}

    # The champion loads from the registry and reproduces its trial's synth MAE on the synth test set.
    from ldlpose.data import benchmarks
    from ldlpose.data.shards import sample_rows
    from ldlpose.metrics import evaluate
    from ldlpose.tracking import list_champions, load_predictor

    (champion,) = list_champions(mlflow_server)
    predictor, info = load_predictor("models:/headpose-synth@champion", mlflow_server)
    folder = benchmarks.get("synth").resolve(synth_root)
    images, angles = sample_rows(folder, 10_000)
    predicted = predictor.predict_images(images)
    assert evaluate(predicted, angles)["mae"] == pytest.approx(champion["mae"], abs=0.05)
    assert info["image_size"] == 64

    # A worse search adds a version but leaves the alias; a better one moves it.
    worse = write_space(tmp_path, synth_root, "worse", parameters={"train.optimizer.lr": {"value": 1e-9}},
                        trials=1, method="sixdrepnet", train_samples=16)
    assert search_and_report(str(worse), storage=str(tmp_path / "results"), address=ray_cluster,
                             tracking_uri=mlflow_server) == 0
    after_worse = list_champions(mlflow_server)[0]
    assert after_worse["version"] == champion["version"]
    import mlflow

    versions = mlflow.MlflowClient(mlflow_server).search_model_versions("name='headpose-synth'")
    assert len(versions) == 2

    # More training data (same benchmark test set) makes a clearly better model.
    from ldlpose.cli import main

    assert main(["prepare", "synthhead", "--out", str(tmp_path / "big"), "--train", "1200", "--val", "0",
                 "--test", "0", "--seed", "1", "--workers", "2"]) == 0
    better = write_space(tmp_path, synth_root, "better", parameters={"method.hparams.sigma": {"value": 2.0}},
                         trials=1, epochs=4, train_samples=1200)
    data = yaml.safe_load(better.read_text())
    data["data"]["train"] = str(tmp_path / "big" / "train")
    better.write_text(yaml.safe_dump(data))
    assert search_and_report(str(better), storage=str(tmp_path / "results"), address=ray_cluster,
                             tracking_uri=mlflow_server) == 0
    after_better = list_champions(mlflow_server)[0]
    assert after_better["mae"] < champion["mae"]
    assert after_better["search_id"] == "better" and after_better["version"] != champion["version"]


def test_a_failing_trial_is_recorded_and_the_search_goes_on(tmp_path, synth_root, ray_cluster, mlflow_server):
    # epochs=1 with warmup_epochs=1 is an invalid combination, found only when that trial starts.
    parameters = {"train.epochs": {"values": [1, 2]}, "train.schedule.warmup_epochs": {"values": [0, 1]}}
    space = write_space(tmp_path, synth_root, "failing", parameters=parameters, trials=4, sampler="grid",
                        train_samples=32, epochs=2)  # each value is valid alone with the base's 2 epochs
    assert search_and_report(str(space), storage=str(tmp_path / "results"), address=ray_cluster,
                             tracking_uri=mlflow_server) == 0
    runs = [r for r in child_runs(mlflow_server, "failing") if r.data.tags["ldlpose.role"] == "trial"]
    assert len(runs) == 4
    failed = [r for r in runs if r.info.status == "FAILED"]
    assert len(failed) == 1
    assert "warmup_epochs" in failed[0].data.tags["ldlpose.failure_reason"]
    assert all("val_mae" in r.data.metrics for r in runs if r.info.status == "FINISHED")


def _finished_trials(results: Path) -> dict[str, dict]:
    done = {}
    for result_file in results.glob("trial_*/result.json"):
        lines = [json.loads(line) for line in result_file.read_text().splitlines() if line.strip()]
        if lines and lines[-1].get("epoch") == lines[-1].get("epochs_total", 1):
            done[lines[-1]["trial_id"]] = lines[-1]
    return done


def test_an_interrupted_search_resumes_without_rerunning_finished_trials(
        tmp_path, synth_root, ray_cluster, mlflow_server):
    space = write_space(tmp_path, synth_root, "resumable", parameters=CONDITIONAL, trials=3, concurrency=1,
                        train_samples=32)
    storage = tmp_path / "results"
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "RAY_ADDRESS": ray_cluster}
    command = [sys.executable, "-m", "ldlpose", "search", str(space), "--storage", str(storage),
               "--tracking-uri", mlflow_server]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               start_new_session=True)
    deadline = time.monotonic() + 300
    while not _finished_trials(storage / "resumable"):
        assert process.poll() is None, process.stdout.read()[-3000:]
        assert time.monotonic() < deadline, "no trial finished in time"
        time.sleep(0.5)
    os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C does
    process.communicate(timeout=180)
    first = _finished_trials(storage / "resumable")
    assert 1 <= len(first) < 3

    # Without --resume the stored search is never touched.
    with pytest.raises(LdlposeError, match="pass --resume"):
        search_and_report(str(space), storage=str(storage), address=ray_cluster, tracking_uri=mlflow_server)

    assert search_and_report(str(space), storage=str(storage), resume=True, address=ray_cluster,
                             tracking_uri=mlflow_server) == 0
    final = _finished_trials(storage / "resumable")
    assert len(final) == 3
    for trial_id, result in first.items():
        assert final[trial_id]["val_mae"] == result["val_mae"]  # not trained again
        train_run = storage / f"resumable-{trial_id}"
        assert len([p for p in train_run.glob("checkpoint_*") if p.is_dir()]) == 1  # one epoch, one checkpoint, ever
        assert (train_run / "checkpoint_epoch_0001").is_dir()  # named by epoch, not by time
        assert (storage / "resumable" / f"trial_{trial_id}").is_dir()  # named by trial id alone
    trials = [r for r in child_runs(mlflow_server, "resumable") if r.data.tags["ldlpose.role"] == "trial"]
    assert len(trials) == 3  # no duplicate runs after the resume
    assert np.isfinite([r.data.metrics["val_mae"] for r in trials]).all()


def test_a_search_submitted_as_a_ray_job_runs_on_the_cluster(tmp_path, synth_root, ray_cluster, mlflow_server):
    from ldlpose.cli import main

    repo = Path(__file__).resolve().parents[2]
    code = main(["submit", "search_spaces/quickstart.yaml", "--smoke-test", "--address", ray_cluster.jobs,
                 "--working-dir", str(repo), "--storage", str(tmp_path / "results"),
                 "--tracking-uri", mlflow_server, "--set", f"data.root={synth_root}",
                 "--set", "search.name=submitted"])
    assert code == 0
    runs = [r for r in child_runs(mlflow_server, "submitted") if r.data.tags["ldlpose.role"] == "trial"]
    assert len(runs) == 2 and all(r.info.status == "FINISHED" for r in runs)
