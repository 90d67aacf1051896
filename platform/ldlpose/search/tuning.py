"""Running a search on Ray Tune: the only module that imports ``ray.tune``.

One Tune trial is a light *driver* function that builds the training run's ``TorchTrainer`` (Ray Train
V2) with ``TuneReportCallback``, so every epoch's metrics reach Tune, where ASHA stops poor trials and
Optuna (inside ``OptunaSearch``, define-by-run) proposes the next configuration.

Names derive from the search name and Tune's trial ids (never timestamps), and the Tuner and every
trainer share one storage path, so a stopped search resumes with ``Tuner.restore`` and each resumed
trial continues from its own latest checkpoint.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path

from ldlpose.errors import LdlposeError
from ldlpose.search.space import SearchSpace

DRIVER_CPUS = 0.01  # a trial's driver only waits on its trainer; the workers hold the real resources


@dataclass(frozen=True)
class TrialSummary:
    trial_id: str
    status: str  # TERMINATED (finished or stopped early by ASHA) or ERROR
    assignment: dict
    metrics: dict
    error: str | None
    checkpoint_path: str | None


@dataclass(frozen=True)
class SearchOutcome:
    name: str
    path: str
    trials: list[TrialSummary]
    metric: str
    goal: str

    def ranked(self) -> list[TrialSummary]:
        done = [t for t in self.trials if self.metric in t.metrics]
        sign = 1 if self.goal == "minimize" else -1
        return sorted(done, key=lambda t: sign * t.metrics[self.metric])


def smoke_test_space(space: SearchSpace) -> SearchSpace:
    """The same search shrunk to seconds: 2 trials of 1 epoch on a few dozen images."""
    base = dict(space.base)
    base["train"] = {**base.get("train", {}), "epochs": 1, "batch_size": 16}
    base["data"] = {**base.get("data", {}), "max_train_samples": 64, "max_eval_samples": 32,
                    "image_size": min(64, base.get("data", {}).get("image_size", 64))}
    budget = dataclasses.replace(space.search.budget, trials=min(2, space.num_trials))
    search = dataclasses.replace(space.search, budget=budget)
    return dataclasses.replace(space, base=base, search=search)


def trial_concurrency(space: SearchSpace, cluster: dict) -> int:
    """How many trials fit at once on the cluster's resources, capped by the budget."""
    res = space.base_run.resources
    limits = [space.num_trials, space.search.budget.concurrency or math.inf]
    need_cpu = res.workers * res.cpus_per_worker + DRIVER_CPUS
    limits.append(int(cluster.get("CPU", 1) // need_cpu) or 1)
    if res.gpus_per_worker:
        limits.append(int(cluster.get("GPU", 0) // (res.workers * res.gpus_per_worker)) or 1)
    return int(min(limits))


def _trial_driver(config: dict, space: SearchSpace, storage: str) -> None:
    from ray import tune
    from ray.tune.integration.ray_train import TuneReportCallback

    from ldlpose.train.run import fit

    run = space.run_config(config)  # an invalid combination fails this trial only, with the reason
    trial_id = tune.get_context().get_trial_id()
    fit(run, storage_path=storage, name=f"{space.name}-{trial_id}", callbacks=[TuneReportCallback()])


def _tuner(space: SearchSpace, storage: str, callbacks):
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler
    from ray.tune.search.optuna import OptunaSearch

    import ray

    search = space.search
    mode = "min" if search.metric.goal == "minimize" else "max"
    scheduler = FIFOScheduler()
    if search.scheduler.name == "asha":
        scheduler = ASHAScheduler(time_attr="training_iteration", max_t=space.base_run.train.epochs,
                                  grace_period=min(search.scheduler.grace_period, space.base_run.train.epochs),
                                  reduction_factor=search.scheduler.reduction_factor)
    searcher = OptunaSearch(space=space.define_by_run, sampler=space.sampler())
    trainable = tune.with_resources(tune.with_parameters(_trial_driver, space=space, storage=storage),
                                    {"CPU": DRIVER_CPUS})
    return tune.Tuner(
        trainable,
        tune_config=tune.TuneConfig(
            metric=search.metric.name, mode=mode, search_alg=searcher, scheduler=scheduler,
            num_samples=space.num_trials, max_concurrent_trials=trial_concurrency(space, ray.cluster_resources()),
            time_budget_s=search.budget.time_limit_s,
        ),
        run_config=tune.RunConfig(
            name=space.name, storage_path=storage, callbacks=list(callbacks),
            failure_config=tune.FailureConfig(max_failures=search.budget.max_failures_per_trial),
        ),
    )


def run_search(space: SearchSpace, *, storage: str, resume: bool = False, callbacks=()) -> SearchOutcome:
    """Start the search, or with ``resume`` continue it where its stored state exists."""
    from ray import tune

    storage = str(Path(storage).expanduser().resolve())
    path = Path(storage) / space.name
    if tune.Tuner.can_restore(str(path)):
        if not resume:
            raise LdlposeError(
                f"search {space.name!r} already has results at {path}; pass --resume to continue it, "
                "or give it another search.name to start a new one (nothing was changed)"
            )
        trainable = tune.with_resources(tune.with_parameters(_trial_driver, space=space, storage=storage),
                                        {"CPU": DRIVER_CPUS})
        tuner = tune.Tuner.restore(str(path), trainable, resume_unfinished=True, resume_errored=False,
                                   restart_errored=False)
    else:
        tuner = _tuner(space, storage, callbacks)
    grid = tuner.fit()
    return _summarise(space, grid, str(path))


def _summarise(space: SearchSpace, grid, path: str) -> SearchOutcome:
    trials = []
    for result in grid:
        metrics = dict(result.metrics or {})
        config = dict(result.config or {})
        trials.append(TrialSummary(
            trial_id=metrics.get("trial_id") or Path(result.path).name,
            status="ERROR" if result.error else "TERMINATED",
            assignment={k: v for k, v in config.items() if not k.startswith("_")},
            metrics=metrics,
            error=_error_text(result.error) if result.error else None,
            checkpoint_path=metrics.get("checkpoint_path"),
        ))
    return SearchOutcome(space.name, path, trials, space.search.metric.name, space.search.metric.goal)


def _error_text(error: BaseException) -> str:
    text = str(error).strip()
    lines = [line for line in text.splitlines() if "Error" in line]
    return (lines[-1] if lines else text.splitlines()[-1] if text else type(error).__name__).strip()
