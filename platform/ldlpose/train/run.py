"""The driver side of one training run, on one of two engines with the same per-worker loop.

``ray_train`` builds Ray Train's ``TorchTrainer`` and fits it: several workers, GPUs, several nodes,
worker failures retried by Ray Train. ``in_process`` runs the loop of a single CPU worker in this
process (a Tune trial, or ``ldlpose train``), which saves starting a Train controller, worker
actors and a process group for every trial (bench/trial_cost.py measures it); failures are retried
here from the latest checkpoint, the same way. ``resources.engine: auto`` picks in_process for one
CPU worker and ray_train otherwise.

A run is named; starting a run whose ``(storage_path, name)`` already holds checkpoints continues
from the latest one, on either engine, which is also how a search trial resumes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from ldlpose.config import RunConfig
from ldlpose.errors import ConfigError, LdlposeError
from ldlpose.infra import storage, trace
from ldlpose.infra.locations import DEFAULT_STORAGE
from ldlpose.train.checkpoints import Selected, latest_checkpoint, load_checkpoint, retention, select_checkpoint
from ldlpose.train.failures import (
    RepeatedFailure,
    forget_failures,
    give_up,
    last_line,
    record_failure,
    repeated_failure,
    signature,
)


@dataclass(frozen=True)
class TrainOutcome:
    metrics: dict  # the last epoch's metrics (rank 0)
    checkpoint_path: str | None  # the latest checkpoint (what a resume continues from)
    run_path: str
    selected: Selected | None = None  # the best checkpoint by train.select_metric

    @property
    def history(self) -> list[dict]:
        """Every epoch's metrics, including those of earlier attempts this run resumed from."""
        if self.checkpoint_path is None:
            return []
        return load_checkpoint(self.checkpoint_path)["history"]


def resolve_paths(run: RunConfig) -> RunConfig:
    """Absolute data paths: Ray workers do not share the launching process's working directory.
    A URI (``s3://...``) stays as it is."""
    root = storage.resolve(run.data.root)
    return run.model_copy(update={"data": run.data.model_copy(update={"root": root})})


def loop_config(run: RunConfig, fail_after_epoch: int | None = None, run_dir: str | None = None) -> dict:
    """What travels to the workers: the run without its infrastructure (resources) settings, and
    the run's folder, where a search may ask it to stop (train.checkpoints.STOP_FILE)."""
    data = run.to_dict()
    data.pop("resources")
    return {"run": data, "fail_after_epoch": fail_after_epoch, "run_dir": run_dir}


def engine(run: RunConfig) -> str:
    """``in_process`` or ``ray_train``: what ``resources.engine`` resolves to for this run."""
    if run.resources.engine != "auto":
        return run.resources.engine
    return "in_process" if run.resources.single_cpu_worker else "ray_train"


def build_trainer(run: RunConfig, *, storage_path: str, name: str, callbacks=(), fail_after_epoch=None):
    import ray.train
    from ray.train.torch import TorchTrainer

    from ldlpose.train.loop import train_loop_per_worker
    from ldlpose.train.ray_callbacks import RecordFailedAttempts

    if run.train.max_failures < 0:  # Ray Train's -1 alone would retry the same failure forever
        callbacks = [*callbacks, RecordFailedAttempts(storage.join(storage_path, name))]
    res = run.resources
    scaling = ray.train.ScalingConfig(
        num_workers=res.workers,
        use_gpu=res.gpus_per_worker > 0,
        resources_per_worker={"CPU": res.cpus_per_worker,
                              **({"GPU": res.gpus_per_worker} if res.gpus_per_worker else {})},
    )
    return TorchTrainer(
        train_loop_per_worker,
        train_loop_config=loop_config(run, fail_after_epoch, storage.join(storage_path, name)),
        scaling_config=scaling,
        run_config=ray.train.RunConfig(
            name=name,
            storage_path=storage_path,
            failure_config=ray.train.FailureConfig(max_failures=run.train.max_failures),
            checkpoint_config=retention(run.train.select_metric),
            callbacks=list(callbacks),
        ),
    )


def fit(run: RunConfig, *, storage_path: str = DEFAULT_STORAGE, name: str | None = None, callbacks=(),
        publish=None, fail_after_epoch: int | None = None, retry: bool = True) -> TrainOutcome:
    """Train ``run`` on its engine; raises LdlposeError on failure.

    ``callbacks`` are Ray Train callbacks (ray_train engine; Ray must be initialised); ``publish``
    receives each epoch's metrics on the in_process engine, and ``retry=False`` leaves its failed
    attempts to the caller (a Tune trial: Tune restarts it); Ray Train retries its workers either
    way, and ``retry=False`` keeps the run's record of failed attempts from the caller's earlier
    calls, where ``True`` starts it afresh (ldlpose.train.failures). ``fail_after_epoch`` is a
    fault-tolerance drill: an attempt that starts from scratch fails after that epoch, so the run
    must resume from its checkpoint (within ``train.max_failures``, or when ``fit`` is called again
    with the same name).
    """
    run = resolve_paths(run)
    location = storage.resolve(storage_path)
    name = name or run.name
    if not name or name in (".", "..") or "/" in name or "\\" in name:
        # The run's folder, and the checkpoint pruning inside it, must stay under the storage.
        raise ConfigError(f"run name {name!r}: must be one folder name under {location} (no '/', '\\', '..')")
    if engine(run) == "in_process":
        return fit_in_process(run, storage_path=location, name=name, publish=publish,
                              fail_after_epoch=fail_after_epoch, retry=retry)
    return _fit_ray_train(run, location, name, callbacks, fail_after_epoch, fresh=retry)


