"""``ldlpose train`` is tracked like a search trial and registers under the same champion rule."""

from __future__ import annotations

import pytest
import yaml
from mlflow import MlflowClient

from ldlpose.cli import main

pytestmark = pytest.mark.slow


def _config(tmp_path, synth_root, name: str, lr: float) -> str:
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump({
        "name": name, "method": {"name": "gldl"}, "model": {"backbone": "shufflenet_v2_x0_5", "weights": "none"},
        "data": {"root": str(synth_root), "train": "synthhead/train", "val": "synthhead/val",
                 "benchmarks": ["synth"], "image_size": 64, "max_train_samples": 32},
        "train": {"epochs": 2, "batch_size": 16, "optimizer": {"name": "adam", "lr": lr}, "max_failures": 0},
    }))
    return str(path)


def test_train_is_tracked_and_registers_by_validation(tmp_path, synth_root, ray_local, mlflow_server, capsys):
    config = _config(tmp_path, synth_root, "tracked-run", 0.002)
    assert main(["train", config, "--storage", str(tmp_path / "r"), "--tracking-uri", mlflow_server,
                 "--register"]) == 0
    printed = capsys.readouterr().out
    assert "selected epoch" in printed and "registered headpose-synth version" in printed
    assert "synth: protocol synth, 32 rows, data sha256:" in printed  # what the test scores were measured on
    client = MlflowClient(mlflow_server)
    experiment = client.get_experiment_by_name("tracked-run")
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"  # MLflow opens its runs
    (run,) = client.search_runs([experiment.experiment_id], "tags.`ldlpose.role` = 'train'")
    assert run.data.params["method.name"] == "gldl" and run.data.params["train.optimizer.lr"] == "0.002"
    history = client.get_metric_history(run.info.run_id, "val_mae")
    assert sorted(m.step for m in history) == [1, 2]
    best = min(history, key=lambda m: (m.value, m.step))
    assert run.data.tags["ldlpose.selected_epoch"] == str(best.step)
    assert run.data.metrics["selected_val_mae"] == pytest.approx(best.value)
    assert "selected_synth_mae" in run.data.metrics and run.data.tags["ldlpose.model_uri"].startswith("models:/m-")
    versions = [v for v in client.search_model_versions("name = 'headpose-synth'")
                if v.tags.get("search_id") == "tracked-run"]
    assert len(versions) == 1 and versions[0].tags["run_id"] == run.info.run_id
    assert versions[0].tags["selection.value"] == repr(best.value)
    # Every test score carries the benchmark's protocol and the prepared data's content hash.
    from ldlpose.data import benchmarks

    identity = benchmarks.get("synth").identity(root=synth_root)
    assert versions[0].tags["test.data.protocol"] == identity["protocol"] == run.data.tags["ldlpose.protocol.synth"]
    assert versions[0].tags["test.data.content_hash"] == identity["content_hash"]
    assert run.data.tags["ldlpose.data_hash.synth"] == identity["content_hash"]

    # A second run on the same validation rows is registered; the alias goes to the lower validation MAE.
    other = _config(tmp_path, synth_root, "other-run", 1e-9)
    assert main(["train", other, "--storage", str(tmp_path / "r"), "--tracking-uri", mlflow_server,
                 "--register"]) == 0
    ours = [v for v in client.search_model_versions("name = 'headpose-synth'")
            if v.tags.get("search_id") in ("tracked-run", "other-run")]
    assert len(ours) == 2
    assert {v.tags["selection.content_hash"] for v in ours} == {versions[0].tags["selection.content_hash"]}
    champion = client.get_model_version_by_alias("headpose-synth", "champion")
    assert float(champion.tags["selection.value"]) == min(float(v.tags["selection.value"]) for v in ours)
