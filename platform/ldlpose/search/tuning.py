"""Running a search on Ray Tune: the only module that builds Tuners and trial functions.

A trial of several workers or GPUs is a light *driver* function that builds the training run's
``TorchTrainer`` (Ray Train V2) with ``TuneReportCallback``; a trial of one CPU worker runs the same
training loop inside the trial itself (ldlpose.train.run.engine), on an actor Tune reuses for the
next trial, so it pays no controller, worker or process start. Either way every epoch's metrics
reach Tune, where ASHA stops poor trials and Optuna (inside ``OptunaSearch``, define-by-run)
proposes the next configuration. Both see the search objective at each trial's selected epoch so
far (``selected_val_mae``), which is the checkpoint the trial will be judged and registered by.

Names derive from the search name and Tune's trial ids (never timestamps), and the Tuner and every
trainer share one storage path, so a stopped search resumes with ``Tuner.restore`` and each resumed
trial continues from its own latest checkpoint.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

from ray import tune

from ldlpose.errors import LdlposeError
from ldlpose.infra import trace
from ldlpose.infra.storage import join as storage_join
from ldlpose.infra.storage import name as storage_name
from ldlpose.infra.storage import resolve as resolve_storage
from ldlpose.search import ray_compat
from ldlpose.search.callback import TrackingCallback
from ldlpose.search.confirm import check_points, point_of
from ldlpose.search.names import public_names
from ldlpose.search.space import SMOKE_SUFFIX, SearchSpace
from ldlpose.search.trial_hook import trial_function
from ldlpose.search.trials import TrialSummary, error_text, objective_key

# A trial's driver only waits on its trainer; the workers hold the real resources. Where the cluster
# offers DRIVER_RESOURCE (cluster.yaml puts it on the head; a local Ray started by ldlpose has it),
# drivers take a sliver of it and leave every CPU to the workers; elsewhere a sliver of a CPU.
DRIVER_RESOURCE = "TRAIN_DRIVER_RESOURCE"
DRIVER_SHARE = 0.01
CONFIRM_SUFFIX = "-confirm"
_STRICT_METRICS = "TUNE_DISABLE_STRICT_METRIC_CHECKING"  # read by Tune's controller at every result
STATE_SYNC_S = 10  # at most this long between copies of Tune's experiment state to storage


@dataclass(frozen=True)
class SearchOutcome:
    name: str
    path: str
    trials: list[TrialSummary]
    objective: str  # the Tune metric, e.g. selected_val_mae (lower is better)

    def ranked(self) -> list[TrialSummary]:
        done = [t for t in self.trials if self.objective in t.metrics]
        return sorted(done, key=lambda t: t.metrics[self.objective])


def smoke_test_space(space: SearchSpace) -> SearchSpace:
    """The same search shrunk to seconds: 2 trials of 1 epoch on a few dozen images, no confirmation.

    It runs as a search of its own, ``<name>-smoke`` (storage folder, MLflow experiment, run names),
    so that nothing of it can be resumed, ranked or registered as the real search.
    """
    base = dict(space.base)
    base["train"] = {**base.get("train", {}), "epochs": 1, "batch_size": 16}
    base["data"] = {**base.get("data", {}), "max_train_samples": 64, "max_eval_samples": 32,
                    "image_size": min(64, base.get("data", {}).get("image_size", 64))}
    budget = space.search.budget.model_copy(update={"trials": min(2, space.num_trials)})
    confirm = space.search.confirm.model_copy(update={"top_k": 0})
    name = space.name + SMOKE_SUFFIX
    search = space.search.model_copy(update={"budget": budget, "confirm": confirm, "name": name})
    return dataclasses.replace(space, name=name, base=base, search=search)


def clear_smoke_test(space: SearchSpace, storage: str) -> bool:
    """Remove what an earlier run of this smoke test left in ``storage``: a smoke test starts afresh
    (``ldlpose submit`` always resumes). Only the smoke test's own folders go. Whether any existed."""
    from ldlpose.infra.lease import PREFIX as LEASE
    from ldlpose.infra.storage import delete, listing

    assert space.name.endswith(SMOKE_SUFFIX), space.name
    storage = resolve_storage(storage)
    state = storage_join(storage, space.name)
    # All but the lease, which the driver clearing it holds (ldlpose.infra.lease).
    kept = [storage_join(state, item.base_name) for item in listing(state) if not item.base_name.startswith(LEASE)]
    if not kept:
        return False
    runs = [storage_join(storage, item.base_name) for item in listing(storage)
            if _is_trial_folder(item.base_name, space.name)]
    for location in [*kept, *runs]:
        delete(location)
    return True


