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

import json
import time
from dataclasses import dataclass
from pathlib import Path

from ldlpose.config import RunConfig
from ldlpose.errors import ConfigError, LdlposeError
from ldlpose.infra import storage, trace
from ldlpose.infra.locations import DEFAULT_STORAGE
from ldlpose.train.checkpoints import Selected, latest_checkpoint, load_checkpoint, retention, select_checkpoint


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
    attempts to the caller (a Tune trial: Tune restarts it). ``fail_after_epoch`` is a
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
    return _fit_ray_train(run, location, name, callbacks, fail_after_epoch)


def _fit_ray_train(run: RunConfig, location: str, name: str, callbacks, fail_after_epoch) -> TrainOutcome:
    import ray.train

    trainer = build_trainer(run, storage_path=location, name=name, callbacks=callbacks,
                            fail_after_epoch=fail_after_epoch)
    run_path = storage.join(location, name)
    trace.mark("trainer.fit_start", trace.trial_of(run_path), time.time())
    try:
        result = trainer.fit()
    except ray.train.TrainingFailedError as err:
        raise LdlposeError(f"training run {name!r} failed: {_root_cause(err)}") from err
    checkpoint = result.checkpoint.path if result.checkpoint else None
    if checkpoint and storage.is_uri(location):  # Ray gives the path inside the bucket, without the scheme
        checkpoint = str(latest_checkpoint(run_path))
    return TrainOutcome(
        metrics=dict(result.metrics or {}),
        checkpoint_path=checkpoint,
        run_path=run_path,
        selected=select_checkpoint(run_path, run.train.select_metric),
    )


def fit_in_process(run: RunConfig, *, storage_path: str, name: str, publish=None,
                   fail_after_epoch: int | None = None, retry: bool = True) -> TrainOutcome:
    """One CPU worker in this process; a failed attempt is retried from the newest checkpoint that
    loads up to ``train.max_failures`` times, as Ray Train retries its workers. Under -1 (no limit)
    a failure that repeats identically :data:`SAME_FAILURE_CAP` times is final (:func:`_give_up`)."""
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
            failures.append(_failure(err, run_dir))
            reason = _give_up(failures, run.train.max_failures)
            if reason is not None:
                raise LdlposeError(f"training run {name!r} failed{reason}: worker 0: {type(err).__name__}: "
                                   f"{_last_line(str(err))}") from err
    latest = latest_checkpoint(run_dir)
    metrics = session.last_metrics or (load_checkpoint(latest)["metrics"] if latest else {})
    return TrainOutcome(metrics=dict(metrics), checkpoint_path=str(latest) if latest else None, run_path=run_dir,
                        selected=select_checkpoint(run_dir, run.train.select_metric))


# Under train.max_failures: -1, the same failure (same error, same message, no new checkpoint since
# the last one) this many times in a row is final. A transient cause (a lost node, a full disk that
# was cleared, a flaky mount) rarely strikes three times at the same epoch with the same words; a
# deterministic one (a bug, a corrupt file the loop reads) always does, and would otherwise repeat
# forever, each time costing the epochs since the last checkpoint.
SAME_FAILURE_CAP = 3


def _failure(err: BaseException, run_dir: str) -> tuple:
    """What makes two failures the same: the error, its message and the checkpoint training had reached."""
    latest = latest_checkpoint(run_dir)
    return type(err).__name__, _last_line(str(err)), None if latest is None else storage.name(str(latest))


def _give_up(failures: list[tuple], max_failures: int) -> str | None:
    """After ``failures`` (oldest first): None to try again, else the words saying why not."""
    if 0 <= max_failures < len(failures):
        return ""
    if max_failures < 0 and _repeated(failures):
        return _REPEATED
    return None


_REPEATED = (f" {SAME_FAILURE_CAP} times in a row with the same error at the same checkpoint "
             "(train.max_failures: -1 retries any other failure without limit)")


def _repeated(failures: list[tuple]) -> bool:
    return len(failures) >= SAME_FAILURE_CAP and len(set(failures[-SAME_FAILURE_CAP:])) == 1


# An in-process Tune trial's failed attempts, oldest first, in its run folder: Tune starts every
# attempt afresh (on another actor, or after the driver itself was restarted), so the count that
# fit_in_process keeps in memory for ``ldlpose train`` must live where every attempt finds it.
FAILURES_FILE = "failed_attempts.json"


class RepeatedFailure(LdlposeError):
    """An in-process run failed the same way :data:`SAME_FAILURE_CAP` times in a row: retrying is futile."""


def fit_attempt(run: RunConfig, *, storage_path: str, name: str, publish=None) -> TrainOutcome:
    """One attempt of an in-process run whose retries are its caller's (a Tune trial: Tune starts the
    next attempt, from the newest checkpoint that loads). Under ``train.max_failures: -1`` each failed
    attempt is recorded in the run's folder, and the same failure :data:`SAME_FAILURE_CAP` times in a
    row raises :class:`RepeatedFailure`, as ``fit_in_process`` gives up; an attempt started after that
    raises it again at once, without training (:func:`repeated_failure` tells the caller to stop)."""
    run_dir = storage.join(storage.resolve(storage_path), name)
    capped = run.train.max_failures < 0
    given_up = repeated_failure(run_dir) if capped else None
    if given_up is not None:
        raise RepeatedFailure(given_up)
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


def record_failure(run_dir: str, err: BaseException) -> None:
    history = [list(f) for f in _failure_history(run_dir)] + [list(_failure(err, run_dir))]
    if not storage.is_uri(run_dir):
        Path(run_dir).mkdir(parents=True, exist_ok=True)  # a failure before the first checkpoint
    storage.replace_bytes(storage.join(run_dir, FAILURES_FILE), json.dumps(history).encode())


def repeated_failure(run_dir: str) -> str | None:
    """The run's final error when its recorded attempts failed the same way :data:`SAME_FAILURE_CAP`
    times in a row, else None."""
    history = _failure_history(run_dir)
    if not _repeated(history):
        return None
    kind, message, _ = history[-1]
    return f"training run {storage.name(run_dir)!r} failed{_REPEATED}: worker 0: {kind}: {message}"


def _failure_history(run_dir: str) -> list[tuple]:
    location = storage.join(run_dir, FAILURES_FILE)
    if not storage.exists(location):
        return []
    return [tuple(f) for f in json.loads(storage.read_bytes(location))]


def _root_cause(err: BaseException) -> str:
    """The innermost message of a Ray error chain, e.g. the worker's NonFiniteLossError."""
    failures = getattr(err, "worker_failures", None)
    if failures:
        rank, failure = sorted(failures.items())[0]
        cause = getattr(failure, "cause", None) or failure
        return f"worker {rank}: {type(cause).__name__}: {_last_line(str(cause))}"
    return _last_line(str(err))


def _last_line(text: str) -> str:
    """The last line naming an error in a (possibly multi-line, traceback-carrying) message."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    for line in reversed(lines):
        if "Error:" in line or "Failure:" in line:
            return line
    return lines[-1] if lines else "unknown error"
