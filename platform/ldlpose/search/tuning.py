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
import time
from dataclasses import dataclass
from pathlib import Path

from ray import tune

from ldlpose.errors import LdlposeError
from ldlpose.search.space import SearchSpace

# A trial's driver only waits on its trainer; the workers hold the real resources. Where the cluster
# offers DRIVER_RESOURCE (cluster.yaml puts it on the head; a local Ray started by ldlpose has it),
# drivers take a sliver of it and leave every CPU to the workers; elsewhere a sliver of a CPU.
DRIVER_RESOURCE = "TRAIN_DRIVER_RESOURCE"
DRIVER_SHARE = 0.01


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


class TrackingCallback(tune.Callback):
    """A Ray Tune callback that mirrors the search into MLflow from the Tune driver process only.

    Holds plain data; the MLflow client is made on first use, so a restored search reconnects.
    """

    def __init__(self, uri: str, space: SearchSpace, start_info: dict):
        super().__init__()
        self.uri, self.space, self.start_info = uri, space, start_info
        self._tracker = None
        self.models: dict[str, dict] = {}  # trial id -> {model_uri, run_id, metrics}
        self.errors: list[str] = []

    def __getstate__(self):
        return {**self.__dict__, "_tracker": None}

    @property
    def tracker(self):
        if self._tracker is None:
            from ldlpose.tracking import SearchTracker

            self._tracker = SearchTracker(self.uri, self.space.name)
            self._tracker.start(**self.start_info)
        return self._tracker

    def _safely(self, what: str, fn, *args):
        try:
            return fn(*args)
        except Exception as err:  # tracking trouble never stops the search; it is reported at the end
            self.errors.append(f"{what}: {type(err).__name__}: {err}")
            return None

    def on_trial_start(self, iteration, trials, trial, **info) -> None:
        self._safely(f"trial {trial.trial_id} start", self.tracker.trial_started, trial.trial_id,
                     _assignment(trial.config))

    def on_trial_result(self, iteration, trials, trial, result, **info) -> None:
        step = int(result.get("epoch", result.get("training_iteration", 0)))
        self._safely(f"trial {trial.trial_id} result", self.tracker.trial_result, trial.trial_id, result, step)

    def on_trial_complete(self, iteration, trials, trial, **info) -> None:
        self._safely(f"trial {trial.trial_id} completion", self._trial_complete, trial)

    def _trial_complete(self, trial) -> None:
        result = dict(trial.last_result or {})
        best = best_checkpoint(result.get("checkpoint_path"), self.space.search.metric.name,
                               self.space.search.metric.goal, result.get("epoch"))
        if best is not None:
            path, metrics = best
            model_uri = self._safely(f"trial {trial.trial_id} model", self.tracker.log_trial_model,
                                     trial.trial_id, path)
            self._safely(f"trial {trial.trial_id} plots", self.tracker.log_trial_artifacts, trial.trial_id, path,
                         _eval_samples(self.space))
            if model_uri:
                self.models[trial.trial_id] = {"model_uri": model_uri, "metrics": metrics,
                                               "run_id": self.tracker._trial_run(trial.trial_id)}
            result = {**result, **{f"best_{k}": v for k, v in metrics.items()}}
        self._safely(f"trial {trial.trial_id} end", self.tracker.trial_finished, trial.trial_id, "FINISHED",
                     _numeric(result), None, result.get("worker_node"), result.get("device"))

    def on_trial_error(self, iteration, trials, trial, **info) -> None:
        reason = _trial_error(trial)
        self._safely(f"trial {trial.trial_id} end", self.tracker.trial_finished, trial.trial_id, "FAILED",
                     _numeric(trial.last_result or {}), reason, None, None)


