"""SearchTracker, models, registry and the registry/predict commands against a real MLflow server.

One tracked mini search (two trials, one failed) runs once per module (fixture ``search``); the
tests read back what it wrote with MlflowClient.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from importlib import metadata
from pathlib import Path

import numpy as np
import pytest
import torch
from mlflow import MlflowClient
from trackfixtures import make_checkpoint, synth_samples

from ldlpose import tracking
from ldlpose.cli import main
from ldlpose.inference.predictor import predictor_from_checkpoint, preprocess

pytestmark = pytest.mark.slow

SEARCH = "search-alpha"
SPACE_YAML = "name: search-alpha\nsearch:\n  sampler: tpe\n"
SPACE = {"method": {"gldl": {"sigma": {"low": 1.0, "high": 3.0}}}, "train": {"epochs": 2}}
MANIFEST = {"format": "ldlpose-headpose-shards", "dataset": "synthhead", "rows": 16, "content_hash": "abc123"}


def entry(trial_id: str, run_id, model_uri: str, val_mae: float, test_mae: float | None = None, *,
          split: str = "rows-a", benchmark: str = "synth") -> dict:
    """A search's chosen trial as the driver hands it to the registry."""
    scores = {"val_mae": val_mae, "val_maev": val_mae + 0.5}
    if test_mae is not None:
        scores[f"{benchmark}_mae"] = test_mae
    return {"trial_id": trial_id, "run_id": run_id, "model_uri": model_uri, "method": "gldl",
            "backbone": "resnet18", "selected_epoch": 2, "scores": scores,
            "selection": {"metric": "val_mae", "value": val_mae, "split": "synthhead/val", "rows": 32,
                          "content_hash": split},
            "benchmark_data": {benchmark: {"content_hash": "test-hash", "rows": 32, "protocol": "synth"}}}


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("checkpoints")
    return {"trained": make_checkpoint(root / "trained", "gldl", steps=3, seed=1),
            "random": make_checkpoint(root / "random", "gldl", steps=0, seed=2)}


@pytest.fixture(scope="module")
def study():
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    study.optimize(lambda t: (t.suggest_float("lr", 1e-4, 1e-1, log=True) * 100 - 3) ** 2
                   + t.suggest_float("sigma", 1.0, 3.0), n_trials=6)
    return study


@pytest.fixture(scope="module")
def search(mlflow_server_launched, checkpoints, study, mlflow_server) -> dict:
    """A tracked search as the Ray Tune callback drives it; returns what the tests check.

    (The server starts first and comes up while the checkpoints and the study are built.)"""
    uri = mlflow_server
    tracker = tracking.SearchTracker(uri, SEARCH)
    parent = tracker.start(SPACE_YAML, SPACE, "tpe", 7, {"synthhead/train": MANIFEST})
    run0 = tracker.trial_started("trial_0", {"method": "gldl", "method.sigma": 2.0, "optimizer": {"lr": 1e-3}})
    for epoch, mae in ((1, 20.0), (2, 15.0)):
        tracker.trial_result("trial_0", {"epoch": epoch, "val_mae": mae, "synth_mae": mae + 1,
                                         "trial_id": "trial_0", "done": False}, step=epoch)
    tracker.trial_finished("trial_0", "TERMINATED", {"val": {"mae": 15.0}, "synth": {"mae": 16.0}},
                           node="node-a", device="cpu")
    model_uri = tracker.log_trial_model("trial_0", checkpoints["trained"])
    images, angles = synth_samples(12)
    artifacts = tracker.log_trial_artifacts("trial_0", checkpoints["trained"], {"synth": (images, angles)})
    run1 = tracker.trial_started("trial_1", {"method": "gldl", "method.sigma": 1.0})
    tracker.trial_result("trial_1", {"epoch": 1, "val_mae": 40.0}, step=1)
    tracker.trial_finished("trial_1", "ERROR", {}, failure_reason="RuntimeError: CUDA out of memory",
                           node="node-b", device="cuda:0")
    search_plots = tracker.log_search_plots(study)
    registered = tracking.register_champions(uri, SEARCH, entry("trial_0", run0, model_uri, 15.0, 16.0), ["synth"])
    tracker.finish("FINISHED")
    return {"uri": uri, "tracker": tracker, "parent": parent, "runs": {"trial_0": run0, "trial_1": run1},
            "model_uri": model_uri, "artifacts": artifacts, "search_plots": search_plots,
            "registered": registered}