def _fit_ray_train(run: RunConfig, location: str, name: str, callbacks, fail_after_epoch, *,
                   fresh: bool) -> TrainOutcome:
    """Under ``train.max_failures: -1`` the workers' failed attempts are recorded in the run folder,
    and once they show the same failure ``SAME_FAILURE_CAP`` times in a row the next attempt's
    workers return without training (ray_callbacks.RecordFailedAttempts): the run then fails here
    with that error, as on the in-process engine."""
    import ray.train

    run_path = storage.join(location, name)
    capped = run.train.max_failures < 0
    if capped and fresh:
        forget_failures(run_path)
    _raise_repeated_failure(run_path, capped)  # a caller's restart after the cap: fail at once
    trainer = build_trainer(run, storage_path=location, name=name, callbacks=callbacks,
                            fail_after_epoch=fail_after_epoch)
    trace.mark("trainer.fit_start", trace.trial_of(run_path), time.time())
    try:
        result = trainer.fit()
    except ray.train.TrainingFailedError as err:
        raise LdlposeError(f"training run {name!r} failed: {_root_cause(err)}") from err
    _raise_repeated_failure(run_path, capped)
    checkpoint = result.checkpoint.path if result.checkpoint else None
    if checkpoint and storage.is_uri(location):  # Ray gives the path inside the bucket, without the scheme
        checkpoint = str(latest_checkpoint(run_path))
    return TrainOutcome(
        metrics=dict(result.metrics or {}),
        checkpoint_path=checkpoint,
        run_path=run_path,
        selected=select_checkpoint(run_path, run.train.select_metric),
    )


def _raise_repeated_failure(run_path: str, capped: bool) -> None:
    given_up = repeated_failure(run_path) if capped else None
    if given_up is not None:
        raise RepeatedFailure(given_up)


def fit_in_process(run: RunConfig, *, storage_path: str, name: str, publish=None,
                   fail_after_epoch: int | None = None, retry: bool = True) -> TrainOutcome:
    """One CPU worker in this process; a failed attempt is retried from the newest checkpoint that
    loads up to ``train.max_failures`` times, as Ray Train retries its workers. Under -1 (no limit)
    a failure that repeats identically ``SAME_FAILURE_CAP`` times is final (ldlpose.train.failures)."""
    from ldlpose.train.loop import NonFiniteLossError, train_loop
    from ldlpose.train.session import LocalSession

    run_dir = storage.join(storage_path, name)
    config = loop_config(run, fail_after_epoch, run_dir)
    failures: list[tuple] = []
    while True:
        session = LocalSession(run_dir, run.train.select_metric, publish, cpus=run.resources.cpus_per_worker)
        try:
            train_loop(session, config)
            break
        except NonFiniteLossError as err:  # training again from a checkpoint would diverge again
            raise LdlposeError(f"training run {name!r} failed: worker 0: {type(err).__name__}: {err}") from err
        except Exception as err:
            if not retry:
                raise
            failures.append(signature(err, run_dir))
            reason = give_up(failures, run.train.max_failures)
            if reason is not None:
                raise LdlposeError(f"training run {name!r} failed{reason}: worker 0: {type(err).__name__}: "
                                   f"{last_line(str(err))}") from err
    latest = latest_checkpoint(run_dir)
    metrics = session.last_metrics or (load_checkpoint(latest)["metrics"] if latest else {})
    return TrainOutcome(metrics=dict(metrics), checkpoint_path=str(latest) if latest else None, run_path=run_dir,
                        selected=select_checkpoint(run_dir, run.train.select_metric))


def fit_attempt(run: RunConfig, *, storage_path: str, name: str, publish=None) -> TrainOutcome:
    """One attempt of an in-process run whose retries are its caller's (a Tune trial: Tune starts the
    next attempt, from the newest checkpoint that loads). Under ``train.max_failures: -1`` each failed
    attempt is recorded in the run's folder, and the same failure ``SAME_FAILURE_CAP`` times in a
    row raises :class:`RepeatedFailure`, as ``fit_in_process`` gives up; an attempt started after that
    raises it again at once, without training (:func:`repeated_failure` tells the caller to stop)."""
    run_dir = storage.join(storage.resolve(storage_path), name)
    capped = run.train.max_failures < 0
    _raise_repeated_failure(run_dir, capped)
    try:
        return fit(run, storage_path=storage_path, name=name, publish=publish, retry=False)
    except Exception as err:
        if not capped:
            raise
        record_failure(run_dir, err)
        given_up = repeated_failure(run_dir)
        if given_up is not None:
            raise RepeatedFailure(given_up) from err
        raise


def _root_cause(err: BaseException) -> str:
    """The innermost message of a Ray error chain, e.g. the worker's NonFiniteLossError."""
    failures = getattr(err, "worker_failures", None)
    if failures:
        rank, failure = sorted(failures.items())[0]
        cause = getattr(failure, "cause", None) or failure
        return f"worker {rank}: {type(cause).__name__}: {last_line(str(cause))}"
    return last_line(str(err))
