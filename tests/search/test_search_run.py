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
from conftest import INTERRUPTED_EXIT_S, _cluster_processes, training_frozen

from ldlpose.errors import LdlposeError
from ldlpose.search.driver import search_and_report

pytestmark = pytest.mark.slow


def write_space(tmp_path: Path, synth_root: Path, name: str, *, parameters: dict, trials: int, epochs: int = 1,
                sampler: str = "random", concurrency: int = 2, lr: float = 0.002, train_samples: int = 96,
                method: str = "gldl") -> Path:
    space = {
        "name": name,
        "method": {"name": method},
        "model": {"backbone": "shufflenet_v2_x0_5", "weights": "none"},
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
    import mlflow

    space = write_space(tmp_path, synth_root, "cond", parameters=CONDITIONAL, trials=4, epochs=3)
    assert search_and_report(str(space), storage=str(tmp_path / "results"), address=ray_cluster,
                             tracking_uri=mlflow_server) == 0
    printed = capsys.readouterr().out
    assert "registered headpose-synth version" in printed
    assert f"the search's runs: {mlflow_server}/#/experiments/" in printed
    assert "tracking problem" not in printed, printed[-3000:]
    assert "synth: protocol synth, 32 rows, data sha256:" in printed

    runs = child_runs(mlflow_server, "cond")
    parent = [r for r in runs if r.data.tags["ldlpose.role"] == "search"]
    trials = [r for r in runs if r.data.tags["ldlpose.role"] == "trial"]
    assert len(parent) == 1 and len(trials) == 4
    for run in trials:
        assert run.data.tags["mlflow.parentRunId"] == parent[0].info.run_id
        assert "val_mae" in run.data.metrics and "selected_synth_mae" in run.data.metrics
        assert "synth_mae" not in run.data.metrics  # the test set is scored once, never per epoch
        # Params carry run-config keys, so runs of other searches line up; the conditional parameter
        # exists only in trials of its own method.
        method = run.data.params["method.name"]
        own = {k for k in run.data.params if k.startswith("method.hparams.")}
        assert own == {"method.hparams.sigma"} if method == "gldl" else own == {"method.hparams.alpha"}
        assert run.data.params["train.optimizer.lr"] == "0.002" and run.data.params["train.select_metric"] == "val_mae"
        # The logged model is the trial's best validation epoch's, and the run says which epoch that was.
        from ldlpose.train.checkpoints import load_checkpoint

        client = mlflow.MlflowClient(mlflow_server)
        seen = max(m.step for m in client.get_metric_history(run.info.run_id, "val_mae"))
        run_dir = tmp_path / "results" / f"cond-{run.data.tags['ldlpose.trial_id']}"
        kept = sorted(run_dir.glob("checkpoint_epoch_*"))
        # A trial ASHA stopped trains at most the epoch it was in when Tune stopped it.
        assert int(kept[-1].name.rsplit("_", 1)[1]) <= seen + 1
        history = load_checkpoint(kept[-1])["history"]
        best = min(history, key=lambda h: (h["val_mae"], h["epoch"]))
        assert run.data.tags["ldlpose.selected_epoch"] == str(best["epoch"])
        assert run.data.metrics["selected_val_mae"] == pytest.approx(best["val_mae"])

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
    # The champion is the trial with the best validation score at its selected epoch.
    best = min(trials, key=lambda r: r.data.metrics["selected_val_mae"])
    assert champion["trial_id"] == best.data.tags["ldlpose.trial_id"]
    # The version is filed under the validation rows recorded when its trial was finalised.
    version_tags = mlflow.MlflowClient(mlflow_server).get_model_version("headpose-synth", champion["version"]).tags
    assert version_tags["selection.content_hash"] == best.data.tags["ldlpose.selection.content_hash"]
    assert version_tags["selection.rows"] == best.data.tags["ldlpose.selection.rows"] == "32"
    assert champion["selection_value"] == pytest.approx(best.data.metrics["selected_val_mae"])
    assert info["epoch"] + 1 == int(best.data.tags["ldlpose.selected_epoch"])

    # A worse search adds a version but leaves the alias; a better one moves it.
    worse = write_space(tmp_path, synth_root, "worse", parameters={"train.optimizer.lr": {"value": 1e-9}},
                        trials=1, method="sixdrepnet", train_samples=16)
    assert search_and_report(str(worse), storage=str(tmp_path / "results"), address=ray_cluster,
                             tracking_uri=mlflow_server) == 0
    after_worse = list_champions(mlflow_server)[0]
    assert after_worse["version"] == champion["version"]
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
    assert after_better["selection_value"] < champion["selection_value"]
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


def _finished_trials(storage: Path, search: str, epochs: int = 1) -> dict[str, dict]:
    """Trial id -> the last epoch's metrics of every training run that has trained all its epochs,
    read from its checkpoints (written as each epoch ends; Tune may write its own result files to
    storage only later)."""
    done = {}
    for written in storage.glob(f"{search}-*/checkpoint_epoch_*/metrics.json"):
        try:
            metrics = json.loads(written.read_text())
        except (OSError, ValueError):
            continue  # being written or pruned right now
        if metrics.get("epoch") == epochs:
            done[written.parent.parent.name.rsplit("-", 1)[-1]] = metrics
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
    while not _finished_trials(storage, "resumable"):
        assert process.poll() is None, process.stdout.read()[-3000:]
        assert time.monotonic() < deadline, "no trial finished in time"
        time.sleep(0.1)
    # Every other trial is frozen before the interrupt: none can finish while the driver takes it.
    with training_frozen(lambda: _cluster_processes(int(ray_cluster.rsplit(":", 1)[1]))):
        os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C does
        out, _ = process.communicate(timeout=INTERRUPTED_EXIT_S)
    first = _finished_trials(storage, "resumable")
    assert 1 <= len(first) < 3, out[-3000:]

    # Without --resume the stored search is never touched.
    with pytest.raises(LdlposeError, match="pass --resume"):
        search_and_report(str(space), storage=str(storage), address=ray_cluster, tracking_uri=mlflow_server)

    assert search_and_report(str(space), storage=str(storage), resume=True, address=ray_cluster,
                             tracking_uri=mlflow_server) == 0
    final = _finished_trials(storage, "resumable")
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

    # A changed YAML under the same search id is refused before anything trains, naming the change ...
    data = yaml.safe_load(space.read_text())
    data["train"]["epochs"] = 2
    space.write_text(yaml.safe_dump(data))
    with pytest.raises(LdlposeError, match=r"(?s)Changed since it started \(1\):\n  train.epochs: 1 -> 2.*--resume"):
        search_and_report(str(space), storage=str(storage), resume=True, address=ray_cluster,
                          tracking_uri=mlflow_server)
    assert set(_finished_trials(storage, "resumable")) == set(final)
    # ... while a raised budget extends the finished search: one more trial, the others untouched.
    data["train"]["epochs"], data["search"]["budget"]["trials"] = 1, 4
    space.write_text(yaml.safe_dump(data))
    assert search_and_report(str(space), storage=str(storage), resume=True, address=ray_cluster,
                             tracking_uri=mlflow_server) == 0
    extended = _finished_trials(storage, "resumable")
    assert len(extended) == 4 and all(extended[t]["val_mae"] == final[t]["val_mae"] for t in final)


def test_a_search_submitted_as_a_ray_job_runs_on_the_cluster(tmp_path, synth_root, ray_cluster, mlflow_server):
    from ldlpose.cli import main

    repo = Path(__file__).resolve().parents[2]
    code = main(["submit", "search_spaces/quickstart.yaml", "--smoke-test", "--address", ray_cluster.jobs,
                 "--working-dir", str(repo), "--storage", str(tmp_path / "results"),
                 "--tracking-uri", mlflow_server, "--set", f"data.root={synth_root}",
                 "--set", "search.name=submitted"])
    assert code == 0
    runs = [r for r in child_runs(mlflow_server, "submitted-smoke") if r.data.tags["ldlpose.role"] == "trial"]
    assert len(runs) == 2 and all(r.info.status == "FINISHED" for r in runs)


def _logged_models(uri: str, search: str) -> list:
    import mlflow

    client = mlflow.MlflowClient(uri)
    return client.search_logged_models([client.get_experiment_by_name(search).experiment_id])


def test_a_search_killed_outright_resumes_and_registers_every_finished_trial_once(
        tmp_path, synth_root, ray_cluster, mlflow_server):
    """SIGKILL (a lost head node, an OOM kill) leaves no chance to clean up: nothing may rely on memory."""
    import mlflow

    space = write_space(tmp_path, synth_root, "killed", parameters=CONDITIONAL, trials=3, concurrency=1,
                        train_samples=32)
    storage = tmp_path / "results"
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "RAY_ADDRESS": ray_cluster}
    process = subprocess.Popen([sys.executable, "-m", "ldlpose", "search", str(space), "--storage", str(storage),
                                "--tracking-uri", mlflow_server], env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, start_new_session=True)
    from ray import tune

    deadline = time.monotonic() + 300
    # A trial has trained all its epochs and Tune has written its experiment state at least once
    # (before that, there is no search to resume: a new one would start).
    while not (_finished_trials(storage, "killed") and tune.Tuner.can_restore(str(storage / "killed"))):
        assert process.poll() is None, process.stdout.read()[-3000:]
        assert time.monotonic() < deadline, "no trial finished in time"
        time.sleep(0.2)
    os.killpg(process.pid, signal.SIGKILL)
    process.communicate(timeout=60)
    killed_after = set(_finished_trials(storage, "killed"))
    assert killed_after

    assert search_and_report(str(space), storage=str(storage), resume=True, address=ray_cluster,
                             tracking_uri=mlflow_server) == 0
    final = _finished_trials(storage, "killed")
    known = {t.trial_id for t in tune.ExperimentAnalysis(str(storage / "killed")).trials}  # Tune's trials
    assert len(known) == 3 and known <= set(final) and killed_after <= set(final)
    runs = [r for r in child_runs(mlflow_server, "killed") if r.data.tags["ldlpose.role"] == "trial"]
    trials = [r for r in runs if r.data.tags["ldlpose.trial_id"] in known]
    assert sorted(r.data.tags["ldlpose.trial_id"] for r in trials) == sorted(known)  # one run per trial
    assert all(r.info.status == "FINISHED" for r in trials)
    # A trial started after Tune last saved its state is unknown to the resumed search (which samples
    # anew): its run is closed as KILLED, saying why, with no model, and never registered.
    from ldlpose.search.trials import ORPHAN_REASON

    orphans = [r for r in runs if r.data.tags["ldlpose.trial_id"] not in known]
    assert not [r.info.run_id for r in runs if r.info.status == "RUNNING"], "a run was left RUNNING"
    for orphan in orphans:
        assert orphan.info.status == "KILLED" and orphan.data.tags["ldlpose.failure_reason"] == ORPHAN_REASON
        assert "ldlpose.model_uri" not in orphan.data.tags
    print(f"orphaned runs closed: {len(orphans)}")
    models = _logged_models(mlflow_server, "killed")
    assert sorted(m.tags["ldlpose.trial_id"] for m in models) == sorted(known)  # each model logged exactly once
    best = min(trials, key=lambda r: r.data.metrics["selected_val_mae"])
    versions = mlflow.MlflowClient(mlflow_server).search_model_versions("name = 'headpose-synth'")
    ours = [v for v in versions if v.tags.get("search_id") == "killed"]
    assert len(ours) == 1 and ours[0].tags["trial_id"] == best.data.tags["ldlpose.trial_id"]
    assert ours[0].tags["model_uri"] == best.data.tags["ldlpose.model_uri"]


