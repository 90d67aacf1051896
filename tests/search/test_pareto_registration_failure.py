"""An MLflow error while registering a Pareto front fails the search as the single champion's does
(issue 24, item 6): the parent run ends FAILED with the error in a tag, the user gets one line naming
the model, the tracking URI and ``--resume``, and ``--resume`` registers the front.

The failure is real, made through the registry's test hook between creating a version and setting
its alias: the registered model is deleted, so MLflow refuses the alias (MLflow on SQLite, real Ray).
"""

from __future__ import annotations

import pytest
import yaml
from mlflow import MlflowClient

from ldlpose.cli import main
from ldlpose.tracking import registry

pytestmark = pytest.mark.slow


def test_a_failed_pareto_registration_fails_the_search_and_resume_registers(
        synth_root, ray_local, tmp_path, capsys, monkeypatch):
    space = {
        "name": "front", "method": {"name": "gldl"}, "model": {"backbone": "shufflenet_v2_x0_5", "weights": "none"},
        "data": {"root": str(synth_root), "train": "synthhead/train", "val": "synthhead/val", "benchmarks": ["synth"],
                 "image_size": 32, "max_train_samples": 32, "max_eval_samples": 32},
        "train": {"epochs": 1, "batch_size": 16, "optimizer": {"name": "adam", "lr": 0.002}, "max_failures": 0},
        "resources": {"workers": 1, "cpus_per_worker": 1},
        "search": {"name": "front", "metric": [{"name": "val_mae", "goal": "minimize"},
                                               {"name": "params_m", "goal": "minimize"}],
                   "sampler": {"name": "random", "seed": 0}, "profile": {"batch_size": 2, "warmup": 1, "repeats": 2},
                   "budget": {"trials": 1, "concurrency": 1}, "parameters": {"train.seed": {"min": 0, "max": 9}}},
    }
    path = tmp_path / "front.yaml"
    path.write_text(yaml.safe_dump(space))
    uri = f"sqlite:///{tmp_path / 'runs.db'}"
    args = ["search", str(path), "--storage", str(tmp_path / "results"), "--tracking-uri", uri]
    client = MlflowClient(uri)

    def parent():
        experiment = client.get_experiment_by_name("front")
        (run,) = client.search_runs([experiment.experiment_id], "tags.`ldlpose.role` = 'search'")
        return run

    monkeypatch.setattr(registry, "_before_alias_write", lambda name, version, attempt:
                        client.delete_registered_model(name))
    assert main(args) == 2
    printed = capsys.readouterr()
    assert "Pareto front on val_mae, params_m" in printed.out  # the front is still shown
    assert "tracking problem" not in printed.out, printed.out[-3000:]
    line = next(line for line in printed.err.splitlines() if line.startswith("ldlpose search: error:"))
    assert f"registering headpose-synth in {uri} failed: " in line and "--resume" in line, line
    assert "Traceback" not in printed.err
    run = parent()
    assert run.info.status == "FAILED" and run.data.tags["ldlpose.status"] == "FAILED"
    assert run.data.tags["ldlpose.error"].startswith(f"registering headpose-synth in {uri} failed: ")

    monkeypatch.setattr(registry, "_before_alias_write", None)
    assert main([*args, "--resume"]) == 0
    printed = capsys.readouterr()
    assert "tracking problem" not in printed.out, printed.out[-3000:]
    run = parent()
    assert run.info.status == "FINISHED" and "ldlpose.error" not in run.data.tags
    (version,) = client.search_model_versions("name = 'headpose-synth'")
    assert version.tags["ldlpose.pareto"] == "true" and version.tags["search_id"] == "front"
    assert client.get_model_version_by_alias("headpose-synth", "champion").version == version.version