def _numeric(result: dict) -> dict:
    return {k: v for k, v in result.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


def _assignment(config: dict) -> dict:
    return {k: v for k, v in config.items() if not k.startswith("_")}


def _trial_error(trial) -> str:
    path = getattr(trial, "error_file", None) or ""
    text = Path(path).read_text() if path and Path(path).is_file() else str(getattr(trial, "error_msg", ""))
    return _error_text(text) if text else "unknown error"


def best_checkpoint(checkpoint_path: str | None, metric: str, goal: str,
                    last_epoch: int | None = None) -> tuple[str, dict] | None:
    """The kept checkpoint of a training run with the best ``metric``: (folder, its metrics).

    Only checkpoints up to ``last_epoch`` (what Tune saw) count: a trial stopped by ASHA may leave a
    later checkpoint half-written while its trainer shuts down, and an unreadable one is skipped.
    """
    from ldlpose.train.loop import CHECKPOINT_FILE, load_checkpoint

    if not checkpoint_path:
        return None
    candidates = []
    for folder in Path(checkpoint_path).parent.glob("checkpoint_*"):
        if not folder.is_dir():  # checkpoint_manager_snapshot.json lives beside them
            continue
        try:
            metrics = load_checkpoint(folder / CHECKPOINT_FILE)["metrics"]
        except (OSError, RuntimeError, KeyError, EOFError):
            continue
        if metric in metrics and (last_epoch is None or metrics.get("epoch", 0) <= last_epoch):
            candidates.append((metrics[metric], str(folder), metrics))
    if not candidates:
        return None
    value, folder, metrics = (min if goal == "minimize" else max)(candidates, key=lambda c: c[0])
    return folder, metrics


def _eval_samples(space: SearchSpace, count: int = 32) -> dict:
    """A few images per benchmark (uint8 RGB, true angles) for the trial's plots."""
    from ldlpose.data import benchmarks
    from ldlpose.data.shards import sample_rows

    run = space.base_run
    data = {}
    for name in run.data.benchmarks:
        bench = benchmarks.get(name)
        folder = bench.resolve(run.data.root)
        data[name] = sample_rows(folder, count, rows=bench.row_indices(folder))
    return data


def smoke_test_space(space: SearchSpace) -> SearchSpace:
    """The same search shrunk to seconds: 2 trials of 1 epoch on a few dozen images."""
    base = dict(space.base)
    base["train"] = {**base.get("train", {}), "epochs": 1, "batch_size": 16}
    base["data"] = {**base.get("data", {}), "max_train_samples": 64, "max_eval_samples": 32,
                    "image_size": min(64, base.get("data", {}).get("image_size", 64))}
    budget = dataclasses.replace(space.search.budget, trials=min(2, space.num_trials))
    search = dataclasses.replace(space.search, budget=budget)
    return dataclasses.replace(space, base=base, search=search)


def driver_resources(cluster: dict) -> dict:
    return {DRIVER_RESOURCE: DRIVER_SHARE} if cluster.get(DRIVER_RESOURCE) else {"CPU": DRIVER_SHARE}


def trial_concurrency(space: SearchSpace, cluster: dict) -> int:
    """How many trials fit at once on the cluster's resources, capped by the budget."""
    res = space.base_run.resources
    limits = [space.num_trials, space.search.budget.concurrency or math.inf]
    need_cpu = res.workers * res.cpus_per_worker + driver_resources(cluster).get("CPU", 0.0)
    limits.append(int(cluster.get("CPU", 1) // need_cpu) or 1)
    if res.gpus_per_worker:
        limits.append(int(cluster.get("GPU", 0) // (res.workers * res.gpus_per_worker)) or 1)
    return int(min(limits))


def trial(config: dict, space: SearchSpace, storage: str) -> None:
    """One Tune trial: the driver of one training run (Ray Train) with the sampled values."""
    from ray.tune.integration.ray_train import TuneReportCallback

    from ldlpose.train.run import fit

    run = space.run_config(config)  # an invalid combination fails this trial only, with the reason
    trial_id = tune.get_context().get_trial_id()
    fit(run, storage_path=storage, name=f"{space.name}-{trial_id}", callbacks=[TuneReportCallback()])
    _wait_for_reports_to_drain()


def _wait_for_reports_to_drain(timeout_s: float = 60.0) -> None:
    """Return only once Tune has taken the trial's last report.

    Ray 2.60 race: Tune's function runner moves each Train report from an inter-actor queue into its
    one-slot result queue on the trial's main thread; when this function returns at that moment, the
    runner's end-of-trial marker can fill the slot first and the main thread blocks forever on its
    ``put``. Waiting here until both queues stay empty closes the window.
    """
    from ray.train._internal.session import get_session

    session = get_session()
    inter_actor = getattr(session, "_inter_actor_queue", None)

    def drained() -> bool:
        return (inter_actor is None or inter_actor.empty()) and session.result_queue.empty()

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if drained():
            time.sleep(0.5)  # the main thread may be between taking an item and queueing it
            if drained():
                return
        time.sleep(0.1)


def _trial_name(trial) -> str:
    return f"trial_{trial.trial_id}"


def _trainable(space: SearchSpace, storage: str):
    import ray

    return tune.with_resources(tune.with_parameters(trial, space=space, storage=storage),
                               driver_resources(ray.cluster_resources()))


def _tuner(space: SearchSpace, storage: str, callbacks):
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
    searcher = OptunaSearch(space=space.define_by_run, sampler=space.sampler(), metric=search.metric.name, mode=mode)
    return tune.Tuner(
        _trainable(space, storage),
        tune_config=tune.TuneConfig(
            metric=search.metric.name, mode=mode, search_alg=searcher, scheduler=scheduler,
            num_samples=space.num_trials, max_concurrent_trials=trial_concurrency(space, ray.cluster_resources()),
            time_budget_s=search.budget.time_limit_s,
            # Trials are named by their ids alone (no parameters, no timestamps).
            trial_name_creator=_trial_name, trial_dirname_creator=_trial_name,
        ),
        run_config=tune.RunConfig(
            name=space.name, storage_path=storage, callbacks=list(callbacks),
            failure_config=tune.FailureConfig(max_failures=search.budget.max_failures_per_trial),
        ),
    )


def run_search(space: SearchSpace, *, storage: str, resume: bool = False,
               tracking: TrackingCallback | None = None) -> SearchOutcome:
    """Start the search, or with ``resume`` continue it where its stored state exists.

    Completed trials are never run again on resume; unfinished ones continue from their checkpoints.
    """
    storage = str(Path(storage).expanduser().resolve())
    path = Path(storage) / space.name
    callbacks = [] if tracking is None else [tracking]
    if tune.Tuner.can_restore(str(path)):
        if not resume:
            raise LdlposeError(
                f"search {space.name!r} already has results at {path}; pass --resume to continue it, "
                "or give it another search.name to start a new one (nothing was changed)"
            )
        tuner = tune.Tuner.restore(str(path), _trainable(space, storage), resume_unfinished=True,
                                   resume_errored=False, restart_errored=False)
        _replace_callbacks(tuner, callbacks)
    else:
        tuner = _tuner(space, storage, callbacks)
    grid = tuner.fit()
    return _summarise(space, grid, str(path))


def _replace_callbacks(tuner, callbacks) -> None:
    """A restored Tuner brings back pickled callbacks; give it this session's instead."""
    internal = getattr(tuner, "_local_tuner", None)
    run_config = getattr(internal, "_run_config", None)
    if run_config is not None:
        run_config.callbacks = [c for c in (run_config.callbacks or [])
                                if not isinstance(c, TrackingCallback)] + list(callbacks)


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