def test_a_search_tracked_to_sqlite_elsewhere_registers_there_and_leaves_the_working_directory_alone(
        tmp_path, synth_root, ray_cluster, monkeypatch):
    from ldlpose.tracking import list_champions

    work = tmp_path / "work"
    work.mkdir()
    space = write_space(tmp_path, synth_root, "sqlite-elsewhere", parameters={"method.hparams.sigma": {"value": 2.0}},
                        trials=1, train_samples=16)
    monkeypatch.chdir(work)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    (tmp_path / "store").mkdir()
    uri = f"sqlite:///{tmp_path / 'store' / 'runs.db'}"
    assert search_and_report(str(space), storage=str(tmp_path / "results"), address=ray_cluster,
                             tracking_uri=uri) == 0
    (champion,) = list_champions(uri)
    assert champion["search_id"] == "sqlite-elsewhere"
    assert sorted(p.name for p in work.iterdir()) == []  # no mlflow.db, no mlruns/


def test_confirmation_retrains_the_top_configurations_with_new_seeds_and_registers_the_best_mean(
        tmp_path, synth_root, ray_cluster, mlflow_server, capsys):
    import mlflow

    from ldlpose.search.confirm import stats

    parameters = {"train.optimizer.lr": {"values": [0.002, 0.0005, 1.0e-6]}}
    space = write_space(tmp_path, synth_root, "confirmed", parameters=parameters, trials=3, sampler="grid",
                        train_samples=32)
    data = yaml.safe_load(space.read_text())
    data["search"]["confirm"] = {"top_k": 2, "seeds": 2}
    data["search"]["scheduler"] = {"name": "none"}
    space.write_text(yaml.safe_dump(data))
    assert search_and_report(str(space), storage=str(tmp_path / "results"), address=ray_cluster,
                             tracking_uri=mlflow_server) == 0
    printed = capsys.readouterr().out
    assert "confirmation over 2 new seeds" in printed and "95% CI" in printed

    runs = child_runs(mlflow_server, "confirmed")
    trials = {r.data.tags["ldlpose.trial_id"]: r for r in runs if r.data.tags["ldlpose.role"] == "trial"}
    reruns = [r for r in runs if r.data.tags["ldlpose.role"] == "confirmation"]
    top2 = sorted(trials, key=lambda t: trials[t].data.metrics["selected_val_mae"])[:2]
    assert len(reruns) == 4 and sorted({r.data.tags["ldlpose.confirms"] for r in reruns}) == sorted(top2)
    for trial_id in top2:
        seeds = sorted(r.data.params["train.seed"] for r in reruns if r.data.tags["ldlpose.confirms"] == trial_id)
        assert seeds == ["1", "2"]  # new seeds: the search trained with seed 0
        assert trials[trial_id].data.params["train.seed"] == "0"
    means = {t: stats([r.data.metrics["selected_val_mae"] for r in reruns if r.data.tags["ldlpose.confirms"] == t])
             for t in top2}
    winner = min(means, key=lambda t: means[t].mean)
    (version,) = [v for v in mlflow.MlflowClient(mlflow_server).search_model_versions("name = 'headpose-synth'")
                  if v.tags.get("search_id") == "confirmed"]
    assert version.tags["confirmation.configuration"] == winner
    assert float(version.tags["confirmation.mean"]) == pytest.approx(means[winner].mean)
    assert float(version.tags["confirmation.std"]) == pytest.approx(means[winner].std)
    assert float(version.tags["confirmation.ci95_low"]) == pytest.approx(means[winner].ci_low)
    # The registered model is the winning configuration's best run on validation.
    candidates = [trials[winner], *(r for r in reruns if r.data.tags["ldlpose.confirms"] == winner)]
    best_run = min(candidates, key=lambda r: r.data.metrics["selected_val_mae"])
    assert version.tags["run_id"] == best_run.info.run_id
    # Resumed, the finished confirmation is restored: no run again, each still of its (configuration, seed).
    assert search_and_report(str(space), storage=str(tmp_path / "results"), resume=True, address=ray_cluster,
                             tracking_uri=mlflow_server) == 0
    again = [r for r in child_runs(mlflow_server, "confirmed") if r.data.tags["ldlpose.role"] == "confirmation"]
    assert sorted((r.info.run_id, r.data.tags["ldlpose.confirms"], r.data.params["train.seed"]) for r in again) == \
        sorted((r.info.run_id, r.data.tags["ldlpose.confirms"], r.data.params["train.seed"]) for r in reruns)


