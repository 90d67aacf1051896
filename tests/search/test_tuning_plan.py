"""How a search plans its trials on a cluster's resources (no Ray needed)."""

from pathlib import Path

from ldlpose.search.space import load_search_space
from ldlpose.search.tuning import (
    DRIVER_RESOURCE,
    driver_resources,
    smoke_test_space,
    trial_concurrency,
    trial_resources,
)

QUICKSTART = Path(__file__).resolve().parents[2] / "search_spaces" / "quickstart.yaml"


# The settings the concurrency rules below are written for, whatever the shipped quickstart holds.
PLAN = ["resources.cpus_per_worker=1", "search.budget.trials=4", "search.budget.concurrency=2"]


def test_concurrency_follows_resources_and_budget():
    space = load_search_space(QUICKSTART, PLAN)  # 1 worker x 1 CPU per trial, budget concurrency 2
    assert trial_concurrency(space, {"CPU": 2, DRIVER_RESOURCE: 100}) == 2
    assert trial_concurrency(space, {"CPU": 2}) == 2  # in-process trials: no driver beside the worker
    assert trial_resources(space, {"CPU": 2, DRIVER_RESOURCE: 100}) == {"CPU": 1.0}
    on_ray_train = load_search_space(QUICKSTART, [*PLAN, "resources.engine=ray_train"])
    assert trial_resources(on_ray_train, {"CPU": 2, DRIVER_RESOURCE: 100}) == {DRIVER_RESOURCE: 0.01}
    assert trial_concurrency(on_ray_train, {"CPU": 2}) == 1  # drivers need a sliver of a CPU too
    assert trial_concurrency(on_ray_train, {"CPU": 3}) == 2
    assert trial_concurrency(space, {"CPU": 3}) == 2
    assert trial_concurrency(space, {"CPU": 64, DRIVER_RESOURCE: 1}) == 2  # the budget caps it
    gpu = load_search_space(QUICKSTART, [*PLAN, "resources.gpus_per_worker=1", "search.budget.concurrency=null"])
    assert trial_concurrency(gpu, {"CPU": 64, "GPU": 3, DRIVER_RESOURCE: 1}) == 3


def test_the_quickstart_trains_one_trial_per_core_on_two_cpus():
    """One CPU per trial: two of the three trials at a time on 2 cores (an epoch takes as long beside
    another trial as alone; three at once cost half as much again per epoch, bench/RESULTS.md "Quickstart")."""
    space = load_search_space(QUICKSTART)
    assert space.num_trials == 3 and trial_concurrency(space, {"CPU": 2}) == 2
    assert trial_resources(space, {"CPU": 2}) == {"CPU": 1.0}


def test_drivers_prefer_the_driver_resource():
    assert driver_resources({"CPU": 4, DRIVER_RESOURCE: 1}) == {DRIVER_RESOURCE: 0.01}
    assert driver_resources({"CPU": 4}) == {"CPU": 0.01}


def test_smoke_test_shrinks_the_search():
    real = load_search_space(QUICKSTART)
    space = smoke_test_space(real)
    run = space.base_run
    assert space.num_trials == 2 and run.train.epochs == 1
    # A search of its own: its storage folder, MLflow experiment and runs are named after it.
    assert space.name == space.search.name == f"{real.name}-smoke"
    assert run.data.max_train_samples == 64 and run.data.max_eval_samples == 32
