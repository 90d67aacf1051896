"""A search's trial that fails the same way every time ends FAILED after the cap (issue 24, item 3),
under ``train.max_failures: -1``, where Tune (an in-process trial) or Ray Train (a ray_train trial's
worker group) on its own would start it again without limit.

The failure is real: one training shard is damaged after it was prepared, so every attempt's shard
check refuses it with the same words, before the first epoch (real Ray, Tune and MLflow on SQLite).
"""

from __future__ import annotations

import json
import shutil

import pytest
import yaml

from ldlpose.search.driver import search_and_report
from ldlpose.train.failures import FAILURES_FILE, SAME_FAILURE_CAP

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("engine", ["in_process", "ray_train"])
def test_a_trial_failing_identically_ends_failed_after_the_cap(engine, tmp_path, synth_root, ray_local, capsys):
    import mlflow

    bad = tmp_path / "data"
    shutil.copytree(synth_root / "synthhead", bad / "synthhead")
    with open(next((bad / "synthhead" / "train").glob("part-*.parquet")), "ab") as shard:
        shard.write(b"damaged")
    space = {
        "name": "loops", "method": {"name": "gldl"}, "model": {"backbone": "shufflenet_v2_x0_5", "weights": "none"},
        "data": {"root": str(bad), "train": "synthhead/train", "val": "synthhead/val", "benchmarks": ["synth"],
                 "image_size": 32, "max_train_samples": 32, "max_eval_samples": 32},
        "train": {"epochs": 1, "batch_size": 16, "optimizer": {"name": "adam", "lr": 0.002}, "max_failures": -1},
        "resources": {"workers": 1, "cpus_per_worker": 1, "engine": engine},
        "search": {"name": "loops", "sampler": {"name": "random", "seed": 0}, "scheduler": {"name": "none"},
                   # The time limit only ends a search that would otherwise retry forever (no cap).
                   "budget": {"trials": 1, "concurrency": 1, "time_limit_s": 900},
                   "parameters": {"train.seed": {"min": 0, "max": 9}}},
    }
    path = tmp_path / "loops.yaml"
    path.write_text(yaml.safe_dump(space))
    uri = f"sqlite:///{tmp_path / 'runs.db'}"

    assert search_and_report(str(path), storage=str(tmp_path / "results"), tracking_uri=uri, verbose=False) == 1
    printed = capsys.readouterr()
    failed = next(line for line in printed.err.splitlines() if line.startswith("[ldlpose] trial "))
    assert f"{SAME_FAILURE_CAP} times in a row with the same error" in failed, printed.err[-3000:]
    assert "do not match their sha256" in failed  # the error itself, named

    (run_dir,) = (tmp_path / "results").glob("loops-*")
    attempts = json.loads((run_dir / FAILURES_FILE).read_text())
    assert len(attempts) == SAME_FAILURE_CAP  # then the trial stopped: no attempt trained again

    client = mlflow.MlflowClient(uri)
    experiment = client.get_experiment_by_name("loops")
    (trial,) = client.search_runs([experiment.experiment_id], "tags.`ldlpose.role` = 'trial'")
    assert trial.info.status == "FAILED"
    assert "do not match their sha256" in trial.data.tags["ldlpose.failure_reason"]