def _is_trial_folder(folder: str, search: str) -> bool:
    """``<search>-<Tune trial id>``: a training run's folder (ids are 8 hexadecimal digits, or 5 + _5 digits)."""
    rest = folder.removeprefix(search + "-")
    return rest != folder and rest.replace("_", "").isalnum() and "-" not in rest


def in_process(space: SearchSpace) -> bool:
    """Whether the search's trials train in their own process (one CPU worker each)."""
    from ldlpose.train.run import engine

    return engine(space.base_run) == "in_process"


def driver_resources(cluster: dict) -> dict:
    return {DRIVER_RESOURCE: DRIVER_SHARE} if cluster.get(DRIVER_RESOURCE) else {"CPU": DRIVER_SHARE}


def trial_resources(space: SearchSpace, cluster: dict) -> dict:
    """What one trial asks Tune for: its worker's CPUs when it trains in-process, else a driver's sliver."""
    if in_process(space):
        return {"CPU": space.base_run.resources.cpus_per_worker}
    return driver_resources(cluster)


def trial_concurrency(space: SearchSpace, cluster: dict, trials: int | None = None) -> int:
    """How many trials fit at once on the cluster's resources, capped by the budget."""
    res = space.base_run.resources
    limits = [trials or space.num_trials, space.search.budget.concurrency or math.inf]
    driver_cpu = 0.0 if in_process(space) else driver_resources(cluster).get("CPU", 0.0)
    need_cpu = res.workers * res.cpus_per_worker + driver_cpu
    limits.append(int(cluster.get("CPU", 1) // need_cpu) or 1)
    if res.gpus_per_worker:
        limits.append(int(cluster.get("GPU", 0) // (res.workers * res.gpus_per_worker)) or 1)
    return int(min(limits))


def trial(config: dict, space: SearchSpace, storage: str, prefix: str, points: list[dict] | None = None) -> None:
    """One Tune trial: one training run with the sampled values, in this process or on Ray Train.

    ``points``: a confirmation search's; its trial's point (assignment, seed) is ``config["_point"]``.
    """
    from ldlpose.train.run import engine, fit, fit_attempt

    assignment = point_of(config, points)["assignment"] if points is not None else config
    run = space.run_config(assignment)  # an invalid combination fails this trial only, with the reason
    trial_id = tune.get_context().get_trial_id()
    name = f"{prefix}-{trial_id}"
    trace.mark("trial.function_start", trial_id, time.time())
    if engine(run) == "in_process":
        # Failed attempts are retried by Tune (trial_retries, which says when not), as is a lost node.
        outcome = fit_attempt(run, storage_path=storage, name=name, publish=tune.report)
        report_costs(space, run, outcome, on_workers=False)
        return
    from ray.tune.integration.ray_train import TuneReportCallback

    outcome = fit(run, storage_path=storage, name=name, callbacks=[TuneReportCallback()], retry=False)
    ray_compat.wait_for_reports_to_drain()
    report_costs(space, run, outcome, on_workers=True)


def report_costs(space: SearchSpace, run, outcome, *, on_workers: bool) -> None:
    """A multi-objective trial's last result: its final metrics plus the costs of its selected checkpoint.

    Measured on the device the trial trained on: in this process for an in-process trial (same
    CPU threads), else in a task with one worker's resources on the node of the trial's rank 0.
    A single-objective trial measures nothing and reports nothing more.
    """
    if not space.search.objectives or outcome.selected is None:
        return
    settings = space.search.profile.model_dump()
    if on_workers:
        costs = _costs_on_worker_node(run, outcome.metrics.get("node_id"), outcome.selected.path, settings)
    else:
        costs = measure_costs(outcome.selected.path, settings, None)
    tune.report({**outcome.metrics, **costs, "profile_epoch": outcome.selected.epoch})


def measure_costs(checkpoint_dir: str, settings: dict, cpus: float | None) -> dict:
    import torch

    from ldlpose.inference.profile import ProfileSettings, profile_checkpoint

    if cpus:  # a fresh Ray task: use the worker's CPUs, as its training did
        torch.set_num_threads(max(1, int(cpus)))
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return profile_checkpoint(checkpoint_dir, device, ProfileSettings(**settings))


def _costs_on_worker_node(run, node_id: str | None, checkpoint_dir: str, settings: dict) -> dict:
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    res = run.resources
    strategy = NodeAffinitySchedulingStrategy(node_id, soft=True) if node_id else "DEFAULT"
    task = ray.remote(measure_costs).options(num_cpus=res.cpus_per_worker, num_gpus=res.gpus_per_worker,
                                             scheduling_strategy=strategy)
    return ray.get(task.remote(checkpoint_dir, settings, res.cpus_per_worker))


def _trial_name(trial) -> str:
    return f"trial_{trial.trial_id}"


def _trainable(space: SearchSpace, storage: str, prefix: str, points: list[dict] | None):
    import ray

    run = trial_function(trial)  # `trial`, unless a benchmark names another (LDLPOSE_TRIAL_FUNCTION)
    return tune.with_resources(tune.with_parameters(run, space=space, storage=storage, prefix=prefix, points=points),
                               trial_resources(space, ray.cluster_resources()))


def _tune_config(space: SearchSpace, *, search_alg, scheduler, num_samples: int):
    import ray

    return tune.TuneConfig(
        metric=objective_key(space), mode="min", search_alg=search_alg, scheduler=scheduler,
        num_samples=num_samples,
        max_concurrent_trials=trial_concurrency(space, ray.cluster_resources(), num_samples),
        time_budget_s=space.search.budget.time_limit_s,
        # In-process trials keep torch, the data readers and the model code loaded for the next one.
        reuse_actors=in_process(space),
        # Trials are named by their ids alone (no parameters, no timestamps).
        trial_name_creator=_trial_name, trial_dirname_creator=_trial_name,
    )


def _run_config(name: str, storage: str, callbacks, space: SearchSpace, verbose: bool):
    # Tune's own tables only with --verbose; ldlpose.search.console shows the search otherwise.
    return tune.RunConfig(name=name, storage_path=storage, callbacks=list(callbacks), verbose=2 if verbose else 0,
                          failure_config=tune.FailureConfig(max_failures=trial_retries(space)),
                          # Tune snapshots its state every 10 s or more but copies it to storage at most
                          # every sync_period (300 s by default): a driver killed before that left
                          # nothing to resume. The state is a few small files.
                          sync_config=tune.SyncConfig(sync_period=STATE_SYNC_S))


def trial_retries(space: SearchSpace) -> int:
    """How often Tune starts a failed trial again (-1: without limit).

    A trial on Ray Train survives worker failures (a lost node too) inside Ray Train, within
    ``train.max_failures`` (-1: as capped below); Tune restarts its driver ``max_failures_per_trial``
    times. An in-process trial is its own worker: a failed attempt or a lost node ends the trial's
    process, so Tune restarts it, from its latest checkpoint, as often as both allow together; under
    -1 on either engine until the same failure repeats 3 times in a row (ldlpose.train.failures).
    """
    budget = space.search.budget.max_failures_per_trial
    if not in_process(space):
        return budget
    workers = space.base_run.train.max_failures
    return -1 if workers < 0 else budget + workers


def searcher(space: SearchSpace):
    """Tune's searcher for ``space``: Optuna, define-by-run, trying ``search.start_from`` first (also
    driven directly, without a Tuner, by the replay benchmark: bench/replay.py)."""
    from ldlpose.search import optuna_space
    from ldlpose.search.searcher import PublicNamesOptunaSearch as OptunaSearch

    common = {"space": optuna_space.define_by_run(space), "points_to_evaluate": optuna_space.start_points(space)}
    if space.search.objectives:  # Optuna sees every objective; Tune's own metric stays the first
        metrics = [objective_key(space), *(o.name for o in space.search.objectives[1:])]
        return OptunaSearch(**common, sampler=optuna_space.multi_objective_sampler(space),
                            metric=metrics, mode=["min"] * len(metrics))
    return OptunaSearch(**common, sampler=optuna_space.sampler(space), metric=objective_key(space), mode="min")


def scheduler(space: SearchSpace):
    """Tune's trial scheduler for ``space``: ASHA by epoch, or FIFO (every trial to its last epoch).

    Also driven directly, without a Tuner, by the replay benchmark (bench/replay.py).
    """
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler

    settings, epochs = space.search.scheduler, space.base_run.train.epochs
    if settings.name != "asha":
        return FIFOScheduler()
    # By epoch, not by Tune's report count: a trial resumed from its checkpoint continues its epochs.
    return ASHAScheduler(time_attr="epoch", max_t=epochs, grace_period=min(settings.grace_period, epochs),
                         reduction_factor=settings.reduction_factor)


def _search_tuner(space: SearchSpace, storage: str, callbacks, verbose: bool):
    trials, concurrency = _budget(space)[:2]
    config = _tune_config(space, search_alg=ray_compat.budgeted_search(searcher(space), trials, concurrency),
                          scheduler=scheduler(space), num_samples=trials)
    config.max_concurrent_trials = None  # the search algorithm limits it (and a resume may change it)
    return tune.Tuner(_trainable(space, storage, space.name, None), tune_config=config,
                      run_config=_run_config(space.name, storage, callbacks, space, verbose))


def _budget(space: SearchSpace) -> tuple[int, int, float | None]:
    """(trials, trials at once on this cluster, time limit): what a resumed search may change."""
    import ray

    trials = space.num_trials
    return trials, trial_concurrency(space, ray.cluster_resources(), trials), space.search.budget.time_limit_s


def _confirm_tuner(space: SearchSpace, storage: str, callbacks, points: list[dict], verbose: bool):
    name = space.name + CONFIRM_SUFFIX
    return tune.Tuner(
        _trainable(space, storage, name, points),
        # Each trial carries its point, so a restored trial is never matched by a position in a list
        # rebuilt on every run.
        param_space={"_point": tune.grid_search(list(points))},
        tune_config=_tune_config(space, search_alg=None, scheduler=None, num_samples=1),
        run_config=_run_config(name, storage, callbacks, space, verbose),
    )


def _fit(path: str, build, restore, resume: bool, callbacks, budget: tuple | None = None):
    """``budget``: (trials, concurrency, time limit) for a restored search, whose stored one it replaces."""
    from ldlpose.search.console import ConsoleView

    if tune.Tuner.can_restore(path):
        if not resume:
            raise LdlposeError(
                f"search {storage_name(path)!r} already has results at {path}; pass --resume to continue it, "
                "or give it another search.name to start a new one (nothing was changed)")
        tuner = tune.Tuner.restore(path, restore(), resume_unfinished=True, resume_errored=False,
                                   restart_errored=False)
        ray_compat.replace_callbacks(tuner, (TrackingCallback, ConsoleView, ray_compat.StopRepeatedFailures),
                                     callbacks)
        if budget is not None:
            ray_compat.set_budget(tuner, *budget)
    else:
        tuner = build()
    return tuner.fit()


def run_search(space: SearchSpace, *, storage: str, resume: bool = False, callbacks=(),
               verbose: bool = True) -> SearchOutcome:
    """Start the search, or with ``resume`` continue it where its stored state exists.

    Completed trials are never run again on resume; unfinished ones continue from their checkpoints.
    """
    storage = resolve_storage(storage)  # a URI (s3://...) stays one
    path = storage_join(storage, space.name)
    callbacks = [*callbacks, ray_compat.StopRepeatedFailures(storage, space.name)]
    with _costs_arrive_last(space):
        grid = _fit(path, lambda: _search_tuner(space, storage, callbacks, verbose),
                    lambda: _trainable(space, storage, space.name, None), resume, list(callbacks), _budget(space))
    return _summarise(space, grid, path, storage, space.name, None)


@contextlib.contextmanager
def _costs_arrive_last(space: SearchSpace):
    """Let epoch results lack the cost objectives, which only a trial's last result carries.

    Costs are measured once, on the selected checkpoint after the last epoch (report_costs); Tune
    otherwise requires every result to hold every metric the searcher reads, although Optuna reads
    a multi-objective trial's values only when it completes (its studies take no intermediate values).
    """
    if not space.search.objectives:
        yield
        return
    old = os.environ.get(_STRICT_METRICS)
    os.environ[_STRICT_METRICS] = "1"
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(_STRICT_METRICS, None)
        else:
            os.environ[_STRICT_METRICS] = old


def run_confirmation(space: SearchSpace, points: list[dict], *, storage: str, callbacks=(),
                     verbose: bool = True) -> SearchOutcome:
    """Train each point (a top configuration with one new seed) once, as trials of a second Tuner.

    Always resumable: a stopped confirmation continues without retraining its finished runs.
    """
    storage = resolve_storage(storage)
    name = space.name + CONFIRM_SUFFIX
    path = storage_join(storage, name)
    check_points(path, points)
    callbacks = [*callbacks, ray_compat.StopRepeatedFailures(storage, name)]
    grid = _fit(path, lambda: _confirm_tuner(space, storage, callbacks, points, verbose),
                lambda: _trainable(space, storage, name, points), True, list(callbacks))
    return _summarise(space, grid, path, storage, name, points)


def _summarise(space: SearchSpace, grid, path: str, storage: str, prefix: str,
               points: list[dict] | None) -> SearchOutcome:
    trials = []
    for result in grid:
        metrics = dict(result.metrics or {})
        config = dict(result.config or {})
        trial_id = metrics.get("trial_id") or Path(result.path).name.removeprefix("trial_")
        confirms = None
        if points is not None:
            point = point_of(config, points)
            assignment, confirms = point["assignment"], point["confirms"]
        else:
            assignment = public_names({k: v for k, v in config.items() if not k.startswith("_")})  # older: Optuna's
        trials.append(TrialSummary(
            trial_id=trial_id, status="ERROR" if result.error else "TERMINATED", assignment=assignment,
            metrics=metrics, error=error_text(result.error) if result.error else None,
            run_dir=storage_join(storage, f"{prefix}-{trial_id}"), confirms=confirms))
    return SearchOutcome(space.name, path, trials, objective_key(space))