def _runs(client: MlflowClient, experiment_id: str) -> list:
    return client.search_runs([experiment_id], max_results=100)


def test_parent_run_records_the_search(search):
    client = MlflowClient(search["uri"])
    parent = client.get_run(search["parent"])
    assert parent.info.status == "FINISHED"
    assert client.get_experiment(parent.info.experiment_id).name == SEARCH
    assert parent.data.tags[tracking.TAG_SEARCH] == SEARCH
    params = parent.data.params
    assert params["sampler"] == "tpe" and params["seed"] == "7"
    assert params["space.method.gldl.sigma.low"] == "1.0" and params["space.train.epochs"] == "2"
    assert params["data.synthhead/train.content_hash"] == "abc123"
    assert parent.data.tags["ldlpose.version.torch"] == metadata.version("torch")
    assert "ldlpose.version.mlflow" in parent.data.tags
    files = {f.path for f in client.list_artifacts(parent.info.run_id)}
    assert {"search.yaml", "resolved_space.json", "manifests"} <= files
    yaml_file = client.download_artifacts(parent.info.run_id, "search.yaml")
    assert Path(yaml_file).read_text() == SPACE_YAML
    manifest = client.download_artifacts(parent.info.run_id, "manifests/synthhead/train.json")
    assert json.loads(Path(manifest).read_text()) == MANIFEST


def test_child_runs_hold_params_metrics_and_outcome(search):
    client = MlflowClient(search["uri"])
    ok, failed = client.get_run(search["runs"]["trial_0"]), client.get_run(search["runs"]["trial_1"])
    for run, trial in ((ok, "trial_0"), (failed, "trial_1")):
        assert run.data.tags[tracking.TAG_PARENT] == search["parent"]
        assert run.data.tags[tracking.TAG_TRIAL] == trial
        assert run.info.run_name == trial
    assert ok.data.params["method.sigma"] == "2.0" and ok.data.params["optimizer.lr"] == "0.001"
    history = client.get_metric_history(ok.info.run_id, "val_mae")
    assert sorted((m.step, m.value) for m in history) == [(1, 20.0), (2, 15.0)]
    assert "done" not in ok.data.metrics and "trial_id" not in ok.data.metrics  # non-numbers dropped
    assert ok.data.metrics["final_synth_mae"] == 16.0 and ok.data.metrics["final_val_mae"] == 15.0
    assert ok.info.status == "FINISHED" and ok.data.tags["ldlpose.node"] == "node-a"
    assert ok.data.tags["ldlpose.device"] == "cpu" and "ldlpose.failure_reason" not in ok.data.tags
    assert failed.info.status == "FAILED"
    assert failed.data.tags["ldlpose.failure_reason"] == "RuntimeError: CUDA out of memory"
    assert failed.data.tags["ldlpose.device"] == "cuda:0"