def test_a_smoke_test_is_a_search_of_its_own_and_resume_then_trains_the_real_one(
        tmp_path, synth_root, ray_cluster, mlflow_server, capsys):
    """The documented cluster path: a smoke test first, then the search with --resume (as jobs do)."""
    import mlflow

    space = write_space(tmp_path, synth_root, "smoked", parameters=CONDITIONAL, trials=3, train_samples=32)
    storage = tmp_path / "results"
    for _ in range(2):  # a second smoke test starts afresh: no "pass --resume", no state of the first
        assert search_and_report(str(space), smoke_test=True, resume=True, storage=str(storage),
                                 address=ray_cluster, tracking_uri=mlflow_server) == 0
    printed = capsys.readouterr().out
    assert "smoke test smoked-smoke: the previous smoke test's results are replaced" in printed
    assert "nothing registered" in printed and "registered headpose-synth version" not in printed
    assert not (storage / "smoked").exists()
    smoke_runs = [r for r in child_runs(mlflow_server, "smoked-smoke") if r.data.tags["ldlpose.role"] == "trial"]
    assert len(smoke_runs) == 4  # two smoke tests of two trials, in the smoke test's own experiment
    assert len({p.name for p in storage.glob("smoked-smoke-*")}) == 2  # the first smoke test's runs are gone

    assert search_and_report(str(space), resume=True, storage=str(storage), address=ray_cluster,
                             tracking_uri=mlflow_server) == 0
    assert "registered headpose-synth version" in capsys.readouterr().out
    trials = [r for r in child_runs(mlflow_server, "smoked") if r.data.tags["ldlpose.role"] == "trial"]
    real_runs = [p for p in storage.glob("smoked-*") if not p.name.startswith("smoked-smoke")]
    assert len(trials) == 3 and len(real_runs) == 3  # the real budget, trained
    client = mlflow.MlflowClient(mlflow_server)
    registered = {v.tags.get("search_id") for v in client.search_model_versions("name = 'headpose-synth'")}
    assert "smoked" in registered and "smoked-smoke" not in registered
