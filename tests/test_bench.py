"""The arithmetic of the search benchmarks, on result files written here (no Ray: the runs themselves
are the scripts' --smoke-test, which takes minutes on 2 cores)."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def efficiency():
    return _load("search_efficiency")


def _write_trial(experiment: Path, trial: str, reports: list[tuple[int, float, int, float]]) -> None:
    """reports: (epoch, val_mae, Tune's whole-second timestamp, time_total_s)."""
    folder = experiment / f"trial_{trial}"
    folder.mkdir(parents=True)
    lines = [json.dumps({"trial_id": trial, "epoch": e, "val_mae": v, "timestamp": t, "time_total_s": s})
             for e, v, t, s in reports]
    (folder / "result.json").write_text("\n".join(lines) + "\n")


def test_anytime_curve_follows_report_order_across_trials(efficiency, tmp_path):
    _write_trial(tmp_path, "a", [(1, 20.0, 100, 5.0), (2, 18.0, 104, 9.0), (2, 18.0, 104, 9.5)])  # epoch 2 twice
    _write_trial(tmp_path, "b", [(1, 19.0, 102, 6.0), (2, 15.0, 104, 10.0)])
    rows = efficiency.epoch_results(tmp_path)
    assert [(r["trial"], r["epoch"]) for r in rows] == [("a", 1), ("b", 1), ("a", 2), ("b", 2)]
    curve = efficiency.anytime_curve(rows)
    assert curve == [20.0, 19.0, 18.0, 15.0]
    assert efficiency.at_budget(curve, 3) == 18.0
    assert efficiency.at_budget(curve, 10) == 15.0  # a search that spent less than the budget keeps its last
    assert efficiency.epochs_to_reach(curve, 18.5, budget=4) == 3
    assert efficiency.epochs_to_reach(curve, 15.0, budget=3) is None  # reached only beyond the budget


def test_summary_measures_every_strategy_against_the_grids_mean_best(efficiency):
    def search(curve):
        return {"name": "s", "trials": 2, "epochs_spent": len(curve), "best_at_budget": curve[-1],
                "curve": curve, "wall_s": 1.0}

    searches = {"tpe+asha": [search([30.0, 20.5, 20.0]), search([25.0, 24.0, 23.0])],
                "grid": [search([22.0, 21.0, 20.0]), search([22.0, 22.0, 20.0])]}
    summary = efficiency.summarise(searches, budget=3)
    assert summary["grid_best"] == 20.0 and math.isclose(summary["target"], 21.0)
    tpe = summary["strategies"]["tpe+asha"]
    assert tpe["epochs_to_target"] == [2, None] and tpe["reached"] == 1 and tpe["epochs_to_target_mean"] == 2
    assert tpe["best_at_budget"]["mean"] == 21.5 and tpe["mean_curve"] == [27.5, 22.25, 21.5]
    assert summary["strategies"]["grid"]["epochs_to_target"] == [2, 3]


def test_paper_grids_are_read_from_the_papers_spaces(efficiency):
    assert efficiency.paper_grid("gldl") == {"method": "gldl", "alpha": [0.0, 0.01, 0.1, 1.0, 2.0],
                                             "fixed": {"sigma": 4.0}}
    assert efficiency.paper_grid("hopenet", 2) == {"method": "hopenet", "alpha": [0.001, 1.0], "fixed": {}}


def test_disk_sizes_split_mlflow_models_trial_runs_and_the_parent(tmp_path):
    disk = _load("disk_use")
    root = tmp_path / "mlartifacts" / "s"
    (root / "models" / "m-1" / "artifacts").mkdir(parents=True)
    (root / "models" / "m-1" / "artifacts" / "model.pt2").write_bytes(b"x" * 100)
    (root / "run1" / "artifacts" / "plots").mkdir(parents=True)
    (root / "run1" / "artifacts" / "plots" / "a.png").write_bytes(b"x" * 10)
    (root / "parent" / "artifacts").mkdir(parents=True)
    (root / "parent" / "artifacts" / "search.yaml").write_bytes(b"x" * 3)
    found = disk.mlflow_sizes(root)
    assert found == {"models": [100], "trial_runs": [10], "parent_run": 3, "total": 113}


def test_epoch_parts_times_the_runs_own_loader_and_step_on_the_same_batches(synth_root):
    from conftest import tiny_run

    parts = _load("epoch_parts")
    run = tiny_run(synth_root, model__backbone="mobilenet_v3_small", train__batch_size=16)
    result = parts.measure(run, batches=2)
    rates = result["images_per_s"]
    assert result["images"] == 2 * 16 and result["batch_size"] == 16  # the first batch is left out
    assert set(rates) == {"loader", "step", "bare step, random input", "loader + step, as the loop runs them"}
    assert all(rate > 0 and math.isfinite(rate) for rate in rates.values())
    # The loop runs the two one after the other: together slower than either alone.
    combined = rates["loader + step, as the loop runs them"]
    assert combined < min(rates["loader"], rates["step"])
    assert math.isclose(1 / combined, 1 / rates["loader"] + 1 / rates["step"])
    assert "step_images_per_s_by_backbone" not in result


def test_epoch_parts_compares_backbones_on_the_same_batches(synth_root):
    from conftest import tiny_run

    from ldlpose import methods
    from ldlpose.models import build_model

    parts = _load("epoch_parts")
    run = tiny_run(synth_root, train__batch_size=16)
    result = parts.measure(run, batches=2, backbones=["shufflenet_v2_x0_5", "resnet18"], rounds=2)
    by_backbone = result["step_images_per_s_by_backbone"]
    assert set(by_backbone) == {"shufflenet_v2_x0_5", "resnet18"} and result["rounds"] == 2
    assert all(rate > 0 and math.isfinite(rate) for rate in by_backbone.values())
    # Each rate was measured on the network it names (not on the run's own backbone, nor one network
    # for both): the step records what it ran. Which one is faster is the machine's business (bench/).
    ran = result["step_model_by_backbone"]
    method = methods.create(run.method.name)
    for name, network in (("shufflenet_v2_x0_5", "ShuffleNetV2"), ("resnet18", "ResNet")):
        expected = sum(p.numel() for p in build_model(method, name).parameters())
        assert ran[name] == {"backbone_class": network, "parameters": expected}, name
    assert ran["resnet18"]["parameters"] > 10 * ran["shufflenet_v2_x0_5"]["parameters"]  # 11.3 M against 0.54 M


def test_prepare_time_prepares_the_counts_it_was_given_and_splits_cpu_time_by_worker(tmp_path):
    prepare = _load("prepare_time")
    result = prepare.measure(tmp_path / "synthhead", {"train": 12, "val": 4, "test": 0}, size=32, workers=1)
    assert result["rows"] == {"train": 12, "val": 4}  # a split of 0 rows is not written
    assert not (tmp_path / "synthhead" / "test").exists()
    assert result["workers"] == 1 and result["size"] == 32
    assert result["cpu_s_per_worker"] == result["cpu_s"] >= 0 and result["wall_s"] > 0
    with pytest.raises(SystemExit, match="exited with 2"):  # the folder is prepared already
        prepare.measure(tmp_path / "synthhead", {"train": 12, "val": 4, "test": 0}, size=32, workers=1)