def test_resumed_search_and_retried_trial_reuse_their_runs(search, checkpoints):
    client = MlflowClient(search["uri"])
    experiment_id = client.get_run(search["parent"]).info.experiment_id
    attempts = int(client.get_run(search["parent"]).data.tags["ldlpose.attempts"])

    first = tracking.SearchTracker(search["uri"], SEARCH)  # a new driver process resuming the search
    assert first.start(SPACE_YAML, SPACE, "tpe", 7, {"synthhead/train": MANIFEST}) == search["parent"]
    retried = first.trial_started("trial_9", {"method": "gldl", "method.sigma": 1.5})
    first.trial_finished("trial_9", "ERROR", {}, failure_reason="node lost")
    before = {r.info.run_id for r in _runs(client, experiment_id)}

    second = tracking.SearchTracker(search["uri"], SEARCH)  # resumed again; Ray retries trial_9
    assert second.start(SPACE_YAML, SPACE, "tpe", 7, {"synthhead/train": MANIFEST}) == search["parent"]
    assert second.trial_started("trial_9", {"method": "gldl", "method.sigma": 1.5}) == retried
    assert second.trial_started("trial_9", {"method": "gldl", "method.sigma": 1.5}) == retried
    assert client.get_run(retried).info.status == "RUNNING"
    second.trial_finished("trial_9", "FINISHED", {"synth_mae": 30.0})
    assert {r.info.run_id for r in _runs(client, experiment_id)} == before
    assert client.get_run(retried).info.status == "FINISHED"
    assert client.get_run(search["parent"]).data.tags["ldlpose.attempts"] == str(attempts + 2)
    assert not [a for a in client.list_artifacts(search["parent"]) if a.path.startswith("attempt-")]
    # Resumed with a changed space: the first values stay, the new files are kept beside them.
    changed = tracking.SearchTracker(search["uri"], SEARCH)
    changed.start(SPACE_YAML + "# more trials\n", {**SPACE, "train": {"epochs": 4}}, "tpe", 7,
                  {"synthhead/train": MANIFEST})
    parent = client.get_run(search["parent"])
    assert parent.data.params["space.train.epochs"] == "2"
    assert parent.data.tags["ldlpose.params_changed_on_resume"] == "space.train.epochs"
    yaml_path = f"attempt-{attempts + 3}/search.yaml"
    assert Path(client.download_artifacts(search["parent"], yaml_path)).read_text().endswith("# more trials\n")

    # The same checkpoint logged again (a retried callback) is the same model, not a second one.
    assert second.log_trial_model("trial_0", checkpoints["trained"]) == search["model_uri"]
    models = client.search_logged_models(experiment_ids=[experiment_id])
    assert [m.model_id for m in models] == [search["model_uri"].split("/")[-1]]
    # Registering the same trial again adds no version.
    out = tracking.register_champions(search["uri"], SEARCH, entry("trial_0", search["runs"]["trial_0"],
                                                                   search["model_uri"], 15.0, 16.0), ["synth"])
    assert out["synth"]["version"] == search["registered"]["synth"]["version"]
    assert len(client.search_model_versions("name = 'headpose-synth'")) == 1
    # A driver killed after the model was written but before the run was tagged: found, not logged twice.
    client.delete_tag(search["runs"]["trial_0"], tracking.TAG_MODEL_URI)
    assert second.log_trial_model("trial_0", checkpoints["trained"]) == search["model_uri"]
    assert len(client.search_logged_models(experiment_ids=[experiment_id])) == 1
    assert client.get_run(search["runs"]["trial_0"]).data.tags[tracking.TAG_MODEL_URI] == search["model_uri"]
    second.finish("FINISHED")


def test_champion_loads_as_pt2_and_predicts_like_the_checkpoint(search, checkpoints):
    assert search["registered"]["synth"] == {"model": "headpose-synth", "version": "1", "mae": 16.0,
                                             "alias": "champion", "champion": "1", "moved": True, "comparable": True}
    predictor, info = tracking.load_predictor("models:/headpose-synth@champion", search["uri"])
    assert info["image_size"] == 32 and info["method"] == "gldl" and info["backbone"] == "resnet18"
    assert info["normalisation"]["mean"] == [0.485, 0.456, 0.406]
    expected_model, _ = predictor_from_checkpoint(checkpoints["trained"])
    images, _ = synth_samples(5)
    with torch.no_grad():
        expected = expected_model(preprocess(images, 32)).numpy()
    assert expected.std() > 0.01  # the model's outputs differ between images
    np.testing.assert_allclose(predictor.predict_images(images), expected, atol=1e-3)
    np.testing.assert_allclose(predictor.predict_images(images[:1]), expected[:1], atol=1e-3)  # dynamic batch
    # The model is the torch.export graph (no pickled module), with its signature and metadata.
    import mlflow.models

    with tracking._global_uri(search["uri"]):
        model_info = mlflow.models.get_model_info("models:/headpose-synth@champion")
    assert model_info.flavors["pytorch"]["model_data"] == "data"
    assert model_info.signature.inputs.to_dict()[0]["tensor-spec"]["shape"] == (-1, 3, 32, 32)
    assert model_info.metadata["ldlpose"]["image_size"] == 32
    client = MlflowClient(search["uri"])
    files = {a.path for a in client.list_logged_model_artifacts(search["model_uri"].split("/")[-1], "data")}
    assert files == {"data/model.pt2"}


def _register(uri: str, search_name: str, model_uri: str, val_mae: float, benchmark: str, *,
              test_mae: float | None = None, split: str = "rows-a", rule: str = "validation") -> dict:
    return tracking.register_champions(uri, search_name, entry("trial_0", None, model_uri, val_mae, test_mae,
                                                               split=split, benchmark=benchmark),
                                       [benchmark], rule=rule)[benchmark]


