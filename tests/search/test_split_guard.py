"""`ldlpose search` and `ldlpose train` refuse a validation set that is a test set under another name
before anything starts: no Ray trial, no MLflow run, no results folder (ldlpose.config.splits)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from ldlpose.cli import main

pytestmark = pytest.mark.slow


@pytest.fixture
def renamed_test_set(tmp_path, synth_root) -> Path:
    """A data root with the tiny synthhead and a copy of its test folder named like a validation set."""
    root = tmp_path / "data"
    shutil.copytree(synth_root / "synthhead", root / "synthhead")
    shutil.copytree(root / "synthhead" / "test", root / "holdout")
    return root


def run_config(root: Path) -> dict:
    return {"name": "guard", "method": {"name": "gldl"}, "model": {"backbone": "shufflenet_v2_x0_5"},
            "data": {"root": str(root), "train": "synthhead/train", "val": "holdout", "benchmarks": ["synth"],
                     "image_size": 32, "max_train_samples": 32},
            "train": {"epochs": 1, "batch_size": 16}}


def refused(capsys, tmp_path: Path, argv: list[str], root: Path) -> str:
    tracking = tmp_path / "mlflow.db"
    storage = tmp_path / "results"
    assert main([*argv, "--storage", str(storage), "--tracking-uri", f"sqlite:///{tracking}"]) == 2
    assert not tracking.exists() and not storage.exists()  # nothing was tracked, nothing trained
    error = capsys.readouterr().err
    assert f"data.val: {root / 'holdout'} holds the same prepared data (content hash sha256:" in error, error
    assert ("as the test folder of benchmark 'synth' (data.benchmarks[0]): models would be chosen on test data while "
            "every tag says validation; use its validation folder ('synthhead/val')") in error, error
    return error


def test_a_search_whose_validation_set_is_a_test_set_stops_before_training(tmp_path, renamed_test_set, capsys):
    space = tmp_path / "guard.yaml"
    space.write_text(yaml.safe_dump({**run_config(renamed_test_set), "search": {
        "budget": {"trials": 2}, "parameters": {"train.optimizer.lr": {"values": [0.01, 0.001]}}}}))
    error = refused(capsys, tmp_path, ["search", str(space)], renamed_test_set)
    assert error.startswith(f"ldlpose search: error: {space}: data.val: "), error


def test_training_whose_validation_set_is_a_test_set_stops_before_training(tmp_path, renamed_test_set, capsys):
    config = tmp_path / "guard-run.yaml"
    config.write_text(yaml.safe_dump(run_config(renamed_test_set)))
    error = refused(capsys, tmp_path, ["train", str(config)], renamed_test_set)
    assert error.startswith(f"ldlpose train: error: {config}: data.val: "), error