def test_champion_moves_only_to_a_strictly_better_validation_score(search):
    uri, model_uri = search["uri"], search["model_uri"]
    first = _register(uri, "s1", model_uri, 5.0, "champ", test_mae=9.0)
    assert first["moved"] and first["champion"] == first["version"]
    # A far better *test* score never moves the champion: validation chooses.
    worse = _register(uri, "s2", model_uri, 7.0, "champ", test_mae=1.0)
    assert worse["version"] != first["version"] and not worse["moved"]
    assert worse["champion"] == first["version"]
    tie = _register(uri, "s3", model_uri, 5.0, "champ")
    assert not tie["moved"] and tie["champion"] == first["version"]
    better = _register(uri, "s4", model_uri, 3.0, "champ", test_mae=9.5)
    assert better["moved"] and better["champion"] == better["version"]
    client = MlflowClient(uri)
    champion = client.get_model_version_by_alias("headpose-champ", "champion")
    assert champion.version == better["version"]
    assert champion.tags["selection.value"] == "3.0" and champion.tags["search_id"] == "s4"
    assert champion.tags["method"] == "gldl" and champion.tags["backbone"] == "resnet18"
    assert len(client.search_model_versions("name = 'headpose-champ'")) == 4


def test_a_version_records_what_selected_it_and_its_scores(search):
    result = _register(search["uri"], "recorded", search["model_uri"], 4.25, "recorded", test_mae=6.5)
    tags = MlflowClient(search["uri"]).get_model_version("headpose-recorded", result["version"]).tags
    assert tags["selection.metric"] == "val_mae" and tags["selection.value"] == "4.25"
    assert tags["selection.split"] == "synthhead/val" and tags["selection.rows"] == "32"
    assert tags["selection.content_hash"] == "rows-a" and tags["selected_epoch"] == "2"
    assert tags["val.mae"] == "4.25" and tags["val.maev"] == "4.75"
    assert tags["test.mae"] == "6.5" and tags["mae"] == "6.5" and tags["test.data.content_hash"] == "test-hash"
    assert tags["champion_rule"] == "validation"


def test_versions_selected_on_other_validation_rows_are_not_compared(search):
    uri, model_uri = search["uri"], search["model_uri"]
    first = _register(uri, "split-a", model_uri, 6.0, "splits", split="rows-a")
    other = _register(uri, "split-b", model_uri, 1.0, "splits", split="rows-b")
    assert not other["moved"] and not other["comparable"] and other["champion"] == first["version"]
    same = _register(uri, "split-a2", model_uri, 5.0, "splits", split="rows-a")
    assert same["moved"] and same["comparable"]
    # Asked for explicitly, the test benchmark decides across splits, and the version says so.
    explicit = _register(uri, "by-test", model_uri, 8.0, "splits", split="rows-c", test_mae=0.5, rule="benchmark")
    assert explicit["moved"] and explicit["comparable"]
    tags = MlflowClient(uri).get_model_version("headpose-splits", explicit["version"]).tags
    assert tags["champion_rule"] == "benchmark"
    assert explicit["alias"] == "champion-benchmark"  # its own alias: "champion" stays the validation rule's
    model = MlflowClient(uri).get_registered_model("headpose-splits")
    assert model.aliases == {"champion": same["version"], "champion-benchmark": explicit["version"]}
    with pytest.raises(tracking.TrackingError, match="champion rule must be one of validation, benchmark"):
        _register(uri, "bad-rule", model_uri, 8.0, "splits", rule="newest")


def test_concurrent_registrations_leave_the_true_best(search, monkeypatch):
    """The worse search reads before the better one registers and writes its alias last (stale)."""
    uri, model_uri = search["uri"], search["model_uri"]
    worse_decided, better_done = threading.Event(), threading.Event()
    writes = []

    def before_alias_write(name, version, attempt):
        writes.append((threading.current_thread().name, version, attempt))
        if threading.current_thread().name == "worse" and attempt == 0:
            worse_decided.set()  # it has read: only its own version exists, no champion yet
            assert better_done.wait(60)  # ... and writes only after the better search finished

    monkeypatch.setattr(tracking.registry, "_before_alias_write", before_alias_write)  # where the hook lives
    results = {}
    worse = threading.Thread(name="worse", target=lambda: results.update(
        worse=_register(uri, "race-worse", model_uri, 9.0, "race")))
    worse.start()
    assert worse_decided.wait(60)
    results["better"] = _register(uri, "race-better", model_uri, 4.0, "race")
    better_done.set()
    worse.join(60)

    best = results["better"]["version"]
    assert MlflowClient(uri).get_model_version_by_alias("headpose-race", "champion").version == best
    assert results["better"]["moved"] and not results["worse"]["moved"]
    assert results["worse"]["champion"] == best
    # The stale write happened and was corrected by the worse search itself.
    worse_writes = [(v, a) for name, v, a in writes if name == "worse"]
    assert worse_writes == [(results["worse"]["version"], 0), (best, 1)]


def test_plots_are_logged_as_artifacts(search):
    client = MlflowClient(search["uri"])
    expected = {"plots/synth_error_vs_angle.png", "plots/synth_pose_samples.png",
                "plots/synth_label_distributions.png"}
    assert set(search["artifacts"]) == expected
    assert {a.path for a in client.list_artifacts(search["runs"]["trial_0"], "plots")} == expected
    assert set(search["search_plots"]) == {"plots/param_importances.png", "plots/parallel_coordinate.png"}
    assert {a.path for a in client.list_artifacts(search["parent"], "plots")} == set(search["search_plots"])
    for run_id, path in ((search["runs"]["trial_0"], "plots/synth_pose_samples.png"),
                         (search["parent"], "plots/param_importances.png")):
        data = Path(client.download_artifacts(run_id, path)).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000


def test_registry_command_lists_champions(search, capsys):
    assert main(["registry", "--tracking-uri", search["uri"], "--json"]) == 0
    champions = {c["benchmark"]: c for c in json.loads(capsys.readouterr().out)["champions"]}
    assert champions["synth"]["version"] == "1" and champions["synth"]["mae"] == 16.0
    assert champions["synth"]["method"] == "gldl" and champions["synth"]["run_id"] == search["runs"]["trial_0"]
    assert all(c["model"] == f"headpose-{b}" for b, c in champions.items())
    # The installed console script, as a user runs it, prints the table.
    done = subprocess.run([str(Path(sys.executable).with_name("ldlpose")), "registry", "--tracking-uri",
                           search["uri"]], check=False, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split() == ["benchmark", "model", "alias", "version", "selected", "by", "test", "MAE", "protocol",
                                "data", "rule", "method", "backbone", "run"]
    synth = next(line.split() for line in lines if line.startswith("synth"))
    assert synth == ["synth", "headpose-synth", "champion", "1", "val_mae", "15.00", "16.00", "synth", "test-hash",
                     "validation", "gldl", "resnet18", search["runs"]["trial_0"]]
    assert champions["synth"]["selection_value"] == 15.0 and champions["synth"]["rule"] == "validation"
    assert champions["synth"]["protocol"] == "synth" and champions["synth"]["data_hash"] == "test-hash"


def test_predict_command_reports_bad_images_and_keeps_the_others(search, checkpoints, tmp_path, capsys):
    from PIL import Image

    images, _ = synth_samples(2)
    paths = []
    for i, image in enumerate(images):
        paths.append(tmp_path / f"face{i}.png")
        Image.fromarray(image).resize((48, 48)).save(paths[-1])  # another size: predict resizes
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not an image")
    argv = ["predict", "--model", "models:/headpose-synth@champion", "--tracking-uri", search["uri"], "--json",
            "--no-detect",  # the pictures are face crops already
            "--draw", str(tmp_path / "drawn"), str(paths[0]), str(broken), str(paths[1])]
    assert main(argv) == 1
    out = capsys.readouterr()
    results = json.loads(out.out)["predictions"]
    assert [r["image"] for r in results] == [str(paths[0]), str(broken), str(paths[1])]
    assert "broken.jpg" in results[1]["error"] and "broken.jpg" in out.err
    model, _ = predictor_from_checkpoint(checkpoints["trained"])
    with torch.no_grad():
        expected = model(preprocess([np.asarray(Image.open(p).convert("RGB")) for p in paths], 32)).numpy()
    assert all(len(r["faces"]) == 1 for r in (results[0], results[2]))  # --no-detect: the picture is the face
    faces = (results[0]["faces"][0], results[2]["faces"][0])
    got = np.array([[f["yaw_deg"], f["pitch_deg"], f["roll_deg"]] for f in faces])
    np.testing.assert_allclose(got, expected, atol=1e-2)
    assert sorted(p.name for p in (tmp_path / "drawn").iterdir()) == ["face0.pose.png", "face1.pose.png"]

    assert main(["predict", "--model", "models:/headpose-synth@champion", "--tracking-uri", search["uri"],
                 "--no-detect", str(paths[0])]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split()[-3:] == ["yaw", "pitch", "roll"]
    assert table[2].split()[0] == str(paths[0]) and table[2].split()[-3] == f"{expected[0, 0]:.1f}"


def test_predict_command_names_a_bad_model_uri(search, tmp_path, capsys):
    image = tmp_path / "face.png"
    image.write_bytes(b"")
    for uri in ("models:/headpose-nonexistent@champion", "models:/headpose-synth@nosuchalias"):
        assert main(["predict", "--model", uri, "--tracking-uri", search["uri"], str(image)]) == 2
        err = capsys.readouterr().err
        assert f"cannot load model '{uri}'" in err and "Traceback" not in err


def test_registration_honours_a_sqlite_store_outside_the_working_directory(tmp_path, monkeypatch, checkpoints):
    """MLflow's SQL registry resolves logged models through the global URI; ldlpose must not let it
    open (and create) ./mlflow.db in the working directory."""
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    (tmp_path / "elsewhere").mkdir()
    uri = f"sqlite:///{tmp_path / 'elsewhere' / 'store.db'}"
    tracker = tracking.SearchTracker(uri, "sqlite-search")
    tracker.start(SPACE_YAML, SPACE, "tpe", 7, {"synthhead/train": MANIFEST})
    run_id = tracker.trial_started("trial_0", {"method": "gldl"})
    model_uri = tracker.log_trial_model("trial_0", checkpoints["trained"])
    out = tracking.register_champions(uri, "sqlite-search", entry("trial_0", run_id, model_uri, 15.0, 16.0),
                                      ["synth"])
    assert out["synth"]["moved"]
    assert [c["version"] for c in tracking.list_champions(uri)] == [out["synth"]["version"]]
    assert list(work.iterdir()) == []  # no mlflow.db, no mlruns/


def test_each_rule_moves_its_own_alias_among_its_own_versions_and_the_model_says_which(search):
    """Two rules on one registered model: a search under one never moves, nor is judged by, the other's alias."""
    uri, model_uri = search["uri"], search["model_uri"]
    rule = "min val_mae where latency_ms <= 5"
    fast = {"latency_ms": 2.0}
    by_validation = _register(uri, "quick", model_uri, 6.0, "rules")
    by_rule = tracking.register_champions(uri, "pareto", {**entry("trial_0", None, model_uri, 9.0, None, split="rows-a",
                                                                  benchmark="rules"), "profile": fast},
                                          ["rules"], rule=rule)["rules"]
    assert by_rule["alias"] == "champion-min-val_mae-where-latency_ms-le-5" and by_rule["moved"]
    # A better validation score registered under the rule moves the rule's alias only ...
    better = tracking.register_champions(uri, "pareto2", {**entry("trial_0", None, model_uri, 4.0, None,
                                                                  split="rows-a", benchmark="rules"), "profile": fast},
                                         ["rules"], rule=rule)["rules"]
    client = MlflowClient(uri)
    assert client.get_registered_model("headpose-rules").aliases == {
        "champion": by_validation["version"], by_rule["alias"]: better["version"]}
    # ... and a validation-rule search compares itself with validation-rule versions only (5.0 > 4.0 above).
    second = _register(uri, "quick2", model_uri, 5.0, "rules")
    assert second["moved"] and second["champion"] == second["version"]
    model = client.get_registered_model("headpose-rules")
    assert model.aliases["champion"] == second["version"] and model.aliases[by_rule["alias"]] == better["version"]
    # The model states the rule behind each alias: in its tags, and in its description.
    assert model.tags["alias.champion"] == "validation" and model.tags[f"alias.{by_rule['alias']}"] == rule
    assert "Alias 'champion': rule 'validation'" in model.description
    rows = [(c["alias"], c["rule"], c["version"]) for c in tracking.list_champions(uri) if c["benchmark"] == "rules"]
    assert rows == [("champion", "validation", second["version"]), (by_rule["alias"], rule, better["version"])]
